"""Training-data perturbation: a registered input perturbation as a train-time augmentation.

Three entry points, one behaviour: rows are perturbed with
``perturbation(X, magnitude_t, rng)`` where ``magnitude_t = magnitude ×
schedule(epoch)`` and, with ``fraction < 1``, only a random share of the
rows is perturbed (the rest stay clean).

- :func:`perturbed_batches`: numpy mini-batches for scikit-learn style
  ``partial_fit`` training (or any loop over arrays);
- :class:`PerturbedCollate`: a ``collate_fn`` for a torch ``DataLoader``
  that perturbs each collated batch at once (vectorised);
- :class:`PerturbedDataset`: wraps a map-style torch ``Dataset`` and
  perturbs item by item (robust to any sampler and to worker processes).

Randomness is keyed by identity, never by global state:
``SeedSequence(root, spawn_key=(pert_key, epoch, batch))`` for a batch,
``(pert_key, epoch, index)`` for a dataset item, with ``pert_key`` the
perturbation's stable digest. Statistics a perturbation learns (a feature's
standard deviation, for instance) come from ``reference`` (or the training
``X`` for :func:`perturbed_batches`), never from the batch in hand. The
perturbation given is not modified: an unfitted one is copied and fitted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from perturbkit._rng import root_entropy, stable_key, stream
from perturbkit._types import SeedLike
from perturbkit._validation import Interval, OneOf, check_param
from perturbkit.exceptions import DataError, ParameterError
from perturbkit.optim.schedules import Schedule, as_schedule, checked_factor
from perturbkit.perturbations import Perturbation, from_dict, get

__all__ = ["PerturbedCollate", "PerturbedDataset", "perturbed_batches"]

_SHUFFLE_KEY = stable_key("perturbkit.optim.perturbed_batches/shuffle")


def _resolve(perturbation: Any, owner: str) -> Perturbation:
    if isinstance(perturbation, Perturbation):
        return perturbation
    if isinstance(perturbation, str):
        return get(perturbation)
    if isinstance(perturbation, dict):
        return from_dict(perturbation)
    raise ParameterError(
        f"The 'perturbation' parameter of {owner} must be a Perturbation, a registered name "
        f"(see perturbkit.perturbations.list()) or a {{name, params}} dict. Got "
        f"{type(perturbation).__name__} instead."
    )


def _fitted(p: Perturbation, reference: Any, owner: str) -> Perturbation:
    p._validate_params()
    if reference is None:
        if not p.fitted:
            raise ParameterError(
                f"The perturbation {p.label} of {owner} learns statistics from reference data; "
                "pass reference= (the training features) or a fitted perturbation, so that a "
                "row's noise does not depend on its batch."
            )
        return p
    clone = from_dict(p.to_dict())
    return clone.fit(np.asarray(reference))


class _Plan:
    """What every entry point shares: the perturbation, the magnitude schedule, the streams."""

    def __init__(
        self,
        perturbation: Any,
        *,
        magnitude: float,
        schedule: Any,
        fraction: float,
        seed: SeedLike,
        reference: Any,
        owner: str,
    ) -> None:
        self.owner = owner
        p = _resolve(perturbation, owner)
        self.perturbation = _fitted(p, reference, owner)
        self.magnitude = self.perturbation.check_magnitude(magnitude)
        self.schedule: Schedule | None = as_schedule(schedule, owner=owner)
        check_param(owner, "fraction", fraction, Interval(0, 1))
        self.fraction = float(fraction)
        self.root = root_entropy(seed)
        self.key = self.perturbation.key

    def magnitude_at(self, epoch: int) -> float:
        m = self.magnitude * checked_factor(self.schedule, epoch, owner=self.owner)
        return self.perturbation.check_magnitude(m)

    def apply(self, X: np.ndarray, magnitude: float, rng: np.random.Generator) -> np.ndarray:
        """Perturb a batch (the first axis is rows); only ``fraction`` of them when < 1."""
        if magnitude == 0 or self.fraction == 0 or X.shape[0] == 0:
            return X
        if self.fraction < 1:
            mask = rng.random(X.shape[0]) < self.fraction
            out = np.asarray(self.perturbation(X, magnitude, rng))
            keep = mask.reshape((-1,) + (1,) * (X.ndim - 1))
            return np.where(keep, out, X).astype(out.dtype, copy=False)
        return np.asarray(self.perturbation(X, magnitude, rng))


def perturbed_batches(
    X: Any,
    y: Any = None,
    *,
    perturbation: Any,
    magnitude: float,
    batch_size: int = 256,
    n_epochs: int = 1,
    schedule: Schedule | Callable[[int], float] | None = None,
    fraction: float = 1.0,
    shuffle: bool = True,
    seed: SeedLike = None,
    reference: Any = None,
) -> Iterator[Any]:
    """Mini-batches of ``(X_batch, y_batch)`` with the batch rows perturbed, epoch after epoch.

    For scikit-learn style training::

        for Xb, yb in perturbed_batches(X, y, perturbation="gaussian_noise", magnitude=0.3,
                                        n_epochs=5, seed=0):
            clf.partial_fit(Xb, yb, classes=classes)

    Args:
        X: training features, an array with rows on the first axis.
        y: labels (sliced alongside) or None (then only ``X_batch`` is yielded).
        perturbation: a Perturbation, a registered name or a ``{name, params}`` dict.
        magnitude: the magnitude at epoch 0, in the perturbation's unit.
        batch_size: rows per batch, >= 1.
        n_epochs: passes over the data, >= 1.
        schedule: scales the magnitude by epoch (``t`` = epoch).
        fraction: the share of rows perturbed in each batch, in [0, 1].
        shuffle: a fresh permutation per epoch (from the seed) or the data order.
        seed: root seed (None: fresh entropy).
        reference: data to learn the perturbation's statistics from (default ``X``).

    Yields:
        ``(X_batch, y_batch)`` (new arrays; ``X`` is never written), or ``X_batch``.
    """
    owner = "perturbed_batches"
    arr = np.asarray(X)
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise DataError(f"X of {owner} must have at least one row. Got shape {arr.shape} instead.")
    y_arr = None if y is None else np.asarray(y)
    if y_arr is not None and (y_arr.ndim == 0 or y_arr.shape[0] != arr.shape[0]):
        raise DataError(
            f"X and y of {owner} must have the same number of rows. Got {arr.shape[0]} and "
            f"shape {y_arr.shape} instead."
        )
    check_param(owner, "batch_size", batch_size, Interval(1, None, integer=True))
    check_param(owner, "n_epochs", n_epochs, Interval(1, None, integer=True))
    check_param(owner, "shuffle", shuffle, OneOf((True, False)))
    p = _resolve(perturbation, owner)
    plan = _Plan(
        p,
        magnitude=magnitude,
        schedule=schedule,
        fraction=fraction,
        seed=seed,
        reference=arr if reference is None and not p.fitted else reference,
        owner=owner,
    )
    return _batches(plan, arr, y_arr, int(batch_size), int(n_epochs), bool(shuffle))


def _batches(
    plan: _Plan, X: np.ndarray, y: np.ndarray | None, batch_size: int, n_epochs: int, shuffle: bool
) -> Iterator[Any]:
    n = X.shape[0]
    for epoch in range(n_epochs):
        m = plan.magnitude_at(epoch)
        order = stream(plan.root, _SHUFFLE_KEY, epoch).permutation(n) if shuffle else None
        for b, start in enumerate(range(0, n, batch_size)):
            idx = order[start : start + batch_size] if order is not None else None
            Xb = X[idx] if idx is not None else X[start : start + batch_size].copy()
            Xb = plan.apply(Xb, m, stream(plan.root, plan.key, epoch, b))
            if y is None:
                yield Xb
            else:
                yield Xb, (y[idx] if idx is not None else y[start : start + batch_size].copy())


def _split(item: Any) -> tuple[Any, Callable[[Any], Any]]:
    """The features of a sample or batch, and how to put perturbed features back."""
    if isinstance(item, tuple):
        return item[0], lambda x: (x, *item[1:])
    if isinstance(item, list):
        return item[0], lambda x: [x, *item[1:]]
    if isinstance(item, dict):
        raise ParameterError(
            "Dict samples are not supported by perturbkit's data wrappers; return (x, y) tuples."
        )
    return item, lambda x: x


def _to_numpy(x: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """A numpy view of ``x`` (a tensor or an array), and the way back to its type."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is installed with perturbkit.optim
        torch = None
    if torch is not None and isinstance(x, torch.Tensor):
        dtype, device = x.dtype, x.device
        arr = x.detach().cpu().numpy()
        return arr, lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(
            device=device, dtype=dtype
        )
    arr = np.asarray(x)
    return arr, lambda a: np.asarray(a, dtype=arr.dtype)


