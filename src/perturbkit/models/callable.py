"""Plain Python callables on numpy arrays: ``fn(X) -> array``."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from perturbkit._validation import Interval, check_param
from perturbkit.models.base import Model, Task, check_task, digest

__all__ = ["CallableModel"]


class CallableModel(Model):
    """A function (or any callable object) from a batch ``X`` to outputs.

    Args:
        fn: called as ``fn(X)`` on numpy batches; returns class probabilities
            ``(n, k)`` for classification, ``(n,)`` or ``(n, m)`` for regression.
        task: ``"classification"`` or ``"regression"``. When None, the task is
            read from the first call: a 2-D output with at least 2 columns
            whose rows are non-negative and sum to 1 (within 1e-6) is
            classification, anything else regression. Pass the task when a
            classifier's first batch could be mistaken (or returns one column).
        classes: class labels in probability-column order.
        n_outputs: the number of classes or targets, when known beforehand.
        batch_size: rows per ``fn`` call; default: the whole batch in one call.
    """

    kind = "callable"

    def __init__(
        self,
        fn: Any,
        *,
        task: Task | None = None,
        classes: Any = None,
        n_outputs: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        task = check_task(task, owner="wrap")
        if n_outputs is not None:
            check_param("wrap", "n_outputs", n_outputs, Interval(1, None, integer=True))
        if batch_size is not None:
            check_param("wrap", "batch_size", batch_size, Interval(1, None, integer=True))
        self.fn = fn
        self.batch_size = batch_size
        super().__init__(
            task=task, n_outputs=n_outputs, classes=classes, description=qualified_name(fn)
        )

    def _predict(self, X: np.ndarray) -> np.ndarray:
        if self.batch_size is None or X.shape[0] <= self.batch_size:
            return np.asarray(self.fn(X))
        parts = [
            np.asarray(self.fn(X[start : start + self.batch_size]))
            for start in range(0, X.shape[0], self.batch_size)
        ]
        return np.concatenate(parts, axis=0)

    def fingerprint(self) -> str:
        """Digest of the callable's qualified name: edit the function, rename it to tell."""
        return digest("callable", self.description)


def qualified_name(fn: Any) -> str:
    """``module.qualname`` of a function, or of a callable object's class."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    target = fn if hasattr(fn, "__qualname__") else type(fn)
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", None) or type(fn).__name__
    return f"{module}.{name}" if module else name
