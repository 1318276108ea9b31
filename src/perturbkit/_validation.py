"""Boundary checks that produce one-line errors: what, the value, what is allowed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perturbkit.exceptions import DataError, ParameterError


@dataclass(frozen=True)
class Interval:
    """A real interval constraint; ``None`` bounds are open-ended."""

    low: float | None = None
    high: float | None = None
    closed_low: bool = True
    closed_high: bool = True
    integer: bool = False

    def ok(self, v: Any) -> bool:
        if isinstance(v, (bool, np.bool_)):
            return False
        if self.integer and not isinstance(v, (int, np.integer)):
            return False
        if not isinstance(v, (int, float, np.integer, np.floating)):
            return False
        f = float(v)
        if math.isnan(f):
            return False
        if self.low is not None and (f < self.low or (f == self.low and not self.closed_low)):
            return False
        if self.high is not None and (f > self.high or (f == self.high and not self.closed_high)):
            return False
        return not math.isinf(f)

    def __str__(self) -> str:
        kind = "an int" if self.integer else "a float"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        lb = "[" if self.closed_low and self.low is not None else "("
        rb = "]" if self.closed_high and self.high is not None else ")"
        return f"{kind} in the range {lb}{lo}, {hi}{rb}"


@dataclass(frozen=True)
class OneOf:
    """A choice among fixed values."""

    options: tuple[Any, ...]

    def ok(self, v: Any) -> bool:
        return v in self.options

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)


@dataclass(frozen=True)
class Columns:
    """``None`` or a non-empty sequence of column indices or names."""

    def ok(self, v: Any) -> bool:
        if v is None:
            return True
        if isinstance(v, (str, int, np.integer)):
            return True
        return (
            isinstance(v, Sequence)
            and len(v) > 0
            and all(isinstance(c, (str, int, np.integer)) for c in v)
        )

    def __str__(self) -> str:
        return "None or a non-empty list of column indices or names"


@dataclass(frozen=True)
class Anything:
    def ok(self, v: Any) -> bool:
        return True

    def __str__(self) -> str:
        return "anything"


@dataclass(frozen=True)
class Either:
    """Accepts a value that satisfies any of its constraints."""

    choices: tuple[Any, ...]

    def ok(self, v: Any) -> bool:
        return any(c.ok(v) for c in self.choices)

    def __str__(self) -> str:
        return " or ".join(str(c) for c in self.choices)


def check_param(owner: str, name: str, value: Any, constraint: Any) -> None:
    """Raise ParameterError when ``value`` violates ``constraint``."""
    if not constraint.ok(value):
        raise ParameterError(
            f"The '{name}' parameter of {owner} must be {constraint}. Got {value!r} instead."
        )


def check_magnitude(owner: str, magnitude: Any, *, high: float | None = None) -> float:
    """A magnitude is a finite float >= 0 (and <= ``high`` where the unit is bounded)."""
    ok = isinstance(magnitude, (int, float, np.integer, np.floating)) and not isinstance(
        magnitude, (bool, np.bool_)
    )
    f = float(magnitude) if ok else float("nan")
    if not ok or not math.isfinite(f) or f < 0 or (high is not None and f > high):
        upper = "inf)" if high is None else f"{high:g}]"
        raise ParameterError(
            f"The 'magnitude' parameter of {owner} must be a finite float in the range "
            f"[0, {upper}. Got {magnitude!r} instead."
        )
    return f


def check_magnitudes(magnitudes: Any, *, owner: str = "sweep") -> np.ndarray:
    """A non-empty, strictly increasing list of valid magnitudes."""
    try:
        arr = [check_magnitude(owner, m) for m in np.atleast_1d(np.asarray(magnitudes)).tolist()]
    except TypeError as exc:  # pragma: no cover - defensive
        raise ParameterError(
            f"The 'magnitudes' parameter of {owner} must be a list of floats >= 0. "
            f"Got {magnitudes!r} instead."
        ) from exc
    if not arr:
        raise ParameterError(
            f"The 'magnitudes' parameter of {owner} must not be empty. Got {magnitudes!r} instead."
        )
    out = np.unique(np.asarray(arr, dtype=np.float64))
    if len(out) != len(arr):
        raise ParameterError(
            f"The 'magnitudes' parameter of {owner} must not repeat a value. "
            f"Got {list(arr)} instead."
        )
    return out


def as_numeric_2d(X: Any, *, name: str = "X", allow_nan: bool = False) -> np.ndarray:
    """Validate tabular data: numeric, at least 2-D after promotion, non-empty, finite."""
    if hasattr(X, "dtypes") and hasattr(X, "columns"):
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        bad = [
            (str(c), str(dt))
            for c, dt in zip(X.columns, X.dtypes)
            if not (is_numeric_dtype(dt) or is_bool_dtype(dt))
        ]
        if bad:
            raise DataError(
                f"{name} must be numeric; column(s) {', '.join(repr(c) for c, _ in bad[:5])} "
                f"have dtype {bad[0][1]}. Encode them first (e.g. one-hot)."
            )
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise DataError(f"{name} could not be read as an array: {exc}.") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise DataError(
            f"{name} must be numeric. Got an array of dtype {arr.dtype} instead; "
            "encode non-numeric columns first."
        )
    if arr.ndim == 1:
        raise DataError(
            f"{name} must be 2-D (rows x features) or more. Got a 1-D array of shape "
            f"{arr.shape} instead; use X.reshape(-1, 1) for a single feature."
        )
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise DataError(f"{name} must have at least one row. Got shape {arr.shape} instead.")
    if np.iscomplexobj(arr):
        raise DataError(f"{name} must be real-valued. Got dtype {arr.dtype} instead.")
    if not allow_nan and np.issubdtype(arr.dtype, np.floating):
        finite = np.isfinite(arr)
        if not finite.all():
            idx = np.argwhere(~finite)[0]
            raise DataError(
                f"{name} must be finite. Got {arr[tuple(idx)]} at index "
                f"{tuple(int(i) for i in idx)} "
                f"({int((~finite).sum())} non-finite values in all); impute or drop them first."
            )
    return arr


def check_same_length(X: np.ndarray, y: Any) -> np.ndarray:
    y_arr = np.asarray(y)
    if y_arr.ndim == 0 or y_arr.shape[0] != X.shape[0]:
        raise DataError(
            f"X and y must have the same number of rows. Got X with {X.shape[0]} rows and "
            f"y with shape {y_arr.shape} instead."
        )
    if np.issubdtype(y_arr.dtype, np.floating) and not np.isfinite(y_arr).all():
        raise DataError(
            f"y must be finite. Got {int((~np.isfinite(y_arr)).sum())} non-finite values."
        )
    return y_arr


def as_text_batch(X: Any, *, name: str = "X") -> np.ndarray:
    """Validate a text batch: a non-empty 1-D sequence of str, as a 1-D object array."""
    if isinstance(X, str):
        raise DataError(
            f"{name} must be a list of strings, not one string. Got {X[:40]!r} instead."
        )
    if hasattr(X, "tolist") and not isinstance(X, list):
        X = X.tolist()
    try:
        items = list(X)
    except TypeError as exc:
        raise DataError(
            f"{name} must be a list of strings. Got {type(X).__name__} instead."
        ) from exc
    if not items:
        raise DataError(f"{name} must have at least one row. Got an empty list instead.")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise DataError(
                f"{name} must be a list of strings. "
                f"Got {type(t).__name__} {t!r} at row {i} instead."
            )
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out
