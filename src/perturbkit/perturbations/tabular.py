"""Tabular and numeric perturbations of ``(n, d)`` feature arrays.

Feature statistics (``scale_`` = each feature's standard deviation,
``min_``/``max_``) are learnt from reference data with :meth:`fit`, so that a
row's perturbation does not depend on which rows share its batch. An unfitted
instance called directly learns them from the ``X`` it is given.

Every class accepts ``columns=`` (indices, or names when fitted on a
DataFrame) to perturb only those features: this powers per-feature
sensitivity. Input of an integer dtype is perturbed as float64; floating
dtypes are kept, and the draws are float64 whatever the dtype.

The catalogue, by what one unit of magnitude means:

- noise std in feature stds: ``gaussian_noise``, ``uniform_noise``, ``laplace_noise``;
- std of the relative change: ``multiplicative_noise``;
- bias in feature stds (deterministic): ``sensor_drift``;
- grid step in feature stds (deterministic): ``quantization``;
- fraction of entries (at most 1): ``missing_values``, ``outliers``, ``feature_swap``.
"""

from __future__ import annotations

import abc
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from perturbkit._validation import Columns, Interval, OneOf
from perturbkit.exceptions import DataError, ParameterError
from perturbkit.perturbations.base import Perturbation, Reference
from perturbkit.perturbations.registry import register

__all__ = [
    "FeatureSwap",
    "GaussianNoise",
    "LaplaceNoise",
    "MissingValues",
    "MultiplicativeNoise",
    "Outliers",
    "Quantization",
    "SensorDrift",
    "TabularPerturbation",
    "UniformNoise",
]


def _as_c_float64(X: Any) -> np.ndarray:
    # C order: reductions sum in a layout-dependent order, and a DataFrame's array is
    # often Fortran-ordered; the statistics must not depend on the container.
    return np.ascontiguousarray(np.asarray(X, dtype=np.float64))


def _reference_stats(arr: np.ndarray) -> dict[str, Any]:
    """Per-feature std, mean, min, max of a 2-D float64 reference (NaN ignored)."""
    has_nan = bool(np.isnan(arr).any())
    # All-NaN columns warn ("Mean of empty slice"); their statistics are NaN by design.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scale = np.nanstd(arr, axis=0) if has_nan else arr.std(axis=0)
        mean = np.nanmean(arr, axis=0) if has_nan else arr.mean(axis=0)
        lo = np.nanmin(arr, axis=0) if has_nan else arr.min(axis=0)
        hi = np.nanmax(arr, axis=0) if has_nan else arr.max(axis=0)
    return {"scale": np.nan_to_num(scale), "mean": mean, "min": lo, "max": hi, "has_nan": has_nan}


