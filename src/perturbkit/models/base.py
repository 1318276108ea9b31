"""The Model contract: ``model(X) -> ndarray``, batched, numpy at the boundary.

Classification returns class probabilities of shape ``(n, k)``; regression
returns ``(n,)`` for one target or ``(n, m)`` for several (a single-target
``(n, 1)`` output is flattened to ``(n,)``). Adapters implement
:meth:`Model._predict`; :meth:`Model.__call__` checks what came back and names
the call that broke.
"""

from __future__ import annotations

import abc
import hashlib
from typing import Any, ClassVar, Literal

import numpy as np

from perturbkit.exceptions import DataError, ModelError, NotDifferentiableError, ParameterError

__all__ = ["PROBABILITY_ATOL", "TASKS", "Model", "Task", "check_task", "infer_task"]

Task = Literal["classification", "regression"]
TASKS: tuple[str, ...] = ("classification", "regression")

PROBABILITY_ATOL = 1e-3
"""How far a row of class probabilities may sum from 1 (float32 models round)."""

_INFER_ATOL = 1e-6
"""How close to 1 the rows must sum for an unknown task to be read as classification."""


def check_task(task: Any, owner: str = "wrap") -> Task | None:
    """Return ``task`` when it is a known task or None; raise a one-line error otherwise."""
    if task is None or task in TASKS:
        return task  # type: ignore[no-any-return]
    raise ParameterError(
        f"The 'task' parameter of {owner} must be one of 'classification', 'regression' "
        f"or None. Got {task!r} instead."
    )


def infer_task(out: np.ndarray, *, dtype: Any = np.float64) -> Task:
    """Read the task from a model's output, when nobody said what it is.

    A 2-D output with at least two columns whose rows are non-negative and sum
    to 1 is read as class probabilities (classification); anything else is
    regression. "Sum to 1" means within 1e-6 for float64 outputs, and within
    the rounding of the model's own ``dtype`` when coarser (1.2e-4 for float32,
    at most 1e-3).
    """
    atol = _INFER_ATOL
    if np.issubdtype(np.dtype(dtype), np.floating):
        atol = min(PROBABILITY_ATOL, max(_INFER_ATOL, 1000 * float(np.finfo(dtype).eps)))
    if out.ndim == 2 and out.shape[1] >= 2 and out.shape[0] > 0:
        if bool((out >= 0).all()) and bool(np.allclose(out.sum(axis=1), 1.0, rtol=0, atol=atol)):
            return "classification"
    return "regression"