class _Planned:
    """What PerturbedCollate and PerturbedDataset share: the plan's seed, perturbation, epoch."""

    _plan: _Plan
    epoch: int

    @property
    def seed_(self) -> int:
        return self._plan.root

    @property
    def perturbation(self) -> Perturbation:
        return self._plan.perturbation

    def set_epoch(self, epoch: int) -> None:
        """Move to ``epoch``: its magnitude and its streams."""
        check_param(
            f"{type(self).__name__}.set_epoch", "epoch", epoch, Interval(0, None, integer=True)
        )
        self.epoch = int(epoch)


class PerturbedCollate(_Planned):
    """A ``DataLoader`` ``collate_fn`` that perturbs the features of each batch at once.

    The features are the first element of each sample (``(x, y, ...)``
    tuples) or the sample itself. Batch ``b`` of epoch ``e`` draws from the
    stream ``(pert_key, epoch, worker id, b)``, where ``b`` counts the
    batches this process (or DataLoader worker) has collated since
    :meth:`set_epoch`; call ``set_epoch(epoch)`` before each epoch, and use
    non-persistent workers (the default) so each epoch's workers start
    afresh. For independence from the loader's scheduling, use
    :class:`PerturbedDataset`.

    Args:
        perturbation: a Perturbation, a registered name or a ``{name, params}`` dict.
        magnitude: the magnitude at epoch 0, in the perturbation's unit.
        schedule: scales the magnitude by epoch.
        fraction: the share of rows perturbed, in [0, 1].
        seed: root seed (None: fresh entropy, in :attr:`seed_`).
        reference: data to learn the perturbation's statistics from (needed
            unless the perturbation is fitted or learns none).
        collate_fn: the collate function to wrap (default: torch's ``default_collate``).
    """

    def __init__(
        self,
        perturbation: Any,
        *,
        magnitude: float,
        schedule: Schedule | Callable[[int], float] | None = None,
        fraction: float = 1.0,
        seed: SeedLike = None,
        reference: Any = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        owner = "PerturbedCollate"
        self._plan = _Plan(
            perturbation,
            magnitude=magnitude,
            schedule=schedule,
            fraction=fraction,
            seed=seed,
            reference=reference,
            owner=owner,
        )
        if collate_fn is not None and not callable(collate_fn):
            raise ParameterError(
                f"The 'collate_fn' parameter of {owner} must be callable or None. Got "
                f"{collate_fn!r} instead."
            )
        self.collate_fn = collate_fn
        self.epoch = 0
        self._count = 0

    def set_epoch(self, epoch: int) -> None:
        """Move to ``epoch`` (its magnitude and streams) and restart the batch count."""
        super().set_epoch(epoch)
        self._count = 0

    def __call__(self, samples: list[Any]) -> Any:
        if self.collate_fn is None:
            from torch.utils.data import default_collate

            batch = default_collate(samples)
        else:
            batch = self.collate_fn(samples)
        x, put_back = _split(batch)
        arr, back = _to_numpy(x)
        m = self._plan.magnitude_at(self.epoch)
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        worker = 0 if info is None else int(info.id) + 1
        rng = stream(self._plan.root, self._plan.key, self.epoch, worker, self._count)
        self._count += 1
        return put_back(back(self._plan.apply(arr, m, rng)))


try:  # the Dataset base class when torch is there (it is, beside perturbkit.optim)
    from torch.utils.data import Dataset as _Dataset
except ImportError:  # pragma: no cover
    _Dataset = object  # type: ignore[assignment,misc]


class PerturbedDataset(_Planned, _Dataset):  # type: ignore[misc,valid-type]
    """A map-style torch ``Dataset`` whose items' features are perturbed.

    Item ``i`` of epoch ``e`` draws from the stream ``(pert_key, e, i)``, so
    its perturbation is the same whatever the sampler, the batch size, the
    order or the worker that fetches it. Call :meth:`set_epoch` before each
    epoch for fresh draws and the scheduled magnitude (with worker
    processes, before the loader is iterated).

    Args:
        dataset: a map-style dataset of ``(x, y, ...)`` tuples or of ``x``.
        perturbation: a Perturbation, a registered name or a ``{name, params}`` dict;
            it sees one item as a batch of one row.
        magnitude: the magnitude at epoch 0, in the perturbation's unit.
        schedule: scales the magnitude by epoch.
        fraction: the probability that an item is perturbed, in [0, 1].
        seed: root seed (None: fresh entropy, in :attr:`seed_`).
        reference: data to learn the perturbation's statistics from (needed
            unless the perturbation is fitted or learns none).
    """

    def __init__(
        self,
        dataset: Any,
        perturbation: Any,
        *,
        magnitude: float,
        schedule: Schedule | Callable[[int], float] | None = None,
        fraction: float = 1.0,
        seed: SeedLike = None,
        reference: Any = None,
    ) -> None:
        owner = "PerturbedDataset"
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise ParameterError(
                f"The 'dataset' parameter of {owner} must be a map-style dataset (with "
                f"__getitem__ and __len__). Got {type(dataset).__name__} instead."
            )
        self.dataset = dataset
        self._plan = _Plan(
            perturbation,
            magnitude=magnitude,
            schedule=schedule,
            fraction=fraction,
            seed=seed,
            reference=reference,
            owner=owner,
        )
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        item = self.dataset[index]
        x, put_back = _split(item)
        arr, back = _to_numpy(x)
        m = self._plan.magnitude_at(self.epoch)
        rng = stream(self._plan.root, self._plan.key, self.epoch, int(index))
        out = self._plan.apply(arr[None], m, rng)[0]
        return put_back(back(out))
