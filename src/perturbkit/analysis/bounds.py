"""Robustness bounds: high-probability upper bounds on a model's error under random input noise.

The measure (after Levene & Harris, 2026): for a data set ``X`` (and labels
``y``) and a noise level ε, estimate and bound from above

- the label-free **deviation** ``S(ε) = E ‖f(x + δ) − f(x)‖²`` (mean squared
  output deviation), which works on unlabeled production data, and
- the perturbed **MSE** ``M(ε) = E ‖f(x + δ) − y‖²``, directly, and by the
  Minkowski inequality ``M(ε) ≤ (√M(0) + √S(ε))²``, which needs labels only
  for the clean pass.

``δ`` has independent entries of standard deviation ``ε · s_j`` (``s_j`` =
feature j's standard deviation with ``relative=True``, 1 otherwise) and a
Gaussian, uniform or Laplace shape. For regression ``‖·‖²`` is the mean over
the outputs (sklearn's ``mean_squared_error``); for classifiers it is the sum
over the class probabilities (the multi-class Brier score, in [0, 2]).

How the bound accounts for the finite data *and* the finite noise draws
(``target="population"``, the default): each point ``x_i`` gets ``K`` noise
draws and its per-point average ``g_i = (1/K) Σ_k L(x_i, δ_ik)``. When the
points are an i.i.d. sample of the deployment distribution and the draws of
different points are independent, the ``g_i`` are i.i.d. with mean exactly the
population perturbed error ``E_x E_δ L`` (whatever the dependence *between*
the K draws of one point, which is how quasi-Monte Carlo and antithetic draws
stay valid). So a one-sample upper confidence bound on the mean of the ``g_i``
bounds the population value; its variance ``Var(g) = Var_x(m(x)) +
E_x Var(g | x)`` contains both sources. ``target="dataset"`` treats the data
set as fixed (the quantity is ``(1/n) Σ_i E_δ L(x_i, δ)``) and bounds only the
noise-draw error, from the spread of independent replicates within each point.

See ``docs/bounds.md`` for when each confidence method is valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from perturbkit._rng import canonical_json, root_entropy, stable_key, stream
from perturbkit._types import SeedLike
from perturbkit._validation import Interval, OneOf, as_numeric_2d, check_param
from perturbkit.exceptions import DataError, ParameterError
from perturbkit.models.base import label_indices

__all__ = [
    "CONFIDENCE_METHODS",
    "NOISES",
    "SAMPLERS",
    "TARGETS",
    "RobustnessCurve",
    "clopper_pearson",
    "mean_upper_bound",
    "plot_robustness_curves",
    "robustness_curve",
]

NOISES: tuple[str, ...] = ("gaussian", "uniform", "laplace")
SAMPLERS: tuple[str, ...] = ("qmc", "mc", "antithetic", "orthogonal")
CONFIDENCE_METHODS: tuple[str, ...] = ("t", "bootstrap", "bernstein", "hoeffding")
TARGETS: tuple[str, ...] = ("population", "dataset")

MEASURE = "robustness_curve"
VERSION = 2
"""Bumped when the same inputs and seed would give different numbers.

2: quasi-Monte Carlo with ``target="population"`` spends all ``K`` draws of a
point on one net (it was two half-size replicates, which only the dataset
target needs)."""

QMC_REPLICATES = 2
"""Independent digital shifts of one scrambled Sobol' net per point (quasi-Monte Carlo) with
``target="dataset"``, where the spread between them is the only honest measure of a point's
noise-draw error. Two is the fewest that measure it and the best: a scrambled net's variance
falls faster than 1/K, so splitting the K draws of a point into R nets of K/R points costs
more the larger R is (measured in ``benchmarks/bounds.py``). ``target="population"`` needs no
replicates (the points are the replicates) and uses one net of K points."""
ORTHOGONAL_NOISES: tuple[str, ...] = ("gaussian",)
"""Noise shapes of the orthogonal sampler: it writes a draw as radius × direction, which keeps
each draw exactly distributed as the noise only for the rotation-invariant Gaussian."""
_SOBOL_BITS = 30
_SOBOL_MAX_DIM = 21201
_ELEMENTS = 1 << 22
"""Budget of float64 elements (32 MiB) for one array of stacked perturbed inputs."""
_BLOCK_ELEMENTS = 1 << 20
"""Elements of noise drawn from one random stream: the logical block owns its rows' draws."""
_MAX_BLOCK_ROWS = 1024
_SQRT3 = math.sqrt(3.0)
_LAPLACE_B = 1.0 / math.sqrt(2.0)
_OWNER = "robustness_curve"


# ---------------------------------------------------------------------------------------
# Confidence bounds
# ---------------------------------------------------------------------------------------
def clopper_pearson(
    k: Any, n: Any, *, confidence: float = 0.95, side: str = "upper"
) -> float | np.ndarray:
    """Exact one-sided Clopper–Pearson bound on a binomial proportion.

    With ``k`` successes in ``n`` independent Bernoulli(p) trials, the upper
    bound ``u`` satisfies ``P(p ≤ u) ≥ confidence`` for every p (the lower
    bound likewise). For independent trials with unequal probabilities (a
    Poisson-binomial count) the bound on their mean probability stays valid
    and is conservative (Hoeffding 1956).

    Args:
        k: successes, an int or an array of ints in ``[0, n]``.
        n: trials (int or array, >= 1).
        confidence: in (0, 1).
        side: ``"upper"`` or ``"lower"``.

    Returns:
        A float (scalars in) or an array of bounds.
    """
    check_param("clopper_pearson", "confidence", confidence, _OPEN01)
    check_param("clopper_pearson", "side", side, OneOf(("upper", "lower")))
    k_arr = np.asarray(k, dtype=np.float64)
    n_arr = np.asarray(n, dtype=np.float64)
    if (n_arr < 1).any() or (k_arr < 0).any() or (k_arr > n_arr).any():
        raise ParameterError(
            "The 'k' and 'n' parameters of clopper_pearson must satisfy 0 <= k <= n, n >= 1. "
            f"Got k={k!r}, n={n!r} instead."
        )
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore"):
        if side == "upper":
            out = np.where(
                k_arr >= n_arr, 1.0, special.betaincinv(k_arr + 1, n_arr - k_arr, 1 - alpha)
            )
        else:
            out = np.where(k_arr <= 0, 0.0, special.betaincinv(k_arr, n_arr - k_arr + 1, alpha))
    return float(out) if out.ndim == 0 else out