def digest(*parts: bytes | str) -> str:
    """A stable hex digest (blake2b, 16 bytes) of byte or text parts."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


class Model(abc.ABC):
    """A wrapped model. Call it on a batch: ``model(X) -> ndarray``.

    Attributes:
        task: ``"classification"`` (outputs are class probabilities, ``(n, k)``)
            or ``"regression"`` (outputs ``(n,)`` or ``(n, m)``). ``None`` only
            for a model wrapped without a task whose task is read from its
            first call (see :func:`infer_task`).
        n_outputs: ``k`` classes or ``m`` regression targets (1 for ``(n,)``);
            ``None`` until known (at the latest after the first call).
        classes_: class labels in probability-column order, when known.
        differentiable: whether :meth:`grad` is available.
    """

    kind: ClassVar[str] = "model"
    differentiable: ClassVar[bool] = False

    def __init__(
        self,
        *,
        task: Task | None = None,
        n_outputs: int | None = None,
        classes: Any = None,
        description: str = "",
    ) -> None:
        self._task: Task | None = check_task(task, owner=type(self).__name__)
        self.n_outputs: int | None = n_outputs
        self.classes_ = None if classes is None else np.asarray(classes)
        if self.classes_ is not None and self.n_outputs is None:
            self.n_outputs = len(self.classes_)
        self.description = description or type(self).__name__

    @property
    def task(self) -> Task | None:
        """The task; ``None`` only before the first call of a model whose task is inferred."""
        return self._task

    @task.setter
    def task(self, value: Task | None) -> None:
        self._task = check_task(value, owner=type(self).__name__)

    # -- for adapters ---------------------------------------------------------------
    @abc.abstractmethod
    def _predict(self, X: np.ndarray) -> np.ndarray:
        """The adapter's raw batch prediction (checked by :meth:`__call__`)."""

    def fingerprint(self) -> str:
        """A stable digest of the model's parameters, or of its description when unknown."""
        return digest(type(self).__name__, self.description)

    # -- the contract -------------------------------------------------------------
    def __call__(self, X: Any, *, rows: tuple[int, int] | None = None) -> np.ndarray:
        """Predict a batch and check the output against the contract.

        ``rows`` (start, stop) names the rows of the caller's data set in errors.
        """
        X = np.asarray(X)
        where = self._where(X, rows)
        try:
            out = self._predict(X)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"{where} raised {type(exc).__name__}: {_first_line(exc)}") from exc
        return self._check(out, X.shape[0] if X.ndim else 0, where)

    @staticmethod
    def _where(X: np.ndarray, rows: tuple[int, int] | None) -> str:
        n = X.shape[0] if X.ndim else 0
        start, stop = rows if rows is not None else (0, n)
        return f"Model call on rows {start}\u2013{max(stop - 1, start)}"

    def _check(self, out: Any, n: int, where: str) -> np.ndarray:
        raw_dtype = out.dtype if isinstance(out, np.ndarray) else np.float64
        try:
            out = np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{where} returned non-numeric output ({_first_line(exc)}).") from exc
        if out.ndim == 0 or out.shape[0] != n:
            raise ModelError(f"{where} returned shape {out.shape}; expected {n} rows.")
        if out.ndim > 2:
            raise ModelError(
                f"{where} returned shape {out.shape}; expected ({n}, k) class probabilities "
                f"or ({n},) / ({n}, m) regression outputs."
            )
        finite = np.isfinite(out)
        if not finite.all():
            bad = int((~finite).sum())
            first = int(np.argwhere(~finite)[0][0])
            raise ModelError(
                f"{where} returned {bad} non-finite value(s) (NaN or inf), the first in row "
                f"{first} of the call."
            )
        task = self._task if self._task is not None else infer_task(out, dtype=raw_dtype)
        if task == "classification":
            self._check_probabilities(out, n, where)
        else:
            if out.ndim == 2 and out.shape[1] == 1:
                out = out[:, 0]
            m = 1 if out.ndim == 1 else out.shape[1]
            if self.n_outputs is not None and m != self.n_outputs:
                raise ModelError(
                    f"{where} returned {m} output(s) per row; expected {self.n_outputs}."
                )
        if self._task is None and n > 0:
            self._task = task
        if self.n_outputs is None and n > 0:
            self.n_outputs = 1 if out.ndim == 1 else int(out.shape[1])
        return out

    def _check_probabilities(self, out: np.ndarray, n: int, where: str) -> None:
        k = self.n_outputs
        expected = f"({n}, {k if k is not None else 'k'}) class probabilities"
        if out.ndim != 2 or (k is not None and out.shape[1] != k):
            raise ModelError(f"{where} returned shape {out.shape}; expected {expected}.")
        if n == 0:
            return
        sums = np.einsum("ij->i", out)  # row sums without numpy's slow short-axis reduce
        if out.min() >= -PROBABILITY_ATOL and np.abs(sums - 1.0).max() <= PROBABILITY_ATOL:
            return
        bad = (out < -PROBABILITY_ATOL).any(axis=1) | (np.abs(sums - 1.0) > PROBABILITY_ATOL)
        if bad.any():
            i = int(np.argmax(bad))
            raise ModelError(
                f"{where} returned rows that are not probabilities (row {i} of the call sums "
                f"to {sums[i]:.6g}, its smallest value is {out[i].min():.6g}); expected "
                f"{expected}, each row >= 0 and summing to 1. Apply a softmax to logits "
                "(torch and ONNX adapters: output='logits')."
            )

    def grad(self, X: Any, y: Any = None, *, rows: tuple[int, int] | None = None) -> np.ndarray:
        """Gradient of the loss (or of the output when ``y`` is None) w.r.t. ``X``.

        Only differentiable adapters (torch) have it.
        """
        raise NotDifferentiableError(
            f"{self.description} is not differentiable: gradients need a torch.nn.Module "
            "model (wrap(torch_module)); use finite differences for black-box models."
        )

    def predict_labels(self, X: Any) -> np.ndarray:
        """Predicted class indices (classification only)."""
        return np.argmax(self(X), axis=1)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.description} task={self.task} "
            f"n_outputs={self.n_outputs}>"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def label_indices(y: np.ndarray, *, classes: Any, n_classes: int) -> np.ndarray:
    """Class indices (probability columns) of 1-D classification labels ``y``.

    With known ``classes`` each label is looked up among them; without, the
    labels must already be indices in ``[0, n_classes)``. Bad labels are one
    clear line (DataError).
    """
    if classes is not None:
        classes = np.asarray(classes)
        if np.all(classes[:-1] <= classes[1:]):
            idx = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
        else:
            lookup = {c: i for i, c in enumerate(classes.tolist())}
            idx = np.asarray([lookup.get(v, 0) for v in y.tolist()], dtype=np.int64)
        bad = classes[idx] != y
        if bad.any():
            raise DataError(
                f"y holds label {y[bad][0]!r}, which the model does not predict; its classes "
                f"are {classes.tolist()[:10]}."
            )
        return idx.astype(np.int64)
    k = n_classes
    if not (
        np.issubdtype(y.dtype, np.integer)
        or (np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0))
    ):
        raise DataError(
            f"Classification labels y must be class indices 0..{k - 1} for this model. "
            f"Got dtype {y.dtype} instead."
        )
    yi = y.astype(np.int64)
    if yi.min() < 0 or yi.max() >= k:
        raise DataError(
            f"Classification labels y must be class indices in [0, {k - 1}]. "
            f"Got values in [{yi.min()}, {yi.max()}] instead."
        )
    return yi
