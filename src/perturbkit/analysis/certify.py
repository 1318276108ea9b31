"""Certified robustness by randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019).

The smoothed classifier ``g(x) = argmax_c P(f(x + δ) = c)``, δ ~ N(0, σ² I),
where ``f`` is the model's top class, is constant within the L2 ball of radius
``σ · Φ⁻¹(p_A)`` around ``x`` when the top class has probability ``p_A > 1/2``
under noise. :func:`certify` runs the paper's CERTIFY procedure on every row:

1. ``n0`` noisy copies pick the candidate class ``ĉ_A`` (their most frequent top class);
2. ``n`` fresh noisy copies count how often ``ĉ_A`` comes out on top;
3. ``p_A_lower`` is the one-sided Clopper–Pearson lower bound of that
   frequency at level ``alpha``;
4. if ``p_A_lower > 1/2`` the row is certified with prediction ``ĉ_A`` and
   radius ``σ · Φ⁻¹(p_A_lower)``; otherwise it abstains (radius 0).

With probability at least ``1 − alpha`` per row, a certified prediction is
the smoothed classifier's and holds in the whole ball of the stated radius.
The radius is in the input's own units (isotropic L2): standardise features
of different scales before wrapping the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from perturbkit._rng import root_entropy, stable_key, stream
from perturbkit._types import SeedLike
from perturbkit._validation import Interval, as_numeric_2d, check_param
from perturbkit.analysis.bounds import clopper_pearson
from perturbkit.exceptions import DataError, ModelError, ParameterError

__all__ = ["CertifyResult", "certify", "plot_certified_accuracy"]

_OWNER = "certify"
_DRAW_UNIT = 256
"""Noise draws per random stream (with a fixed block of rows): the unit of randomness."""
_BLOCK_ELEMENTS = 1 << 20
_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class CertifyResult:
    """Per-row result of :func:`certify`.

    Attributes:
        prediction: the smoothed classifier's class index per row, ``-1`` where it abstains.
        radius: certified L2 radius (0 where it abstains).
        abstain: True where ``pA_lower <= 1/2``.
        pA_lower: one-sided Clopper–Pearson lower bound on the top-class probability.
        count_A: how many of the ``n`` noisy copies gave the candidate class.
        classes_: the model's class labels in column order, when known.
        meta: ``sigma``, ``n0``, ``n``, ``alpha``, ``root_seed``, ``n_points``.
    """

    prediction: np.ndarray
    radius: np.ndarray
    abstain: np.ndarray
    pA_lower: np.ndarray
    count_A: np.ndarray
    classes_: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_pandas(self) -> pd.DataFrame:
        """One row per input: ``prediction``, ``label`` (class label or index;
        None where it abstains), ``radius``, ``abstain``, ``pA_lower``, ``count_A``."""
        labels: list[Any] = []
        for p in self.prediction.tolist():
            if p < 0:
                labels.append(None)
            elif self.classes_ is not None:
                c = self.classes_[p]
                labels.append(c.item() if hasattr(c, "item") else c)
            else:
                labels.append(p)
        return pd.DataFrame(
            {
                "prediction": self.prediction,
                "label": labels,
                "radius": self.radius,
                "abstain": self.abstain,
                "pA_lower": self.pA_lower,
                "count_A": self.count_A,
            }
        )

    def certified_accuracy(self, y: Any, radii: Any) -> np.ndarray:
        """Fraction of rows certified correct at each radius in ``radii``.

        A row counts at radius r when it does not abstain, its prediction is
        its label and its certified radius is at least r (Cohen et al.'s
        "approximate certified test accuracy").
        """
        yi = self._label_index(y)
        r = np.atleast_1d(np.asarray(radii, dtype=np.float64))
        ok = (~self.abstain) & (self.prediction == yi)
        return (ok[None, :] & (self.radius[None, :] >= r[:, None])).mean(axis=1)

    def _label_index(self, y: Any) -> np.ndarray:
        y = np.asarray(y).reshape(-1)
        if y.shape[0] != self.prediction.shape[0]:
            raise DataError(
                f"y must hold one label per certified row ({self.prediction.shape[0]}). "
                f"Got {y.shape[0]} instead."
            )
        if self.classes_ is None:
            return y.astype(np.int64)
        lookup = {c: i for i, c in enumerate(np.asarray(self.classes_).tolist())}
        return np.asarray([lookup.get(v, -2) for v in y.tolist()], dtype=np.int64)

    def __repr__(self) -> str:
        m = self.meta
        return (
            f"<CertifyResult {len(self.radius)} rows, sigma={m.get('sigma')}, n={m.get('n')}, "
            f"abstain {float(self.abstain.mean()):.1%}, median radius "
            f"{float(np.median(self.radius)):.4g}>"
        )


def certify(
    model: Any,
    X: Any,
    *,
    sigma: float,
    n0: int = 100,
    n: int = 100_000,
    alpha: float = 0.001,
    seed: SeedLike = None,
    batch_size: int = 10_000,
) -> CertifyResult:
    """Certified L2 robustness of a classifier smoothed with Gaussian noise (CERTIFY).

    Args:
        model: a classifier, anything :func:`perturbkit.wrap` accepts; its
            top class under noise is the base classifier.
        X: inputs ``(rows, d)`` (or ``(rows, ...)``), in the units the radius is stated in.
        sigma: the smoothing noise standard deviation, > 0.
        n0: noisy copies per row to choose the candidate class.
        n: noisy copies per row to estimate its probability (>= n0).
        alpha: per-row failure probability of the certificate, in (0, 1).
        seed: root seed; ``None`` draws fresh entropy (kept in ``meta``).
        batch_size: the most rows per model call.

    Returns:
        A :class:`CertifyResult`.

    Raises:
        ParameterError: sigma <= 0, n0 > n, alpha outside (0, 1) …
        ModelError: the model is not a classifier.
    """
    from perturbkit.models import wrap

    check_param(_OWNER, "sigma", sigma, Interval(0, None, closed_low=False))
    check_param(_OWNER, "n0", n0, Interval(1, None, integer=True))
    check_param(_OWNER, "n", n, Interval(1, None, integer=True))
    if n0 > n:
        raise ParameterError(
            f"The 'n0' parameter of certify must be at most n ({n}). Got {n0} instead."
        )
    check_param(_OWNER, "alpha", alpha, Interval(0, 1, closed_low=False, closed_high=False))
    check_param(_OWNER, "batch_size", batch_size, Interval(1, None, integer=True))
    Xa = as_numeric_2d(X, name="X")
    m_ = wrap(model)
    rows_n = Xa.shape[0]
    probe = m_(Xa[: min(rows_n, batch_size)])
    if m_.task != "classification":
        raise ModelError(
            f"certify needs a classifier that returns class probabilities (n, k); "
            f"{getattr(m_, 'description', 'the model')} is a {m_.task} model. Wrap it with "
            "task='classification' if its outputs are probabilities."
        )
    k = int(probe.shape[1])
    shape = Xa.shape[1:]
    d = int(np.prod(shape))
    in_dtype = Xa.dtype if np.issubdtype(Xa.dtype, np.floating) else np.dtype(np.float64)
    Xf = np.ascontiguousarray(Xa.reshape(rows_n, d), dtype=np.float64)
    root = root_entropy(seed)
    key = stable_key("certify@1")
    counts0 = _counts(m_, Xf, shape, in_dtype, float(sigma), n0, k, root, key, 0, batch_size)
    cand = counts0.argmax(axis=1)
    counts = _counts(m_, Xf, shape, in_dtype, float(sigma), n, k, root, key, 1, batch_size)
    nA = counts[np.arange(rows_n), cand]
    pA = np.asarray(clopper_pearson(nA, n, confidence=1 - alpha, side="lower")).reshape(-1)
    abstain = pA <= 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        radius = np.where(abstain, 0.0, sigma * special.ndtri(np.where(abstain, 0.75, pA)))
    prediction = np.where(abstain, -1, cand).astype(np.int64)
    meta = {
        "method": "certify@1",
        "sigma": float(sigma),
        "n0": int(n0),
        "n": int(n),
        "alpha": float(alpha),
        "root_seed": int(root),
        "n_points": int(rows_n),
        "n_classes": k,
        "model": getattr(m_, "description", type(model).__name__),
    }
    classes = getattr(m_, "classes_", None)
    return CertifyResult(
        prediction,
        radius,
        abstain,
        pA,
        nA.astype(np.int64),
        None if classes is None else np.asarray(classes),
        meta,
    )


def _counts(
    model: Any,
    Xf: np.ndarray,
    shape: tuple[int, ...],
    in_dtype: np.dtype,
    sigma: float,
    n_draws: int,
    k: int,
    root: int,
    key: int,
    phase: int,
    batch_size: int,
) -> np.ndarray:
    """Top-class counts ``(rows, k)`` over ``n_draws`` noisy copies of each row.

    Draws come in units of ``_DRAW_UNIT`` copies of a fixed block of rows,
    each unit from its own stream keyed by (phase, row block, unit): the
    result does not depend on ``batch_size``.
    """
    n, d = Xf.shape
    block = int(max(1, min(1024, _BLOCK_ELEMENTS // (_DRAW_UNIT * d))))
    per_chunk = max(1, _ELEMENTS // (block * _DRAW_UNIT * d)) * block
    counts = np.zeros((n, k), dtype=np.int64)
    for start in range(0, n, per_chunk):
        stop = min(n, start + per_chunk)
        r = stop - start
        Xc = Xf[start:stop, None, :]
        blocks = range(start // block, (stop - 1) // block + 1)
        for u, u0 in enumerate(range(0, n_draws, _DRAW_UNIT)):
            cnt = min(_DRAW_UNIT, n_draws - u0)
            Z = np.concatenate(
                [
                    stream(root, key, phase, b, u).standard_normal(
                        (min(n, (b + 1) * block) - b * block, cnt, d)
                    )
                    for b in blocks
                ],
                axis=0,
            )
            Z *= sigma
            Z += Xc
            A = Z.reshape((r * cnt, *shape))
            if A.dtype != in_dtype:
                A = A.astype(in_dtype)
            top = np.concatenate(
                [
                    model(A[s : s + batch_size]).argmax(axis=1)
                    for s in range(0, A.shape[0], batch_size)
                ]
            )
            row = np.repeat(np.arange(r), cnt)
            counts[start:stop] += np.bincount(row * k + top, minlength=r * k).reshape(r, k)
    return counts


def plot_certified_accuracy(
    results: CertifyResult | Sequence[CertifyResult] | Mapping[str, CertifyResult],
    y: Any,
    *,
    radii: Any = None,
    title: str | None = None,
) -> Any:
    """Certified accuracy against L2 radius, one line per result (e.g. per sigma).

    Args:
        results: one result, a list (named by sigma) or a mapping name → result.
        y: the true labels of the certified rows.
        radii: radii to evaluate; default: 200 points up to the largest radius.
        title: the axes title.

    Returns:
        A :class:`matplotlib.figure.Figure` (Agg canvas; no pyplot state).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(results, CertifyResult):
        results = [results]
    items = (
        list(results.items())
        if isinstance(results, Mapping)
        else [(f"σ = {r.meta.get('sigma'):g}", r) for r in results]
    )
    if not items or not all(isinstance(r, CertifyResult) for _, r in items):
        raise ParameterError(
            "The 'results' parameter of plot_certified_accuracy must be a CertifyResult or a "
            f"non-empty list or mapping of them. Got {results!r} instead."
        )
    top = max(float(r.radius.max()) for _, r in items)
    grid = (
        np.linspace(0.0, max(top, 1e-12) * 1.05, 200)
        if radii is None
        else np.asarray(radii, dtype=np.float64)
    )
    fig = Figure(figsize=(6.5, 4.0), layout="constrained", dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, color="#e4e7eb", linewidth=0.8)
    palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]
    for i, (name, r) in enumerate(items):
        ax.step(
            grid,
            r.certified_accuracy(y, grid),
            where="post",
            color=palette[i % len(palette)],
            linewidth=1.8,
            label=str(name),
        )
    ax.set_xlabel("L2 radius (input units)")
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(
        title or f"Certified accuracy (randomized smoothing, α = {items[0][1].meta['alpha']:g})",
        loc="left",
        fontsize=10,
    )
    ax.legend(loc="upper right", frameon=False, fontsize=8.5)
    return fig