class TabularPerturbation(Perturbation):
    """Shared machinery: reference statistics, column targeting, DataFrame in/out."""

    modality = "tabular"
    rowwise = True
    _constraints: ClassVar[dict[str, Any]] = {"columns": Columns()}

    columns: Sequence[int | str] | int | str | None

    # -- fitting --------------------------------------------------------------------
    def fit(self, X_ref: Any) -> TabularPerturbation:
        """Learn ``scale_`` (std), ``mean_``, ``min_``, ``max_`` and ``feature_names_in_``.

        NaN entries of ``X_ref`` are ignored; a feature with no finite value
        gets ``scale_`` 0 and NaN ``mean_``/``min_``/``max_``.
        """
        self._validate_params()
        names = getattr(X_ref, "columns", None)
        ref = X_ref if isinstance(X_ref, Reference) else Reference(_as_c_float64(X_ref))
        arr = ref.memo("float64", lambda: _as_c_float64(ref.data))
        if arr.ndim != 2 or arr.shape[0] == 0:
            raise DataError(
                f"{type(self).__name__}.fit needs a 2-D (rows x features) reference with at "
                f"least one row. Got shape {arr.shape} instead."
            )
        stats = ref.memo("tabular_stats", lambda: _reference_stats(arr))
        self.scale_, self.mean_, self.min_, self.max_ = (
            stats["scale"],
            stats["mean"],
            stats["min"],
            stats["max"],
        )
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self._fit_extra(arr, stats["has_nan"])
        self.n_features_in_ = arr.shape[1]
        self.feature_names_in_ = None if names is None else np.asarray([str(c) for c in names])
        self.column_mask_ = self._resolve_columns(arr.shape[1], self.feature_names_in_)
        return self

    def _fit_extra(self, arr: np.ndarray, has_nan: bool) -> None:
        """Hook for subclasses that learn more reference statistics (warnings silenced)."""

    @property
    def fitted(self) -> bool:
        return hasattr(self, "scale_")

    def _resolve_columns(self, n_features: int, names: np.ndarray | None) -> np.ndarray | None:
        cols = self.columns
        if cols is None:
            return None
        if isinstance(cols, (str, int, np.integer)):
            cols = [cols]
        mask = np.zeros(n_features, dtype=bool)
        for c in cols:
            if isinstance(c, str):
                if names is None or c not in names:
                    allowed = (
                        "fit on a DataFrame to use names"
                        if names is None
                        else (
                            "one of "
                            + ", ".join(repr(str(n)) for n in names[:8])
                            + (", …" if len(names) > 8 else "")
                        )
                    )
                    raise ParameterError(
                        f"The 'columns' parameter of {type(self).__name__} names column {c!r}, "
                        f"which the data does not have; allowed: {allowed}."
                    )
                mask[int(np.flatnonzero(names == c)[0])] = True
            else:
                i = int(c)
                if not -n_features <= i < n_features:
                    raise ParameterError(
                        f"The 'columns' parameter of {type(self).__name__} must index one of "
                        f"{n_features} features. Got {i} instead."
                    )
                mask[i] = True
        return mask

    # -- batch in / out -------------------------------------------------------------
    def prepare(self, X: Any) -> tuple[np.ndarray, Any]:
        token = None
        if hasattr(X, "columns") and hasattr(X, "index"):
            token = (X.columns, X.index)
        arr = np.asarray(X)
        if not np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(np.float64)
        if arr.ndim != 2:
            raise DataError(
                f"{type(self).__name__} needs a 2-D (rows x features) batch. "
                f"Got shape {arr.shape} instead."
            )
        if self.fitted and arr.shape[1] != self.n_features_in_:
            raise DataError(
                f"{type(self).__name__} was fitted on {self.n_features_in_} features; "
                f"the batch has {arr.shape[1]}."
            )
        return arr, token

    def restore(self, X_new: np.ndarray, token: Any) -> Any:
        if token is None:
            return X_new
        import pandas as pd

        return pd.DataFrame(X_new, columns=token[0], index=token[1])

    def _with_stats(self, arr: np.ndarray) -> Perturbation:
        clone = type(self)(**self.get_params())
        clone._validated = True
        return clone.fit(arr)

    def _target(self, X: np.ndarray, X_new: np.ndarray) -> np.ndarray:
        """Keep untargeted columns as they were."""
        mask = getattr(self, "column_mask_", None)
        if mask is None:
            return X_new
        X_new[:, ~mask] = X[:, ~mask]
        return X_new

    def _scale(self, dtype: np.dtype, absolute: bool) -> np.ndarray | float:
        return 1.0 if absolute else self.scale_.astype(dtype, copy=False)


@dataclass(frozen=True)
class _Weights:
    """A non-empty list of finite real numbers (one per feature)."""

    def ok(self, v: Any) -> bool:
        if isinstance(v, (str, bytes)) or not isinstance(v, (Sequence, np.ndarray)):
            return False
        items = list(np.ravel(np.asarray(v, dtype=object))) if isinstance(v, np.ndarray) else v
        return len(items) > 0 and all(
            isinstance(w, (int, float, np.integer, np.floating))
            and not isinstance(w, (bool, np.bool_))
            and math.isfinite(float(w))
            for w in items
        )

    def __str__(self) -> str:
        return "a non-empty list of finite per-feature weights"


@dataclass(frozen=True)
class _Choice:
    """One of some strings, or a value accepted by ``other`` (no array comparisons)."""

    options: tuple[str, ...]
    other: Any

    def ok(self, v: Any) -> bool:
        if isinstance(v, str):
            return v in self.options
        return bool(self.other.ok(v))

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options) + f" or {self.other}"


def _float64(X: np.ndarray) -> np.ndarray:
    return X.astype(np.float64, copy=False)


def _sample_uniform(rng: np.random.Generator, X: np.ndarray) -> np.ndarray:
    """U[0, 1) per entry, in float64 whatever X's dtype."""
    return rng.random(X.shape)