def mean_upper_bound(
    values: Any,
    *,
    confidence: float = 0.95,
    method: str = "t",
    value_range: float | None = None,
    n_bootstrap: int = 2000,
    seed: SeedLike = None,
) -> float | np.ndarray:
    """One-sided upper confidence bound on the mean of i.i.d. values.

    Args:
        values: shape ``(n,)``, or ``(n, c)`` to bound ``c`` columns at once
            (the bootstrap then resamples the rows of all columns alike).
        confidence: ``1 − α``, in (0, 1).
        method:
            - ``"t"``: mean + t₍ₙ₋₁, ₁₋α₎ · sd / √n; valid as n grows (CLT)
              for any finite variance; skewed values with small n under-cover.
            - ``"bootstrap"``: BCa bootstrap (bias-corrected and accelerated),
              ``n_bootstrap`` resamples; asymptotically valid, corrects for
              skewness better than ``t``.
            - ``"bernstein"``: empirical Bernstein (Maurer & Pontil 2009,
              Thm 4): mean + √(2 V ln(2/α) / n) + 7 B ln(2/α) / (3 (n − 1)).
              Valid for every n when each value lies in ``[0, B]``.
            - ``"hoeffding"``: mean + B √(ln(1/α) / (2n)); valid for every n
              for values in ``[0, B]``; wider than Bernstein when the spread is
              small.
        value_range: ``B``, needed by ``bernstein`` and ``hoeffding``.
        n_bootstrap: resamples of the bootstrap.
        seed: seeds the bootstrap resamples.

    Returns:
        A float for 1-D values, else an array of ``c`` bounds. One value
        (n = 1) gives ``inf`` except under ``hoeffding``/``bernstein`` (then B).
    """
    _check_method_args("mean_upper_bound", confidence, method, value_range, n_bootstrap)
    G = np.asarray(values, dtype=np.float64)
    if G.ndim not in (1, 2) or G.shape[0] == 0 or not np.isfinite(G).all():
        raise DataError(
            "The values of mean_upper_bound must be a non-empty finite 1-D or 2-D array. "
            f"Got shape {G.shape} instead."
        )
    one = G.ndim == 1
    G2 = G[:, None] if one else G
    if value_range is not None:
        _check_range(G2, float(value_range), "mean_upper_bound", "value")
    key = stable_key("mean_upper_bound@1")
    out = _one_sample_upper(
        G2, 1.0 - confidence, method, value_range, n_bootstrap, root_entropy(seed), key
    )
    return float(out[0]) if one else out


_OPEN01 = Interval(0, 1, closed_low=False, closed_high=False)


def _check_method_args(
    owner: str, confidence: Any, method: Any, value_range: Any, n_bootstrap: Any
) -> None:
    check_param(owner, "confidence", confidence, _OPEN01)
    check_param(owner, "method", method, OneOf(CONFIDENCE_METHODS))
    if value_range is not None:
        check_param(owner, "value_range", value_range, Interval(0, None, closed_low=False))
    elif method in ("bernstein", "hoeffding") and owner == "mean_upper_bound":
        raise ParameterError(
            f"The 'value_range' parameter of {owner} must be given (an upper bound B on every "
            f"value, all in [0, B]) when method={method!r}. Got None instead."
        )
    check_param(owner, "n_bootstrap", n_bootstrap, Interval(100, None, integer=True))


def _check_range(G: np.ndarray, B: float, owner: str, what: str) -> None:
    lo, hi = float(G.min()), float(G.max())
    if lo < 0 or hi > B * (1 + 1e-12):
        raise DataError(
            f"A {what} of {hi if hi > B else lo:.6g} lies outside [0, value_range={B:g}]; the "
            f"distribution-free bounds of {owner} need every value in [0, B]. Pass a larger "
            "value_range."
        )


def _one_sample_upper(
    G: np.ndarray,
    alpha: float,
    method: str,
    B: float | None,
    n_bootstrap: int,
    root: int,
    key: int,
) -> np.ndarray:
    """Upper bounds on the column means of ``G`` (n, c), i.i.d. rows."""
    n = G.shape[0]
    mean = G.mean(axis=0)
    if method in ("bernstein", "hoeffding"):
        assert B is not None  # checked by the callers
        if n == 1:
            return np.full(G.shape[1], B)
        la = math.log(1.0 / alpha)
        if method == "hoeffding":
            up = mean + B * math.sqrt(la / (2 * n))
        else:
            l2 = math.log(2.0 / alpha)
            var = G.var(axis=0, ddof=1)
            up = mean + np.sqrt(2 * var * l2 / n) + 7 * B * l2 / (3 * (n - 1))
        return np.minimum(up, B)
    if n == 1:
        return np.full(G.shape[1], np.inf)
    if method == "t":
        sd = G.std(axis=0, ddof=1)
        return mean + special.stdtrit(n - 1, 1 - alpha) * sd / math.sqrt(n)
    return _bca_upper(G, alpha, n_bootstrap, root, key)


