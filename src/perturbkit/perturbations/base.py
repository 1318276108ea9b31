"""The Perturbation contract, and Compose / Combine.

A perturbation is a named, versioned transform ``p(X, magnitude, rng) -> X'``,
batched over the first axis and pure: no global random state, the caller's
array is never written, and magnitude 0 is the identity.

Randomness is drawn apart from the arithmetic, so that magnitudes share their
random numbers (common random numbers)::

    params = p.sample(X, rng)              # standard draws; never depend on magnitude
    X_new = p.apply(X, params, magnitude)  # pure: scales or thresholds the draws

so a curve over magnitudes is smooth, masks nest (what is missing at 0.1 is
also missing at 0.2), and the params can be kept to replay a perturbation.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from perturbkit._params import Params
from perturbkit._rng import (
    as_generator,
    block_rng,
    canonical,
    canonical_json,
    spawn,
    stable_key,
)
from perturbkit._types import SeedLike
from perturbkit._validation import check_magnitude
from perturbkit.exceptions import ParameterError

__all__ = ["FORMAT_VERSION", "Combine", "Compose", "Perturbation", "Reference"]

FORMAT_VERSION = 1
"""Version of the serialised pipeline format ``{"perturbkit": 1, "steps": [...]}``."""


class Reference:
    """Reference data shared by the perturbations of one sweep, with memoised statistics.

    It behaves as the array it holds (``np.asarray(ref)``) and exposes
    ``columns`` (feature names) when it has them, so any ``fit(X_ref)`` works
    on it unchanged; statistics computed once (e.g. each feature's standard
    deviation) are shared through :meth:`memo` instead of being recomputed by
    every perturbation.
    """

    def __init__(self, data: np.ndarray, columns: Sequence[str] | None = None) -> None:
        self.data = data
        if columns is not None:
            self.columns = list(columns)
        self._memo: dict[str, Any] = {}

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def memo(self, key: str, compute: Any) -> Any:
        """``compute()`` once per key for this reference."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