# -- additive noise ---------------------------------------------------------------------
class _AdditiveNoise(TabularPerturbation):
    """Additive noise with standard deviation ``magnitude × feature std``.

    Subclasses draw standardised noise (mean 0, variance 1) in :meth:`_standard`;
    :meth:`apply` scales it by ``magnitude · s_j``, so the realised delta on
    feature j has standard deviation exactly ``magnitude · s_j`` whatever the
    distribution, and ``(X' − X) / magnitude`` is the same at every magnitude.
    """

    unit = "noise standard deviation, as a fraction of each feature's standard deviation"
    _constraints: ClassVar[dict[str, Any]] = {
        "columns": Columns(),
        "absolute": OneOf((True, False)),
    }

    def __init__(
        self, *, absolute: bool = False, columns: Sequence[int | str] | None = None
    ) -> None:
        self.absolute = absolute
        self.columns = columns

    @abc.abstractmethod
    def _standard(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Standardised draws (mean 0, variance 1) of the given shape."""

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # Draw in float64 whatever X's dtype, so the draws do not depend on the dtype.
        return self._standard(rng, X.shape)

    def apply(self, X: np.ndarray, params: np.ndarray, magnitude: float) -> np.ndarray:
        scale = self._scale(np.dtype(np.float64), self.absolute)
        out = (X + (magnitude * scale) * params).astype(X.dtype, copy=False)
        return self._target(X, out)


@register
class GaussianNoise(_AdditiveNoise):
    """Additive Gaussian noise, N(0, (magnitude · s_j)²) on feature j.

    ``s_j`` is feature j's standard deviation in the reference data, or 1 with
    ``absolute=True``. Magnitude 0.1 adds noise of a tenth of each feature's
    spread.
    """

    name = "gaussian_noise"
    version = 1

    def _standard(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.standard_normal(shape)


@register
class UniformNoise(_AdditiveNoise):
    """Additive uniform noise, U(−a, a) with a = √3 · magnitude · s_j on feature j.

    One unit of magnitude is the same as for :class:`GaussianNoise`: the noise
    standard deviation is ``magnitude · s_j``, where ``s_j`` is feature j's
    reference standard deviation (1 with ``absolute=True``). The noise is
    bounded: no entry moves by more than ``√3 · magnitude · s_j``.
    """

    name = "uniform_noise"
    version = 1

    def _standard(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.uniform(-math.sqrt(3.0), math.sqrt(3.0), shape)


@register
class LaplaceNoise(_AdditiveNoise):
    """Additive Laplace noise with scale b = magnitude · s_j / √2 on feature j.

    One unit of magnitude is the same as for :class:`GaussianNoise`: the noise
    standard deviation is ``magnitude · s_j``, where ``s_j`` is feature j's
    reference standard deviation (1 with ``absolute=True``). Heavier tails than
    Gaussian noise of the same spread: occasional large errors.
    """

    name = "laplace_noise"
    version = 1

    def _standard(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.laplace(0.0, 1.0 / math.sqrt(2.0), shape)


@register
class MultiplicativeNoise(TabularPerturbation):
    """Multiplicative Gaussian noise, x' = x · (1 + magnitude · ξ) with ξ ~ N(0, 1).

    Magnitude is the standard deviation of the relative change ``x'/x − 1``:
    magnitude 0.05 is a ±5 % (one sigma) gain error, entry by entry. Zeros stay
    zero and the sign of an entry flips only where ``magnitude · ξ < −1``. No
    reference statistics are used, so the output does not depend on ``fit``.
    """

    name = "multiplicative_noise"
    version = 1
    unit = "standard deviation of the relative change x'/x − 1"
    _constraints: ClassVar[dict[str, Any]] = {"columns": Columns()}

    def __init__(self, *, columns: Sequence[int | str] | None = None) -> None:
        self.columns = columns

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal(X.shape)

    def apply(self, X: np.ndarray, params: np.ndarray, magnitude: float) -> np.ndarray:
        out = (X * (1.0 + magnitude * params)).astype(X.dtype, copy=False)
        return self._target(X, out)


# -- deterministic ----------------------------------------------------------------------
@register
class SensorDrift(TabularPerturbation):
    """Deterministic bias, x' = x + magnitude · s_j · w_j on feature j.

    One unit of magnitude shifts every targeted feature by one reference
    standard deviation ``s_j`` (1 with ``absolute=True``). ``direction="up"``
    (w_j = +1) or ``"down"`` (w_j = −1) drifts all features the same way; a
    list of one weight per feature (e.g. ``[1, -1, 0.5]``) sets each feature's
    sign and relative size. Untargeted features (see ``columns``) stay as they
    are whatever their weight. No randomness: ``stochastic`` is False.
    """

    name = "sensor_drift"
    version = 1
    unit = "bias, in reference standard deviations of each feature (times its weight)"
    stochastic = False
    _constraints: ClassVar[dict[str, Any]] = {
        "columns": Columns(),
        "absolute": OneOf((True, False)),
        "direction": _Choice(("up", "down"), _Weights()),
    }

    def __init__(
        self,
        *,
        direction: str | Sequence[float] = "up",
        absolute: bool = False,
        columns: Sequence[int | str] | None = None,
    ) -> None:
        self.direction = direction
        self.absolute = absolute
        self.columns = columns

    def _weights(self, n_features: int) -> np.ndarray:
        if isinstance(self.direction, str):
            return np.full(n_features, 1.0 if self.direction == "up" else -1.0)
        w = np.asarray(self.direction, dtype=np.float64).ravel()
        if w.shape[0] != n_features:
            raise ParameterError(
                f"The 'direction' parameter of {type(self).__name__} must list one weight per "
                f"feature ({n_features}). Got {w.shape[0]} weights instead."
            )
        return w

    def _fit_extra(self, arr: np.ndarray, has_nan: bool) -> None:
        self._weights(arr.shape[1])  # fail at fit time on a length mismatch

    def apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        shift = (
            magnitude * self._scale(np.dtype(np.float64), self.absolute) * self._weights(X.shape[1])
        )
        out = (X + shift).astype(X.dtype, copy=False)
        return self._target(X, out)


@register
class Quantization(TabularPerturbation):
    """Deterministic rounding to a grid of step magnitude · s_j on feature j.

    One unit of magnitude is a grid step of one reference standard deviation
    ``s_j`` (1 with ``absolute=True``): magnitude 0.5 keeps two levels per
    standard deviation. The grid is anchored at the reference minimum ``min_``
    (``min_ + k · step``), so a row's result does not depend on its batch once
    fitted. Each entry moves by at most half a step; NaN stays NaN and a
    feature with zero spread (step 0) is left as it is.
    """

    name = "quantization"
    version = 1
    unit = "grid step, as a fraction of each feature's standard deviation"
    stochastic = False
    _constraints: ClassVar[dict[str, Any]] = {
        "columns": Columns(),
        "absolute": OneOf((True, False)),
    }

    def __init__(
        self, *, absolute: bool = False, columns: Sequence[int | str] | None = None
    ) -> None:
        self.absolute = absolute
        self.columns = columns

    def apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        Xf = _float64(X)
        step = magnitude * np.broadcast_to(
            self._scale(np.dtype(np.float64), self.absolute), (X.shape[1],)
        )
        anchor = np.nan_to_num(self.min_)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            grid = anchor + np.round((Xf - anchor) / step) * step
        out = np.where(step > 0, grid, Xf).astype(X.dtype, copy=False)
        return self._target(X, out)


# -- entry-wise masks -------------------------------------------------------------------
_FILLS = ("nan", "mean", "median")


@register
class MissingValues(TabularPerturbation):
    """Entries go missing independently, each with probability magnitude.

    Magnitude is the expected fraction of targeted entries that go missing
    (at most 1). The mask is ``u < magnitude`` for one uniform draw ``u`` per
    entry, so what is missing at 0.1 is also missing at 0.2. ``fill`` says what
    a missing entry becomes: ``"nan"`` (for models with their own NaN handling),
    ``"mean"`` or ``"median"`` of the feature in the reference data (mean
    imputation), or a given float.
    """

    name = "missing_values"
    version = 1
    unit = "fraction of entries missing"
    max_magnitude = 1.0
    _constraints: ClassVar[dict[str, Any]] = {
        "columns": Columns(),
        "fill": _Choice(_FILLS, Interval()),
    }

    def __init__(
        self, *, fill: str | float = "nan", columns: Sequence[int | str] | None = None
    ) -> None:
        self.fill = fill
        self.columns = columns

    def _fit_extra(self, arr: np.ndarray, has_nan: bool) -> None:
        """Also learn ``median_``, for ``fill="median"``."""
        self.median_ = np.nanmedian(arr, axis=0) if has_nan else np.median(arr, axis=0)

    def _fill_value(self) -> np.ndarray | float:
        if self.fill == "nan":
            return np.nan
        if self.fill == "mean":
            return self.mean_
        if self.fill == "median":
            return self.median_
        return float(self.fill)

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _sample_uniform(rng, X)

    def apply(self, X: np.ndarray, params: np.ndarray, magnitude: float) -> np.ndarray:
        out = np.where(params < magnitude, self._fill_value(), X).astype(X.dtype, copy=False)
        return self._target(X, out)


@register
class Outliers(TabularPerturbation):
    """A fraction magnitude of entries become outliers.

    Magnitude is the expected fraction of targeted entries replaced (at most 1);
    the mask ``u < magnitude`` nests across magnitudes. ``mode="salt_pepper"``
    sets a chosen entry to its feature's reference minimum or maximum (a fair
    coin per entry); ``mode="spike"`` adds ``±k · s_j`` (a fair coin for the
    sign), with ``s_j`` the feature's reference standard deviation. The coins
    are drawn with the mask, so an entry's outlier value is the same at every
    magnitude.
    """

    name = "outliers"
    version = 1
    unit = "fraction of entries replaced by outliers"
    max_magnitude = 1.0
    _constraints: ClassVar[dict[str, Any]] = {
        "columns": Columns(),
        "mode": OneOf(("salt_pepper", "spike")),
        "k": Interval(0.0, None, closed_low=False),
    }

    def __init__(
        self,
        *,
        mode: str = "salt_pepper",
        k: float = 5.0,
        columns: Sequence[int | str] | None = None,
    ) -> None:
        self.mode = mode
        self.k = k
        self.columns = columns

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        u = _sample_uniform(rng, X)
        coin = _sample_uniform(rng, X) < 0.5
        return u, coin

    def apply(
        self, X: np.ndarray, params: tuple[np.ndarray, np.ndarray], magnitude: float
    ) -> np.ndarray:
        u, coin = params
        if self.mode == "salt_pepper":
            value = np.where(coin, self.max_, self.min_)
        else:
            value = _float64(X) + np.where(coin, self.k, -self.k) * self.scale_
        out = np.where(u < magnitude, value, X).astype(X.dtype, copy=False)
        return self._target(X, out)


@register
class FeatureSwap(TabularPerturbation):
    """A fraction magnitude of rows take another row's value, column by column.

    Each column gets its own random permutation of the rows of the batch (the
    engine's logical block), and an entry chosen by ``u < magnitude`` takes
    the value of the row the permutation sends it to; masks nest across
    magnitudes. This breaks the feature's link to the rest of its row while
    keeping the feature's marginal distribution: each swapped entry is a draw
    from the column's values in the batch, and at magnitude 1 the column is
    exactly a permutation of itself (permutation importance). A row can draw
    itself (probability 1/n), so the realised fraction of changed entries is
    about ``magnitude · (1 − 1/n)``. The donors come from the batch, so the
    result depends on which rows share it; no reference statistics are used.
    """

    name = "feature_swap"
    version = 1
    unit = "fraction of rows whose value is swapped in, per feature"
    max_magnitude = 1.0
    rowwise = False  # permutations index rows within a block
    _constraints: ClassVar[dict[str, Any]] = {"columns": Columns()}

    def __init__(self, *, columns: Sequence[int | str] | None = None) -> None:
        self.columns = columns

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        u = _sample_uniform(rng, X)
        n, d = X.shape
        rows = np.broadcast_to(np.arange(n, dtype=np.intp)[:, None], (n, d))
        perm = rng.permuted(rows, axis=0)
        return u, perm

    def apply(
        self, X: np.ndarray, params: tuple[np.ndarray, np.ndarray], magnitude: float
    ) -> np.ndarray:
        u, perm = params
        donors = np.take_along_axis(X, perm, axis=0)
        out = np.where(u < magnitude, donors, X).astype(X.dtype, copy=False)
        return self._target(X, out)