def _bootstrap_means(G: np.ndarray, n_bootstrap: int, root: int, key: int) -> np.ndarray:
    """Means of ``n_bootstrap`` resamples of the rows.

    Resamples come in fixed logical blocks (their size depends only on the
    number of rows), each block from its own stream: the means do not depend
    on how the work is chunked.
    """
    n, c = G.shape
    per = int(max(1, min(64, _BLOCK_ELEMENTS // n)))
    out = np.empty((n_bootstrap, c))
    for blk, start in enumerate(range(0, n_bootstrap, per)):
        stop = min(n_bootstrap, start + per)
        idx = stream(root, key, 2, blk).integers(0, n, size=(stop - start, n))
        idx += (np.arange(stop - start) * n)[:, None]
        W = np.bincount(idx.ravel(), minlength=(stop - start) * n).reshape(stop - start, n)
        out[start:stop] = (W @ G) / n
    return out


def _bca_upper(G: np.ndarray, alpha: float, n_bootstrap: int, root: int, key: int) -> np.ndarray:
    """One-sided BCa upper bound of the mean (Efron 1987), jackknife acceleration in closed form."""
    theta = G.mean(axis=0)
    boot = _bootstrap_means(G, n_bootstrap, root, key)
    # Bias correction: where the estimate sits among the bootstrap means (ties split).
    below = (boot < theta).mean(axis=0) + 0.5 * (boot == theta).mean(axis=0)
    below = np.clip(below, 1.0 / (n_bootstrap + 1), n_bootstrap / (n_bootstrap + 1))
    z0 = special.ndtri(below)
    # Jackknife acceleration of the mean: leave-one-out deviations are (g_i − ḡ)/(n − 1).
    dev = G - theta
    s2 = (dev**2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(s2 > 0, (dev**3).sum(axis=0) / (6.0 * s2**1.5), 0.0)
    z = special.ndtri(1 - alpha)
    level = special.ndtr(z0 + (z0 + z) / (1 - a * (z0 + z)))
    up = np.array([np.quantile(boot[:, j], level[j], method="linear") for j in range(G.shape[1])])
    return np.where(s2 > 0, np.maximum(up, theta), theta)


def _dataset_upper(
    mean: np.ndarray,
    var_of_mean: np.ndarray,
    n_rep: int,
    alpha: float,
    method: str,
    B: float | None,
) -> np.ndarray:
    """Upper bounds on (1/n) Σ_i m_i from independent rows with ``n_rep`` replicates each.

    ``mean`` (n, c) are the per-row averages, ``var_of_mean`` (n, c) unbiased
    estimates of their variances from the spread of the replicates.
    """
    n = mean.shape[0]
    est = mean.mean(axis=0)
    if method == "hoeffding":
        assert B is not None
        return np.minimum(est + B * math.sqrt(math.log(1.0 / alpha) / (2 * n * n_rep)), B)
    se = np.sqrt(np.maximum(var_of_mean.sum(axis=0), 0.0)) / n
    return est + special.stdtrit(n * (n_rep - 1), 1 - alpha) * se


# ---------------------------------------------------------------------------------------
# Noise draws: common random numbers, batched, keyed by identity
# ---------------------------------------------------------------------------------------
def _standard_draws(rng: np.random.Generator, noise: str, shape: tuple[int, ...]) -> np.ndarray:
    """Standard (zero-mean, unit-variance) draws of the noise shape."""
    if noise == "gaussian":
        return rng.standard_normal(shape)
    if noise == "uniform":
        return rng.uniform(-_SQRT3, _SQRT3, shape)
    return rng.laplace(0.0, _LAPLACE_B, shape)


def _inverse_cdf(noise: str, u: np.ndarray) -> np.ndarray:
    """Map uniforms in (0, 1) to standard draws of the noise shape."""
    if noise == "gaussian":
        return special.ndtri(u)
    if noise == "uniform":
        u *= 2.0 * _SQRT3
        u -= _SQRT3
        return u
    c = u - 0.5
    return -_LAPLACE_B * np.sign(c) * np.log1p(-2.0 * np.abs(c))


def _sobol(qmc: Any, d: int, rng: np.random.Generator) -> Any:
    """A scrambled Sobol' engine seeded by ``rng`` (``rng=`` since SciPy 1.15, ``seed=`` before)."""
    import inspect

    key = "rng" if "rng" in inspect.signature(qmc.Sobol).parameters else "seed"
    return qmc.Sobol(d, scramble=True, bits=_SOBOL_BITS, **{key: rng})


def orthogonal_replicates(n_draws: int, n_features: int, target: str) -> int:
    """Independent replicates per row of the orthogonal sampler.

    ``target="population"`` needs none: 1. ``target="dataset"``: one per paired
    block (``2d`` draws) when ``K`` is a multiple of ``2d`` and at least ``4d``;
    else two halves of ``K/2`` draws (``K`` even); else 1 (odd ``K``: only
    Hoeffding can use it).
    """
    K, d = n_draws, n_features
    if target == "population":
        return 1
    if K % (2 * d) == 0 and K >= 4 * d:
        return K // (2 * d)
    return 2 if K % 2 == 0 else 1


def _orthogonal_frame(
    rng: np.random.Generator, shape: tuple[int, ...], m: int, d: int
) -> tuple[np.ndarray, np.ndarray]:
    """Directions ``(*shape, d, m)`` and radius quantiles ``(*shape, m)`` of orthogonal draws.

    The directions are the first ``m <= d`` columns of a Haar-random orthogonal
    matrix (QR of a Gaussian matrix, the signs fixed by R's diagonal), so each is
    uniform on the sphere. The quantiles ``p_k = (π(k) + U_k) / m`` (a random
    permutation ``π``, uniform ``U_k``) are each exactly uniform on (0, 1) and
    stratified over the block.
    """
    G = rng.standard_normal((*shape, d, m))
    Q, R = np.linalg.qr(G)
    Q *= np.where(np.diagonal(R, axis1=-2, axis2=-1) < 0, -1.0, 1.0)[..., None, :]
    p = np.argsort(rng.random((*shape, m)), axis=-1).astype(np.float64)
    p += rng.random((*shape, m))
    p /= m
    return Q, p


def _chi_radius(p: np.ndarray, d: int) -> np.ndarray:
    """The radius ``r`` with ``r² = F⁻¹_{χ²_d}(p)``: the norm of a standard d-dim Gaussian."""
    return np.sqrt(2.0 * special.gammaincinv(0.5 * d, p))


def _orthogonal_draws(
    rng: np.random.Generator, shape: tuple[int, ...], M: int, d: int
) -> np.ndarray:
    """``M`` standard Gaussian draws ``(*shape, M, d)``: orthogonal directions, stratified radii.

    A draw is ``z = r u`` with ``u`` uniform on the sphere and ``r²`` exactly χ²_d,
    independent of ``u``: exactly N(0, I). The draws come in

    - paired blocks of ``2d``: ``d`` orthogonal directions ``u_k``, each used twice, as
      ``r_k u_k`` and ``−r'_k u_k`` with reflected radius quantiles
      (``r_k² = F⁻¹(p_k)``, ``r'_k² = F⁻¹(1 − p_k)``). The pair cancels most of the
      odd part of a loss (the linear term ``2 (f(x) − y) ∇f·δ`` of the squared
      error), and ``Σ_k (r_k² + r'_k²) (g·u_k)²`` is nearly ``2d ‖g‖²`` since
      ``Σ_k (g·u_k)² = ‖g‖²`` and ``r_k² + r'_k²`` is nearly constant: the quadratic
      term ``(∇f·δ)²`` of the deviation averages to nearly its mean;
    - then, for the ``M mod 2d`` draws left, unpaired blocks of up to ``d``
      orthogonal directions with stratified radii (``Σ_k r_k²`` close to ``m·d``).
    """
    pairs, rest = divmod(M, 2 * d)
    parts = []
    if pairs:
        Q, p = _orthogonal_frame(rng, (*shape, pairs), d, d)
        plus = Q * _chi_radius(p, d)[..., None, :]
        Q *= -_chi_radius(1.0 - p, d)[..., None, :]
        Z = np.concatenate([np.swapaxes(plus, -1, -2), np.swapaxes(Q, -1, -2)], axis=-2)
        parts.append(Z.reshape(*shape, pairs * 2 * d, d))
    while rest:
        m = min(rest, d)
        Q, p = _orthogonal_frame(rng, shape, m, d)
        Q *= _chi_radius(p, d)[..., None, :]
        parts.append(np.swapaxes(Q, -1, -2))
        rest -= m
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-2)


@dataclass(frozen=True)
class _Sampler:
    """Draws ``K`` standard noise vectors per row, in logical blocks of rows.

    The block size depends only on ``K`` and the number of features, so the
    draws of a row never depend on the compute chunk or the batch size.
    Replicates: ``mc`` → each draw; ``antithetic`` → each pair (z, −z);
    ``qmc`` → each of ``qmc_replicates`` random digital shifts of one scrambled
    Sobol' net of ``K / qmc_replicates`` points, shared by all rows (each row
    has its own independent shifts, so rows stay independent given the net,
    and each draw is exactly distributed as the noise); ``orthogonal`` → each
    of ``orthogonal_replicates`` groups of ``K / R`` draws, a group made of
    independent paired blocks of ``2d`` draws (``d`` orthogonal directions used
    as ± pairs) and unpaired blocks of up to ``d`` for the rest (see
    :func:`_orthogonal_draws`).
    """

    kind: str
    noise: str
    n_draws: int
    n_features: int
    root: int
    key: int
    base: np.ndarray | None = None
    qmc_replicates: int = QMC_REPLICATES
    orthogonal_replicates: int = 1

    @classmethod
    def build(
        cls,
        kind: str,
        noise: str,
        n_draws: int,
        n_features: int,
        root: int,
        *,
        qmc_replicates: int = QMC_REPLICATES,
        orthogonal_replicates: int = 1,
    ) -> _Sampler:
        key = stable_key(
            f"{MEASURE}@{VERSION}:"
            + canonical_json({"sampler": kind, "noise": noise, "n_draws": n_draws})
        )
        base = None
        if kind == "qmc":
            from scipy.stats import qmc

            m = n_draws // qmc_replicates
            sob = _sobol(qmc, n_features, stream(root, key, 1))
            pts = sob.random_base2(max(0, math.ceil(math.log2(m))))[:m]
            base = np.ldexp(pts, _SOBOL_BITS).astype(np.uint64)
        return cls(
            kind,
            noise,
            n_draws,
            n_features,
            root,
            key,
            base,
            qmc_replicates,
            orthogonal_replicates,
        )

    @property
    def n_replicates(self) -> int:
        if self.kind == "mc":
            return self.n_draws
        if self.kind == "antithetic":
            return self.n_draws // 2
        if self.kind == "orthogonal":
            return self.orthogonal_replicates
        return self.qmc_replicates

    @property
    def block_rows(self) -> int:
        return int(
            max(1, min(_MAX_BLOCK_ROWS, _BLOCK_ELEMENTS // (self.n_draws * self.n_features)))
        )

    def block(self, b: int, rows: int) -> np.ndarray:
        """Standard draws ``(rows, K, d)`` of logical block ``b``."""
        rng = stream(self.root, self.key, 0, b)
        K, d = self.n_draws, self.n_features
        if self.kind == "mc":
            return _standard_draws(rng, self.noise, (rows, K, d))
        if self.kind == "antithetic":
            z = _standard_draws(rng, self.noise, (rows, K // 2, 1, d))
            return np.concatenate([z, -z], axis=2).reshape(rows, K, d)
        if self.kind == "orthogonal":
            R = self.orthogonal_replicates
            return _orthogonal_draws(rng, (rows, R), K // R, d).reshape(rows, K, d)
        assert self.base is not None
        shift = rng.integers(
            0, 1 << _SOBOL_BITS, size=(rows, self.qmc_replicates, 1, d), dtype=np.uint64
        )
        v = np.bitwise_xor(self.base[None, None], shift).astype(np.float64)
        v += 0.5  # cell centres: never exactly 0 or 1
        u = np.ldexp(v, -_SOBOL_BITS)
        return _inverse_cdf(self.noise, u).reshape(rows, K, d)


# ---------------------------------------------------------------------------------------
# The curve
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RobustnessCurve:
    """Estimates and upper confidence bounds of a model's error against noise level.

    Attributes:
        table: one row per level (see :meth:`to_pandas`).
        meta: how it was computed: ``task``, ``noise``, ``relative``,
            ``sampler``, ``method``, ``target``, ``confidence``,
            ``alpha_per_bound``, ``n_points``, ``n_draws``, ``n_replicates``,
            ``root_seed``, ``normalizer`` (Var(y), or Var(f(x)) without
            labels) and ``normalizer_name``, ``rate_method`` (classifiers).
        label: the name shown in figures.
    """

    table: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def to_pandas(self) -> pd.DataFrame:
        """The table (a copy): one row per level.

        Columns: ``level``, ``deviation``, ``deviation_upper``,
        ``deviation_normalized``, ``deviation_upper_normalized``; with labels
        also ``clean_mse``, ``clean_mse_upper`` (population target),
        ``mse``, ``mse_upper`` (direct bound), ``mse_upper_minkowski``,
        ``tighter`` (``"direct"`` or ``"minkowski"``), ``mse_normalized``,
        ``mse_upper_normalized``; classifiers add ``flip_rate``,
        ``flip_rate_upper`` and, with labels, ``clean_error_rate``,
        ``error_rate``, ``error_rate_upper``.
        """
        return self.table.reset_index(drop=True).copy()

    @property
    def levels(self) -> np.ndarray:
        return self.table["level"].to_numpy(dtype=np.float64)

    @property
    def has_labels(self) -> bool:
        return "mse" in self.table.columns

    def _column(self, column: str | None, owner: str) -> str:
        if column is None:
            return "mse_upper_normalized" if self.has_labels else "deviation_upper_normalized"
        numeric = [c for c in self.table.columns if c not in ("level", "tighter")]
        if column not in numeric:
            raise ParameterError(
                f"The 'column' parameter of RobustnessCurve.{owner} must be one of "
                f"{', '.join(repr(c) for c in numeric)}. Got {column!r} instead."
            )
        return column

    def auc(self, column: str | None = None, *, normalize: bool = False) -> float:
        """Area under ``column`` against level (trapezoid rule over the grid).

        ``column`` defaults to the normalised bound (``mse_upper_normalized``,
        or ``deviation_upper_normalized`` without labels). ``normalize=True``
        divides by the level range, giving the curve's mean height, which is
        comparable across grids of different extent.
        """
        col = self._column(column, "auc")
        x = self.levels
        v = self.table[col].to_numpy(dtype=np.float64)
        if len(x) < 2:
            return 0.0 if not normalize else float(v[0])
        area = float(np.sum(0.5 * (v[1:] + v[:-1]) * np.diff(x)))
        return area / float(x[-1] - x[0]) if normalize and x[-1] > x[0] else area

    def radius(self, tolerance: float, column: str | None = None) -> float:
        """The largest grid level whose bound, and every smaller level's, is <= ``tolerance``.

        Only grid levels are claimed (nothing is interpolated); NaN when even
        the smallest level exceeds the tolerance. Each level's bound holds
        with the curve's confidence; for a statement about all levels at once
        compute the curve with ``simultaneous=True``.
        """
        check_param(
            "RobustnessCurve.radius", "tolerance", tolerance, Interval(0, None, closed_low=True)
        )
        col = self._column(column, "radius")
        v = self.table[col].to_numpy(dtype=np.float64)
        ok = np.cumprod(v <= tolerance).astype(bool)
        if not ok.any():
            return float("nan")
        return float(self.levels[np.flatnonzero(ok)[-1]])

    def to_tidy(self) -> pd.DataFrame:
        """The sweep-style tidy table (``perturbation``, ``version``, ``params``,
        ``magnitude``, ``repeat``, ``metric``, ``group``, ``value``): one row per
        level and numeric column, for the results store."""
        params = canonical_json(
            {
                k: self.meta.get(k)
                for k in (
                    "relative",
                    "sampler",
                    "method",
                    "target",
                    "confidence",
                    "n_draws",
                    "simultaneous",
                )
            }
        )
        cols = [c for c in self.table.columns if c not in ("level", "tighter")]
        long = self.table.melt(id_vars=["level"], value_vars=cols, var_name="metric")
        return pd.DataFrame(
            {
                "perturbation": f"{self.meta.get('noise', 'gaussian')}_noise",
                "version": VERSION,
                "params": params,
                "magnitude": long["level"].to_numpy(dtype=np.float64),
                "repeat": 0,
                "metric": long["metric"].astype(str).to_numpy(),
                "group": "",
                "value": long["value"].to_numpy(dtype=np.float64),
            }
        )

    @classmethod
    def from_tidy(
        cls, table: pd.DataFrame, meta: dict[str, Any] | None = None, label: str = ""
    ) -> RobustnessCurve:
        """Rebuild a curve from :meth:`to_tidy` rows (for example, loaded from the store)."""
        wide = (
            table.pivot_table(index="magnitude", columns="metric", values="value", sort=True)
            .rename_axis(columns=None)
            .reset_index()
            .rename(columns={"magnitude": "level"})
        )
        if {"mse_upper", "mse_upper_minkowski"} <= set(wide.columns):
            wide["tighter"] = np.where(
                wide["mse_upper"] <= wide["mse_upper_minkowski"] * (1 + 1e-12),
                "direct",
                "minkowski",
            )
        order = [c for c in _COLUMN_ORDER if c in wide.columns]
        rest = [c for c in wide.columns if c not in order]
        return cls(wide[order + rest], dict(meta or {}), label)

    def __repr__(self) -> str:
        m = self.meta
        return (
            f"<RobustnessCurve {self.label or m.get('task')}: {len(self.table)} levels, "
            f"{m.get('noise')} noise, {m.get('target')} bound at {m.get('confidence')} "
            f"({m.get('method')}, {m.get('sampler')})>"
        )


_COLUMN_ORDER = (
    "level",
    "deviation",
    "deviation_upper",
    "clean_mse",
    "mse",
    "mse_upper",
    "clean_mse_upper",
    "mse_upper_minkowski",
    "tighter",
    "flip_rate",
    "flip_rate_upper",
    "clean_error_rate",
    "error_rate",
    "error_rate_upper",
    "deviation_normalized",
    "deviation_upper_normalized",
    "mse_normalized",
    "mse_upper_normalized",
)


def _check_levels(levels: Any) -> np.ndarray:
    try:
        arr = np.atleast_1d(np.asarray(levels, dtype=np.float64))
    except (TypeError, ValueError):
        arr = np.array([np.nan])
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all() or (arr < 0).any():
        raise ParameterError(
            f"The 'levels' parameter of {_OWNER} must be a non-empty list of finite floats "
            f">= 0. Got {levels!r} instead."
        )
    out = np.unique(arr)
    if out.size != arr.size:
        raise ParameterError(
            f"The 'levels' parameter of {_OWNER} must not repeat a level. Got {levels!r} instead."
        )
    return out


def _label_index(model: Any, y: Any, n: int, k: int) -> np.ndarray:
    """Class indices (probability columns) of classification labels."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(
            f"Classification labels y must be 1-D with one label per row of X ({n}). "
            f"Got shape {y.shape} instead."
        )
    return label_indices(y, classes=getattr(model, "classes_", None), n_classes=k)


def _predict(model: Any, A: np.ndarray, batch_size: int) -> np.ndarray:
    if A.shape[0] <= batch_size:
        return model(A)
    return np.concatenate(
        [model(A[s : s + batch_size]) for s in range(0, A.shape[0], batch_size)], axis=0
    )


class _Accumulator:
    """Per-row, per-level averages over the draws and the variance of those averages."""

    def __init__(self, names: Sequence[str], n: int, n_levels: int, n_rep: int) -> None:
        self.n_rep = n_rep
        self.mean = {k: np.zeros((n, n_levels)) for k in names}
        self.var = {k: np.zeros((n, n_levels)) for k in names}
        self.lo = dict.fromkeys(names, np.inf)
        self.hi = dict.fromkeys(names, -np.inf)

    def add(self, name: str, rows: slice, level: int, values: np.ndarray) -> None:
        """``values`` (rows, K): one loss per draw."""
        r = values.shape[0]
        self.lo[name] = min(self.lo[name], float(values.min()))
        self.hi[name] = max(self.hi[name], float(values.max()))
        reps = values.reshape(r, self.n_rep, -1).mean(axis=2)
        self.mean[name][rows, level] = reps.mean(axis=1)
        if self.n_rep > 1:
            self.var[name][rows, level] = reps.var(axis=1, ddof=1) / self.n_rep

    def constant(self, name: str, rows: slice, level: int, values: np.ndarray) -> None:
        """A loss that does not depend on the draw (level 0)."""
        self.mean[name][rows, level] = values
        self.var[name][rows, level] = 0.0
        if values.size:
            self.lo[name] = min(self.lo[name], float(values.min()))
            self.hi[name] = max(self.hi[name], float(values.max()))


def robustness_curve(
    model: Any,
    X: Any,
    y: Any = None,
    *,
    levels: Any,
    noise: str = "gaussian",
    relative: bool = True,
    confidence: float = 0.95,
    n_draws: int = 64,
    method: str = "t",
    sampler: str = "qmc",
    target: str = "population",
    scale: Any = None,
    value_range: float | None = None,
    simultaneous: bool = False,
    n_bootstrap: int = 2000,
    batch_size: int = 65536,
    seed: SeedLike = None,
    label: str | None = None,
) -> RobustnessCurve:
    """Error of ``model`` on ``X`` against input-noise level, with upper confidence bounds.

    Each row gets ``n_draws`` noise draws; the same standard draws are scaled
    by every level (common random numbers), so curves are smooth and the
    differences between levels are sharp. The model is called on stacked
    ``(rows × draws)`` batches of at most ``batch_size`` rows.

    Args:
        model: anything :func:`perturbkit.wrap` accepts.
        X: data ``(n, d)`` (or ``(n, ...)``: noise is added entry by entry).
        y: labels, optional. Regression: ``(n,)`` or ``(n, m)``;
            classification: class labels. Without labels only the label-free
            deviation is computed.
        levels: noise levels ε >= 0 (sorted; 0 is the clean model).
        noise: ``"gaussian"``, ``"uniform"`` or ``"laplace"``; in every case
            ε is the noise standard deviation (in units of ``scale``).
        relative: ε in units of each feature's standard deviation in ``X``
            (features with zero spread get no noise); ``False``: absolute units.
        confidence: ``1 − α`` of each bound, in (0, 1).
        n_draws: noise draws per row ``K`` (even for ``qmc`` and
            ``antithetic``; a power of two suits ``qmc`` best; a multiple of
            ``2d`` suits ``orthogonal`` best, ``d`` the number of features).
        method: ``"t"`` (default), ``"bootstrap"``, ``"bernstein"`` or
            ``"hoeffding"``; see :func:`mean_upper_bound`. The ``dataset``
            target supports ``"t"`` and ``"hoeffding"``.
        sampler: ``"qmc"`` (scrambled Sobol' net through the inverse CDF, a
            random digital shift per row: one net of ``K`` points for the
            population target, two independent shifts of a ``K/2``-point net
            for the dataset target), ``"mc"`` (plain Monte Carlo),
            ``"antithetic"`` (pairs δ, −δ) or ``"orthogonal"`` (Gaussian
            noise only: δ = radius × direction with ``d`` orthogonal random
            directions per block, each used as a ± pair with reflected,
            stratified χ radii, so every draw is exactly Gaussian while the
            leading terms of the deviation, (∇f·δ)², and of the squared
            error, 2 (f(x) − y) ∇f·δ, nearly cancel their spread over a
            block of ``2d`` draws; the dataset target takes one replicate per
            block when ``K`` is a multiple of ``2d`` and at least ``4d``,
            else two halves, which need ``K`` even; costs a QR of a ``d × d``
            matrix per block, suited to tabular inputs).
        target: ``"population"``: bound the error on the distribution ``X``
            was sampled from (finite data and finite draws);
            ``"dataset"``: bound the expected error on this ``X`` (finite draws).
        scale: per-feature noise scale (e.g. training-set standard
            deviations), instead of ``X``'s own; needs ``relative=True``.
            Fixing it makes the noise independent of the evaluated sample.
        value_range: ``B`` with every per-point squared error and deviation in
            ``[0, B]``; required by ``bernstein``/``hoeffding`` for
            regression (classifiers: 2 by default, rates: 1).
        simultaneous: divide α among the levels (Bonferroni) so that all the
            curve's bounds hold together with probability ``confidence``.
        n_bootstrap: resamples for ``method="bootstrap"``.
        batch_size: the most rows per model call.
        seed: root seed; ``None`` draws fresh entropy (stored in ``meta``).
        label: the curve's name in figures.

    Classifiers' ``error_rate_upper`` and ``flip_rate_upper`` are exact
    Clopper–Pearson bounds where the (point, draw) indicators are independent
    trials: ``target="dataset"`` with ``sampler="mc"``, or ``target="population"``
    with ``n_draws=1``. Elsewhere, the defaults included, the draws of a point
    are not independent trials, and the rates use ``method`` on the per-point
    rates (B = 1); ``meta["rate_method"]`` says which.

    Returns:
        A :class:`RobustnessCurve`.

    Raises:
        ParameterError: a bad level, confidence, method, sampler, n_draws …
        DataError: bad ``X``/``y``, or a value outside ``value_range``.
        ModelError: the model's outputs break the Model contract.
    """
    from perturbkit.models import wrap

    lv = _check_levels(levels)
    check_param(_OWNER, "noise", noise, OneOf(NOISES))
    check_param(_OWNER, "relative", relative, OneOf((True, False)))
    check_param(_OWNER, "sampler", sampler, OneOf(SAMPLERS))
    check_param(_OWNER, "target", target, OneOf(TARGETS))
    check_param(_OWNER, "simultaneous", simultaneous, OneOf((True, False)))
    _check_method_args(_OWNER, confidence, method, value_range, n_bootstrap)
    check_param(_OWNER, "n_draws", n_draws, Interval(1, None, integer=True))
    check_param(_OWNER, "batch_size", batch_size, Interval(1, None, integer=True))
    if sampler == "orthogonal" and noise not in ORTHOGONAL_NOISES:
        raise ParameterError(
            f"The 'sampler' parameter of {_OWNER} must be 'qmc', 'mc' or 'antithetic' for "
            f"noise={noise!r}; 'orthogonal' works only with noise='gaussian'. "
            "Got 'orthogonal' instead."
        )
    if target == "dataset" and method not in ("t", "hoeffding"):
        raise ParameterError(
            f"The 'method' parameter of {_OWNER} must be 't' or 'hoeffding' when "
            f"target='dataset'. Got {method!r} instead."
        )
    if sampler in ("qmc", "antithetic") and n_draws % 2:
        raise ParameterError(
            f"The 'n_draws' parameter of {_OWNER} must be even for sampler={sampler!r}. "
            f"Got {n_draws} instead."
        )
    if target == "dataset" and method == "t" and sampler != "orthogonal":
        reps = {"mc": n_draws, "antithetic": n_draws // 2, "qmc": QMC_REPLICATES}[sampler]
        if reps < 2:
            raise ParameterError(
                f"The 'n_draws' parameter of {_OWNER} must give at least 2 independent "
                f"replicates per row with target='dataset' (mc: >= 2, antithetic: >= 4). "
                f"Got {n_draws} with sampler={sampler!r} instead."
            )
    Xa = as_numeric_2d(X, name="X")
    n = Xa.shape[0]
    if target == "population" and n < 2:
        raise DataError(
            f"X must have at least 2 rows for a bound over points (target='population'). "
            f"Got {n} row instead; use target='dataset'."
        )
    shape = Xa.shape[1:]
    d = int(np.prod(shape))
    if sampler == "qmc" and d > _SOBOL_MAX_DIM:
        raise ParameterError(
            f"The 'sampler' parameter of {_OWNER} must be 'mc' or 'antithetic' for inputs with "
            f"more than {_SOBOL_MAX_DIM} features (the Sobol' limit). Got 'qmc' for {d} "
            "features instead."
        )
    orth_reps = orthogonal_replicates(n_draws, d, target) if sampler == "orthogonal" else 1
    if target == "dataset" and method == "t" and sampler == "orthogonal" and orth_reps < 2:
        raise ParameterError(
            f"The 'n_draws' parameter of {_OWNER} must be even with sampler='orthogonal' and "
            f"target='dataset' (the t bound needs at least 2 independent replicates per row). "
            f"Got {n_draws} instead."
        )
    in_dtype = Xa.dtype if np.issubdtype(Xa.dtype, np.floating) else np.dtype(np.float64)
    Xf = np.ascontiguousarray(Xa.reshape(n, d), dtype=np.float64)
    s = _noise_scale(Xf, relative, scale, d)

    m_ = wrap(model)
    F0 = _predict(m_, Xa, batch_size).reshape(n, -1)
    task = m_.task or "regression"
    classification = task == "classification"
    k = F0.shape[1]
    Y = None
    yi = None
    if y is not None:
        if classification:
            yi = _label_index(m_, y, n, k)
            Y = np.zeros((n, k))
            Y[np.arange(n), yi] = 1.0
        else:
            Y = _regression_labels(y, n, k)
    reduce = np.sum if classification else np.mean
    B = value_range if value_range is not None else (2.0 if classification else None)
    if method in ("bernstein", "hoeffding") and B is None:
        raise ParameterError(
            f"The 'value_range' parameter of {_OWNER} must be given (an upper bound B on every "
            f"per-point squared error and deviation) when method={method!r} for a regression "
            "model. Got None instead."
        )

    root = root_entropy(seed)
    # The population bound needs no replicates within a point (the i.i.d. points are its
    # replicates), so QMC spends all K draws of a point on one net there.
    qmc_reps = QMC_REPLICATES if target == "dataset" else 1
    smp = _Sampler.build(
        sampler, noise, n_draws, d, root, qmc_replicates=qmc_reps, orthogonal_replicates=orth_reps
    )
    R = smp.n_replicates
    names = ["dev"]
    if Y is not None:
        names.append("se")
    if classification:
        names.append("flip")
        if yi is not None:
            names.append("err")
    acc = _Accumulator(names, n, len(lv), R)
    pred0 = F0.argmax(axis=1) if classification else None
    se0 = reduce((F0 - Y) ** 2, axis=1) if Y is not None else None
    clean0 = {"dev": np.zeros(n), "flip": np.zeros(n), "se": se0}
    if yi is not None:
        clean0["err"] = (pred0 != yi).astype(np.float64)

    block = smp.block_rows
    rows_per_chunk = max(1, min(batch_size // n_draws, _ELEMENTS // (n_draws * d)))
    rows_per_chunk = max(block, (rows_per_chunk // block) * block)
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        rows = slice(start, stop)
        r = stop - start
        Z = np.concatenate(
            [
                smp.block(b, min(n, (b + 1) * block) - b * block)
                for b in range(start // block, (stop - 1) // block + 1)
            ],
            axis=0,
        )
        Z *= s  # (r, K, d): the noise of level 1
        buf = np.empty_like(Z)
        Xc = Xf[rows, None, :]
        for li, lev in enumerate(lv):
            if lev == 0.0:  # the clean model: no noise, no model call
                for nm in names:
                    acc.constant(nm, rows, li, clean0[nm][rows])
                continue
            np.multiply(Z, lev, out=buf)
            buf += Xc
            A = buf.reshape((r * n_draws, *shape))
            if A.dtype != in_dtype:
                A = A.astype(in_dtype)
            F = _predict(m_, A, batch_size).reshape(r, n_draws, k)
            acc.add("dev", rows, li, reduce((F - F0[rows, None, :]) ** 2, axis=2))
            if Y is not None:
                acc.add("se", rows, li, reduce((F - Y[rows, None, :]) ** 2, axis=2))
            if classification:
                pred = F.argmax(axis=2)
                acc.add("flip", rows, li, (pred != pred0[rows, None]).astype(np.float64))
                if yi is not None:
                    acc.add("err", rows, li, (pred != yi[rows, None]).astype(np.float64))

    alpha = 1.0 - confidence
    a_lvl = alpha / len(lv) if simultaneous else alpha
    boot_key = stable_key(f"{MEASURE}@{VERSION}:bootstrap")
    rate_method = _rate_method(target, sampler, n_draws, method)
    if B is not None and method in ("bernstein", "hoeffding"):
        for nm in ("dev", "se"):
            if nm in acc.mean:
                _check_range(
                    np.array([acc.lo[nm], acc.hi[nm]]), B, _OWNER, "per-draw squared value"
                )

    def upper(
        name_cols: list[np.ndarray],
        var_cols: list[np.ndarray],
        a: float,
        rng_b: float | None,
        meth: str,
    ) -> np.ndarray:
        G = np.concatenate(name_cols, axis=1)
        if target == "population":
            return _one_sample_upper(G, a, meth, rng_b, n_bootstrap, root, boot_key)
        V = np.concatenate(var_cols, axis=1)
        return _dataset_upper(G, V, R, a, meth, rng_b)

    L = len(lv)
    table: dict[str, Any] = {"level": lv}
    dev_mean = acc.mean["dev"].mean(axis=0)
    dev_up = upper([acc.mean["dev"]], [acc.var["dev"]], a_lvl, B, method)
    table["deviation"] = dev_mean
    table["deviation_upper"] = dev_up
    if Y is not None:
        clean = float(se0.mean())  # type: ignore[union-attr]
        table["clean_mse"] = np.full(L, clean)
        table["mse"] = acc.mean["se"].mean(axis=0)
        table["mse_upper"] = upper([acc.mean["se"]], [acc.var["se"]], a_lvl, B, method)
        if target == "population":
            # Minkowski with α split between the clean error and the deviation (union bound).
            both = upper(
                [se0[:, None], acc.mean["dev"]],  # type: ignore[index]
                [np.zeros((n, 1)), acc.var["dev"]],
                a_lvl / 2,
                B,
                method,
            )
            clean_up, dev_half = both[0], both[1:]
            table["clean_mse_upper"] = np.full(L, clean_up)
            table["mse_upper_minkowski"] = (np.sqrt(clean_up) + np.sqrt(dev_half)) ** 2
        else:
            table["mse_upper_minkowski"] = (math.sqrt(clean) + np.sqrt(dev_up)) ** 2
        table["tighter"] = np.where(
            table["mse_upper"] <= table["mse_upper_minkowski"] * (1 + 1e-12), "direct", "minkowski"
        )
    if classification:
        for nm, col in (("flip", "flip_rate"), ("err", "error_rate")):
            if nm not in acc.mean:
                continue
            if nm == "err":
                table["clean_error_rate"] = np.full(L, float((pred0 != yi).mean()))
            table[col] = acc.mean[nm].mean(axis=0)
            table[col + "_upper"] = _rate_upper(
                acc.mean[nm], acc.var[nm], n_draws, a_lvl, rate_method, upper
            )
    if Y is not None:
        normalizer, nname = float(reduce(Y.var(axis=0))), "var(y)"
    else:
        normalizer, nname = float(reduce(F0.var(axis=0))), "var(f(x))"
    cols = ["deviation", "deviation_upper"] + (["mse", "mse_upper"] if Y is not None else [])
    for c in cols:
        with np.errstate(divide="ignore", invalid="ignore"):
            table[c + "_normalized"] = (
                np.asarray(table[c]) / normalizer if normalizer > 0 else np.full(L, np.nan)
            )
    meta = {
        "measure": f"{MEASURE}@{VERSION}",
        "task": task,
        "noise": noise,
        "relative": bool(relative),
        "scale_given": scale is not None,
        "sampler": sampler,
        "method": method,
        "target": target,
        "confidence": float(confidence),
        "simultaneous": bool(simultaneous),
        "alpha_per_bound": float(a_lvl),
        "n_points": int(n),
        "n_features": d,
        "n_draws": int(n_draws),
        "n_replicates": int(R),
        "n_outputs": int(k),
        "root_seed": int(root),
        "value_range": None if B is None else float(B),
        "normalizer": normalizer,
        "normalizer_name": nname,
        "rate_method": rate_method if classification else None,
        "model": getattr(m_, "description", type(model).__name__),
    }
    return RobustnessCurve(pd.DataFrame(table), meta, label or "")


def _noise_scale(Xf: np.ndarray, relative: bool, scale: Any, d: int) -> np.ndarray:
    if scale is not None:
        if not relative:
            raise ParameterError(
                f"The 'scale' parameter of {_OWNER} needs relative=True (noise in units of "
                "each feature's scale). Got relative=False instead."
            )
        s = np.asarray(scale, dtype=np.float64).reshape(-1)
        if s.size != d or not np.isfinite(s).all() or (s < 0).any():
            raise ParameterError(
                f"The 'scale' parameter of {_OWNER} must hold {d} finite values >= 0, one per "
                f"feature. Got {s.size} value(s) instead."
            )
        return s
    if relative:
        return Xf.std(axis=0)
    return np.ones(d)


def _regression_labels(y: Any, n: int, m: int) -> np.ndarray:
    Y = np.asarray(y)
    if not np.issubdtype(Y.dtype, np.number):
        raise DataError(f"Regression labels y must be numeric. Got dtype {Y.dtype} instead.")
    Y = Y.astype(np.float64).reshape(Y.shape[0], -1) if Y.ndim else Y
    if Y.ndim != 2 or Y.shape != (n, m):
        raise DataError(
            f"Regression labels y must have shape ({n},) or ({n}, {m}) to match the model's "
            f"outputs. Got shape {np.asarray(y).shape} instead."
        )
    if not np.isfinite(Y).all():
        raise DataError(f"y must be finite. Got {int((~np.isfinite(Y)).sum())} non-finite values.")
    return Y


def _rate_method(target: str, sampler: str, n_draws: int, method: str) -> str:
    """Clopper–Pearson where the (point, draw) indicators are independent trials."""
    if (target == "dataset" and sampler == "mc") or (target == "population" and n_draws == 1):
        return "clopper-pearson"
    return method


def _rate_upper(
    mean: np.ndarray,
    var: np.ndarray,
    n_draws: int,
    alpha: float,
    rate_method: str,
    upper: Any,
) -> np.ndarray:
    if rate_method == "clopper-pearson":
        n = mean.shape[0]
        counts = np.rint(mean * n_draws).sum(axis=0)
        return np.asarray(
            clopper_pearson(counts, n * n_draws, confidence=1 - alpha), dtype=np.float64
        ).reshape(-1)
    return np.minimum(upper([mean], [var], alpha, 1.0, rate_method), 1.0)


# ---------------------------------------------------------------------------------------
# Figure
# ---------------------------------------------------------------------------------------
_PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C6D1F"]


def plot_robustness_curves(
    curves: Sequence[RobustnessCurve] | Mapping[str, RobustnessCurve],
    *,
    metric: str | None = None,
    normalized: bool = True,
    title: str | None = None,
) -> Any:
    """One figure comparing robustness curves of several models or data sets.

    Each curve is a solid line (the estimate) with its upper confidence bound
    dashed and the band between them shaded.

    Args:
        curves: a list of curves (named by their ``label``) or a mapping
            name → curve.
        metric: ``"mse"`` (default with labels), ``"deviation"`` (default
            without), ``"error_rate"`` or ``"flip_rate"`` (classifiers).
        normalized: divide MSE and deviation by each curve's normalizer
            (Var(y), or Var(f(x)) without labels) so data sets share one axis.
        title: the axes title.

    Returns:
        A :class:`matplotlib.figure.Figure` (Agg canvas; no pyplot state).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    items = (
        list(curves.items())
        if isinstance(curves, Mapping)
        else [(c.label or f"curve {i + 1}", c) for i, c in enumerate(curves)]
    )
    if not items or not all(isinstance(c, RobustnessCurve) for _, c in items):
        raise ParameterError(
            "The 'curves' parameter of plot_robustness_curves must be a non-empty list or "
            f"mapping of RobustnessCurve. Got {curves!r} instead."
        )
    if metric is None:
        metric = "mse" if all(c.has_labels for _, c in items) else "deviation"
    allowed = ("mse", "deviation", "error_rate", "flip_rate")
    check_param("plot_robustness_curves", "metric", metric, OneOf(allowed))
    norm = normalized and metric in ("mse", "deviation")
    fig = Figure(figsize=(7.5, 4.2), layout="constrained", dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, color="#e4e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    conf = set()
    for i, (name, c) in enumerate(items):
        t = c.table
        if metric not in t.columns:
            raise ParameterError(
                f"The 'metric' parameter of plot_robustness_curves must be a column of every "
                f"curve; curve {name!r} has no {metric!r}. Got {metric!r} instead."
            )
        sfx = "_normalized" if norm else ""
        x = t["level"].to_numpy(dtype=np.float64)
        est = t[metric + sfx].to_numpy(dtype=np.float64)
        up = t[metric + "_upper" + sfx].to_numpy(dtype=np.float64)
        col = _PALETTE[i % len(_PALETTE)]
        ax.plot(x, est, color=col, linewidth=1.8, marker="o", markersize=3, label=str(name))
        ax.plot(x, up, color=col, linewidth=1.2, linestyle="--")
        ax.fill_between(x, est, up, color=col, alpha=0.15, linewidth=0)
        conf.add((c.meta.get("confidence"), c.meta.get("target")))
    unit = "feature std" if all(c.meta.get("relative") for _, c in items) else "input units"
    ax.set_xlabel(f"noise level ε (noise std, in {unit})")
    names = {
        "mse": "MSE / Var(y)" if norm else "MSE",
        "deviation": "deviation / normalizer" if norm else "mean squared deviation",
        "error_rate": "error rate",
        "flip_rate": "flip rate",
    }
    ax.set_ylabel(names[metric])
    ax.set_ylim(bottom=0)
    if title is None:
        cf = ", ".join(f"{100 * a:g}% {b}" for a, b in sorted(conf, key=str))
        title = f"{names[metric]} under input noise (solid: estimate; dashed: {cf} bound)"
    ax.set_title(title, loc="left", fontsize=10)
    ax.legend(loc="upper left", frameon=False, fontsize=8.5)
    return fig