class Perturbation(Params, abc.ABC):
    """Base class of every perturbation.

    Subclasses set the class attributes and implement :meth:`sample` (draws,
    magnitude-free) and :meth:`apply` (pure arithmetic). ``__init__`` only
    stores its keyword arguments; ``_constraints`` maps each to a constraint
    checked on first use.

    Attributes:
        name: registry key, stable snake_case (stored as ``name@version``).
        version: bumped whenever the output for the same inputs changes.
        modality: ``"tabular"``, ``"image"``, ``"text"``, ``"audio"`` or ``"weights"``.
        unit: what magnitude 1.0 means, in words.
        stochastic: whether the output depends on the random stream.
        max_magnitude: the largest meaningful magnitude (None: unbounded).
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    modality: ClassVar[str] = "tabular"
    unit: ClassVar[str] = ""
    stochastic: ClassVar[bool] = True
    max_magnitude: ClassVar[float | None] = None
    rowwise: ClassVar[bool] = False
    """True when ``sample`` returns per-row arrays and ``apply`` treats rows independently,
    so the engine may concatenate the draws of several blocks and apply them at once."""
    _constraints: ClassVar[dict[str, Any]] = {}

    # -- parameters (scikit-learn style, see perturbkit._params) -------------------------
    def _validate_params(self) -> None:
        if getattr(self, "_validated", False):
            return
        self._check_constraints()
        self._check_params()
        self._validated = True

    def _check_params(self) -> None:
        """Cross-parameter checks of subclasses (raise ParameterError)."""

    @property
    def id(self) -> str:
        """``name@version``, as stored with every result."""
        return f"{self.name}@{self.version}"

    @property
    def key(self) -> int:
        """Stable 64-bit identity of ``name@version`` plus canonical params (the stream key)."""
        return stable_key(self.id + canonical_json(self.get_params()))

    @property
    def label(self) -> str:
        """A short human label: the name plus non-default parameters."""
        sig = inspect.signature(type(self).__init__).parameters
        extra = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if k in sig and canonical(sig[k].default) != canonical(v)
        ]
        return self.name + (f"({', '.join(extra)})" if extra else "")

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "version", "params"}``: JSON/YAML-ready, no seed inside."""
        return {"name": self.name, "version": self.version, "params": canonical(self.get_params())}

    # -- fitting ------------------------------------------------------------------------
    def fit(self, X_ref: Any) -> Perturbation:
        """Learn reference statistics (e.g. ``scale_``) from ``X_ref``; returns self.

        Statistics come from reference data, not from the batch in hand, so a
        row's perturbation does not depend on which rows share its batch.
        """
        self._validate_params()
        return self

    @property
    def fitted(self) -> bool:
        return True

    # -- the transform ------------------------------------------------------------------
    def sample(self, X: np.ndarray, rng: np.random.Generator) -> Any:
        """Draw the standard random numbers for batch ``X`` (uses X's shape only).

        The draws never depend on the magnitude; :meth:`apply` scales or
        thresholds them. Deterministic perturbations return ``None``.
        """
        return None

    @abc.abstractmethod
    def apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        """Pure arithmetic: the perturbed copy of ``X`` at ``magnitude``."""

    def prepare(self, X: Any) -> tuple[np.ndarray, Any]:
        """Turn the caller's batch into the array ``apply`` works on, and a restorer token."""
        return np.asarray(X), None

    def restore(self, X_new: np.ndarray, token: Any) -> Any:
        """Inverse of :meth:`prepare` for the output (e.g. back to a DataFrame)."""
        return X_new

    def check(self, X: Any) -> None:
        """Refuse, in one line, a batch this perturbation cannot take, computing nothing.

        :meth:`prepare` checks what it converts; a subclass that leaves some checks
        to :meth:`apply` (images check pixel values chunk by chunk) does them all
        here. The engine calls it on the swept data before anything is stored.
        """
        self.prepare(X)

    def check_magnitude(self, magnitude: Any) -> float:
        return check_magnitude(type(self).__name__, magnitude, high=self.max_magnitude)

    def __call__(
        self,
        X: Any,
        magnitude: float,
        rng: np.random.Generator | SeedLike = None,
        *,
        return_params: bool = False,
    ) -> Any:
        """Perturb ``X`` at ``magnitude`` with randomness from ``rng``.

        ``rng`` is a ``numpy.random.Generator`` (or a seed for a fresh one).
        An unfitted instance learns its statistics from ``X`` itself.
        With ``return_params=True`` returns ``(X_new, params)`` for replay via
        :meth:`apply`.
        """
        self._validate_params()
        m = self.check_magnitude(magnitude)
        arr, token = self.prepare(X)
        if not self.fitted:
            stats_source = self._with_stats(arr)
        else:
            stats_source = self
        gen = as_generator(rng)
        if self.stochastic and m != 0 and not return_params:
            out = stats_source.sample_apply(arr, gen, m)
            return self.restore(out, token)
        params = stats_source.sample(arr, gen) if self.stochastic else None
        out = stats_source.identity(arr) if m == 0 else stats_source.apply(arr, params, m)
        out = self.restore(out, token)
        return (out, params) if return_params else out

    def identity(self, arr: np.ndarray) -> np.ndarray:
        """The result at magnitude 0: a copy of ``arr`` (a subclass whose ``apply`` checks
        the values it reads checks them here too)."""
        return arr.copy()

    def sample_apply(self, X: np.ndarray, rng: np.random.Generator, magnitude: float) -> np.ndarray:
        """``apply(X, sample(X, rng), magnitude)``: what a one-shot call computes.

        A subclass may fuse the two (drawing and applying in cache, never
        holding all the draws) if it gives the same bits and reads ``rng``
        exactly as :meth:`sample` does, so the generator is left in the same state.
        """
        return self.apply(X, self.sample(X, rng), magnitude)

    def _with_stats(self, arr: np.ndarray) -> Perturbation:
        """A fitted copy (statistics from ``arr``), leaving ``self`` unfitted."""
        clone = type(self)(**self.get_params())
        clone._validated = True
        return clone.fit(arr)

    # -- engine hooks ---------------------------------------------------------------------
    def sample_block(self, X: np.ndarray, *, root: int, repeat: int, block: int) -> Any:
        """Draws for one logical block of rows, from its identity-keyed stream."""
        if not self.stochastic:
            return None
        return self.sample(X, block_rng(root, self.key, repeat, block))


def _as_perturbation(step: Any) -> Perturbation:
    if isinstance(step, Perturbation):
        return step
    if isinstance(step, Mapping):
        from perturbkit.perturbations.registry import from_dict

        return from_dict(step)
    if isinstance(step, str):
        from perturbkit.perturbations.registry import get

        return get(step)
    raise ParameterError(
        "A step of Compose/Combine must be a Perturbation, a registry name or a "
        f"{{name, params}} dict. Got {type(step).__name__} instead."
    )


class _Group(Perturbation):
    """Shared machinery of Compose and Combine: children applied in order."""

    unit = "each step's own unit, times the step's weight"

    def __init__(self, steps: Sequence[Any], *, weights: Sequence[float] | None = None) -> None:
        self.steps = steps
        self.weights = weights

    def _check_params(self) -> None:
        owner = type(self).__name__
        if isinstance(self.steps, (str, Mapping)) or not isinstance(self.steps, Sequence):
            raise ParameterError(
                f"The 'steps' parameter of {owner} must be a list of perturbations. "
                f"Got {type(self.steps).__name__} instead."
            )
        self.steps = [_as_perturbation(s) for s in self.steps]
        if not self.steps:
            raise ParameterError(
                f"The 'steps' parameter of {owner} must not be empty. Got [] instead."
            )
        if self.weights is not None and (
            len(self.weights) != len(self.steps)
            or not all(np.isfinite(w) and w >= 0 for w in self.weights)
        ):
            raise ParameterError(
                f"The 'weights' parameter of {owner} must list one finite weight >= 0 per step "
                f"({len(self.steps)}). Got {self.weights!r} instead."
            )
        for s in self.steps:
            s._validate_params()

    @property
    def modality(self) -> str:  # type: ignore[override]
        mods = {s.modality for s in self.steps}  # type: ignore[union-attr]
        return mods.pop() if len(mods) == 1 else "mixed"

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return any(s.stochastic for s in self.steps)  # type: ignore[union-attr]

    def _weights(self) -> list[float]:
        return [1.0] * len(self.steps) if self.weights is None else [float(w) for w in self.weights]

    def get_params(self) -> dict[str, Any]:
        self._validate_params()
        # Weights as floats, as to_dict writes them, so the stream key survives a round trip.
        weights = None if self.weights is None else [float(w) for w in self.weights]
        return {"steps": [s.to_dict() for s in self.steps], "weights": weights}  # type: ignore[union-attr]

    def fit(self, X_ref: Any) -> _Group:
        self._validate_params()
        for s in self.steps:
            s.fit(X_ref)  # type: ignore[union-attr]
        return self

    @property
    def fitted(self) -> bool:
        return all(s.fitted for s in self.steps)  # type: ignore[union-attr]

    def _with_stats(self, arr: np.ndarray) -> Perturbation:
        clone = type(self)(
            [s if s.fitted else s._with_stats(arr) for s in self.steps],  # type: ignore[union-attr]
            weights=self.weights,
        )
        clone._validate_params()
        return clone

    def prepare(self, X: Any) -> tuple[np.ndarray, Any]:
        return self.steps[0].prepare(X)  # type: ignore[union-attr]

    def restore(self, X_new: np.ndarray, token: Any) -> Any:
        return self.steps[0].restore(X_new, token)  # type: ignore[union-attr]

    def identity(self, arr: np.ndarray) -> np.ndarray:
        return self.steps[0].identity(arr)  # type: ignore[union-attr]

    def check(self, X: Any) -> None:
        for s in self.steps:
            s.check(X)  # type: ignore[union-attr]

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> list[Any]:
        rngs = spawn(rng, len(self.steps))
        return [
            s.sample(X, r) if s.stochastic else None  # type: ignore[union-attr]
            for s, r in zip(self.steps, rngs)
        ]

    def apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        if params is None:  # every step deterministic: __call__ draws nothing
            params = [None] * len(self.steps)
        out = X
        for s, p, w in zip(self.steps, params, self._weights()):
            m = magnitude * w
            if m > 0:
                out = s.apply(out, p, m)  # type: ignore[union-attr]
        return self.identity(X) if out is X else out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "perturbkit": FORMAT_VERSION,
            "kind": self.name,
            "steps": [s.to_dict() for s in self.steps],  # type: ignore[union-attr]
        }
        if self.weights is not None:
            d["weights"] = [float(w) for w in self.weights]
        return d

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


class Compose(_Group):
    """Apply steps in sequence, each on its own stream keyed by its position.

    Every step receives ``magnitude × weight`` (weights default to 1). Use it
    to build one realistic pipeline, e.g. drift then noise then missing values.
    """

    name = "compose"
    version = 1


class Combine(_Group):
    """Apply steps jointly, each on the stream it would have alone.

    Each child's random stream is keyed by the child's own identity rather
    than its position, so the pair (A, B) sees exactly the noise that A and B
    see when swept alone. With these common random numbers, the interaction
    effect ``Δ(A+B) − Δ(A) − Δ(B)`` is estimated sharply.
    """

    name = "combine"
    version = 1

    def sample_block(self, X: np.ndarray, *, root: int, repeat: int, block: int) -> Any:
        return [
            s.sample_block(X, root=root, repeat=repeat, block=block)  # type: ignore[union-attr]
            for s in self.steps
        ]
