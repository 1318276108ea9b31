"""Figures of a sweep, each a public function that returns a matplotlib Figure.

The figures are plain :class:`matplotlib.figure.Figure` objects with an Agg
canvas attached: no pyplot, no global backend switch, no shared state. Show
one in a notebook by leaving it as the cell's value, or save it with
``fig.savefig("curves.svg")``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator, PercentFormatter

from perturbkit.exceptions import ParameterError
from perturbkit.report._common import (
    PERCENT_METRICS,
    RunInfo,
    check_metric,
    check_result,
    fmt_magnitude,
    fmt_value,
    metric_title,
)

__all__ = ["plot_curves", "plot_error_modes", "plot_heatmap", "plot_per_class"]

# A calm, colour-blind-safe palette (Okabe-Ito order, darkened yellow).
PALETTE = [
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#8C6D1F",
    "#333333",
    "#7F3C8D",
    "#11A579",
]
_INK = "#1f2933"
_MUTED = "#616e7c"
_GRID = "#e4e7eb"
_HEAT = LinearSegmentedColormap.from_list(
    "perturbkit_heat", ["#f7fbff", "#fde0c5", "#f59e72", "#d9534f", "#8b1e3f"]
)
_RC = {
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.5,
    "axes.edgecolor": "#9aa5b1",
    "axes.labelcolor": _INK,
    "xtick.color": _MUTED,
    "ytick.color": _MUTED,
    "text.color": _INK,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
}


_F = TypeVar("_F", bound=Callable[..., Figure])


def _themed(func: _F) -> _F:
    """Build the figure under the report's rc settings; the caller's rcParams are restored."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(_RC):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _text(s: Any, limit: int | None = None) -> str:
    """User text for matplotlib: a '$' must not start mathtext; long labels are shortened."""
    t = str(s)
    if limit is not None and len(t) > limit:
        t = t[: limit - 1] + "…"
    return t.replace("$", r"\$")


_LABEL_CHARS = 48

# The range a metric can take: intervals are drawn inside it.
_RANGE = {
    **{
        m: (0.0, 1.0)
        for m in ("accuracy", "flip_rate", "class_shift", "tv_distance", "js_distance")
    },
    **{m: (0.0, 1.0) for m in ("ece", "recall", "predicted_share", "flip_rate_by_class")},
    **{m: (0.0, np.inf) for m in ("mse", "rmse", "mae", "deviation", "log_loss", "brier")},
    "entropy": (0.0, np.inf),
    "confidence_drop": (-1.0, 1.0),
    "accuracy_drop": (-1.0, 1.0),
    "recall_drop": (-1.0, 1.0),
}


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained", dpi=100)
    FigureCanvasAgg(fig)  # explicit Agg canvas; nothing global is touched
    fig.set_facecolor("white")
    return fig


def _style(ax: Any) -> None:
    ax.set_facecolor("white")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, color=_GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=8.5, length=3)


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _percent_axis(ax: Any, metric: str, axis: str = "y") -> None:
    if metric in PERCENT_METRICS:
        fmt = PercentFormatter(1.0, decimals=None)
        (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _xscale(ax: Any, mags: list[float]) -> None:
    """Symlog when the positive magnitudes span two decades or more, linear otherwise."""
    pos = [m for m in mags if m > 0]
    if len(pos) >= 3 and max(pos) / min(pos) >= 100:
        lo, hi = min(pos), max(pos)
        ax.set_xscale("symlog", linthresh=lo, linscale=0.6)
        decades = range(math.ceil(math.log10(lo)), math.floor(math.log10(hi)) + 1)
        ax.xaxis.set_major_locator(FixedLocator([0.0, *(10.0**k for k in decades)]))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_magnitude(v)))


def _empty(fig: Figure, ax: Any, message: str) -> Figure:
    ax.set_axis_off()
    ax.text(0.5, 0.5, _text(message), ha="center", va="center", color=_MUTED, fontsize=10)
    return fig


@_themed
def plot_curves(result: Any, metric: str | None = None) -> Figure:
    """Robustness curves: ``metric`` against magnitude, one line per perturbation.

    Args:
        result: a :class:`perturbkit.SweepResult`.
        metric: a global metric of the run; by default the primary one
            (accuracy for classification with labels, flip_rate without;
            mse for regression with labels, deviation without).

    Returns:
        A Figure with one Axes; one line per perturbation label, with the
        repeats' 95% t-interval shaded when the run has more than one repeat.
        Each perturbation has its own magnitude unit (see ``meta["perturbations"]``).
    """
    check_result(result, "plot_curves")
    info = RunInfo(result)
    metric = info.primary if metric is None else metric
    check_metric(result, metric, "plot_curves")
    s = info.metric(metric)

    fig = _figure(8.0, 4.2)
    ax = fig.add_subplot()
    _style(ax)
    for i, label in enumerate(info.labels):
        g = s[s["label"] == label]
        if g.empty:
            continue
        x = g["magnitude"].to_numpy(dtype=np.float64)
        y = g["mean"].to_numpy(dtype=np.float64)
        ax.plot(
            x,
            y,
            marker="o",
            markersize=3.5,
            linewidth=1.8,
            color=_color(i),
            label=_text(label, _LABEL_CHARS),
        )
        lo = g["ci_low"].to_numpy(dtype=np.float64)
        hi = g["ci_high"].to_numpy(dtype=np.float64)
        low, high = _RANGE.get(metric, (-np.inf, np.inf))
        lo, hi = np.clip(lo, low, high), np.clip(hi, low, high)  # the metric's own range
        if info.repeats > 1 and np.isfinite(lo).any():
            ax.fill_between(x, lo, hi, color=_color(i), alpha=0.15, linewidth=0)
    _xscale(ax, info.magnitudes())
    _percent_axis(ax, metric)
    ax.set_xlabel("magnitude  (each perturbation in its own unit)", color=_MUTED)
    ax.set_ylabel(_text(metric_title(metric)))
    clean = info.clean_value(metric)
    title = metric_title(metric) + " vs magnitude"
    if metric in info.baseline and np.isfinite(clean) and clean != 0:
        title += f"  (clean: {fmt_value(clean, metric)})"
    ax.set_title(_text(title), loc="left")
    if info.labels:
        ax.legend(loc="best", handlelength=1.6)
    return fig


def _grid_matrix(info: RunInfo, metric: str) -> tuple[np.ndarray, list[float]]:
    s = info.metric(metric)
    mags = info.magnitudes()
    col = {m: j for j, m in enumerate(mags)}
    row = {lab: i for i, lab in enumerate(info.labels)}
    z = np.full((len(info.labels), len(mags)), np.nan)
    for label, m, v in zip(s["label"], s["magnitude"], s["mean"]):
        z[row[label], col[float(m)]] = v
    return z, mags


@_themed
def plot_heatmap(result: Any, metric: str | None = None) -> Figure:
    """Heatmap of degradation: rows perturbations, columns magnitudes, colour = mean ``metric``.

    Args:
        result: a :class:`perturbkit.SweepResult`.
        metric: a degradation metric (higher = worse); by default accuracy_drop
            (classification with labels), flip_rate (without), mse_increase
            (regression with labels) or deviation (without).

    Returns:
        A Figure with the heatmap Axes and its colour bar. Magnitudes that a
        perturbation did not test are blank (NaN) cells.
    """
    check_result(result, "plot_heatmap")
    info = RunInfo(result)
    metric = info.degradation if metric is None else metric
    check_metric(result, metric, "plot_heatmap")
    z, mags = _grid_matrix(info, metric)
    n_rows, n_cols = z.shape
    width = min(11.0, max(6.0, 2.6 + 0.72 * n_cols))
    height = min(9.0, max(2.2, 1.25 + 0.4 * n_rows))
    fig = _figure(width, height)
    ax = fig.add_subplot()
    finite = z[np.isfinite(z)]
    vmax = float(finite.max()) if finite.size else 1.0
    vmin = min(0.0, float(finite.min())) if finite.size else 0.0
    if vmax <= vmin:
        vmax = vmin + 1e-12
    cmap = _HEAT.with_extremes(bad="#eef1f4")
    im = ax.imshow(
        np.ma.masked_invalid(z),
        aspect="auto",
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
    )
    ax.set_xticks(range(n_cols), [fmt_magnitude(m) for m in mags])
    ax.set_yticks(range(n_rows), [_text(lab, _LABEL_CHARS) for lab in info.labels])
    ax.set_xlabel("magnitude  (each perturbation in its own unit)", color=_MUTED)
    ax.tick_params(length=0, labelsize=8.5)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_xticks(np.arange(-0.5, n_cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, n_rows, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    if n_cols * n_rows <= 160:
        span = vmax - vmin
        for i in range(n_rows):
            for j in range(n_cols):
                v = z[i, j]
                if not np.isfinite(v):
                    ax.text(j, i, "–", ha="center", va="center", color="#9aa5b1", fontsize=8)
                    continue
                dark = (v - vmin) / span > 0.6
                ax.text(
                    j,
                    i,
                    _short(v, metric),
                    ha="center",
                    va="center",
                    fontsize=7.5,
                    color="white" if dark else _INK,
                )
    cbar = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02)
    cbar.outline.set_visible(False)
    cbar.ax.tick_params(labelsize=8, length=2)
    if metric in PERCENT_METRICS:
        cbar.ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    ax.set_title(_text(metric_title(metric) + " by perturbation and magnitude"), loc="left")
    return fig


def _short(v: float, metric: str) -> str:
    """A heatmap cell: percentage points for rates, compact numbers otherwise."""
    if metric in PERCENT_METRICS:
        return f"{100 * v:.1f}"
    a = abs(v)
    if a >= 1e6:
        return f"{v:.2g}"
    if a >= 1e4:
        return f"{v / 1000:.0f}k"
    if a >= 1000:
        return f"{v / 1000:.1f}k"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def _at_magnitude(
    info: RunInfo, frame: Any, magnitude: float | None, owner: str
) -> dict[str, float]:
    """Per label, the magnitude to show: ``magnitude`` or the largest one all labels share."""
    if frame.empty:
        return {}
    per_label = {
        lab: sorted(set(frame.loc[frame["label"] == lab, "magnitude"])) for lab in info.labels
    }
    per_label = {k: v for k, v in per_label.items() if v}
    if magnitude is not None:
        chosen = {lab: float(magnitude) for lab, ms in per_label.items() if float(magnitude) in ms}
        if not chosen:
            have = sorted({m for ms in per_label.values() for m in ms})
            raise ParameterError(
                f"The 'magnitude' parameter of {owner} must be a magnitude of the run "
                f"({', '.join(fmt_magnitude(m) for m in have)}). Got {magnitude!r} instead."
            )
        return chosen
    common = set.intersection(*(set(v) for v in per_label.values())) if per_label else set()
    common.discard(0.0)
    if common:
        m = max(common)
        return {lab: m for lab in per_label}
    return {lab: max(ms) for lab, ms in per_label.items()}


def _legend_labels(chosen: dict[str, float]) -> dict[str, str]:
    same = len(set(chosen.values())) == 1
    return {lab: lab if same else f"{lab} @ {fmt_magnitude(m)}" for lab, m in chosen.items()}


def _needs_labels(info: RunInfo, owner: str, metric: str) -> None:
    if info.task != "classification" or not info.has_labels:
        what = "a regression run" if info.task != "classification" else "a run without labels"
        raise ParameterError(
            f"{owner} needs a classification run with labels ({metric} rows); "
            f"got {what}. Pass y to perturbkit.sweep."
        )


@_themed
def plot_per_class(result: Any, magnitude: float | None = None, *, top: int = 20) -> Figure:
    """Recall drop per class at one magnitude, one bar group per class and a bar per perturbation.

    Args:
        result: a :class:`perturbkit.SweepResult` of a classification run with labels.
        magnitude: the magnitude to show; by default the largest non-zero
            magnitude every perturbation tested (or, when they share none,
            each perturbation's largest, named in the legend).
        top: show at most this many classes, those with the largest drop.

    Returns:
        A Figure with one Axes holding one bar container per perturbation
        (error bars: the repeats' 95% interval, when there are several repeats
        and at most 16 bars).
    """
    check_result(result, "plot_per_class")
    info = RunInfo(result)
    _needs_labels(info, "plot_per_class", "recall_drop")
    g = info.group_means("recall_drop")
    chosen = _at_magnitude(info, g, magnitude, "plot_per_class")
    fig = _figure(8.0, 3.9)
    ax = fig.add_subplot()
    _style(ax)
    if not chosen:
        return _empty(fig, ax, "No per-class rows in this run.")
    rows = [g[(g["label"] == lab) & (g["magnitude"] == m)] for lab, m in chosen.items()]
    classes = list(dict.fromkeys(g["group"]))
    worst = {c: max(float(r.loc[r["group"] == c, "mean"].max()) for r in rows) for c in classes}
    worst = {c: (v if np.isfinite(v) else -np.inf) for c, v in worst.items()}
    if len(classes) > top:
        keep = set(sorted(classes, key=lambda c: -worst[c])[:top])
        classes = [c for c in classes if c in keep]
    x = np.arange(len(classes))
    n = len(chosen)
    width = 0.8 / max(n, 1)
    names = _legend_labels(chosen)
    for i, (lab, r) in enumerate(zip(chosen, rows)):
        r = r.set_index("group").reindex(classes)
        y = r["mean"].to_numpy(dtype=np.float64)
        err = None
        if info.repeats > 1 and n * len(classes) <= 16:  # more bars: the intervals are clutter
            lo = y - r["ci_low"].to_numpy(dtype=np.float64)
            hi = r["ci_high"].to_numpy(dtype=np.float64) - y
            if np.isfinite(lo).any():
                err = np.vstack([np.nan_to_num(lo), np.nan_to_num(hi)])
                # keep the interval inside the range a recall drop can take
                err[0] = np.minimum(err[0], np.nan_to_num(y) + 1.0)
                err[1] = np.minimum(err[1], 1.0 - np.nan_to_num(y))
        ax.bar(
            x - 0.4 + width * (i + 0.5),
            np.nan_to_num(y),
            width * 0.92,
            yerr=err,
            color=_color(i),
            label=_text(names[lab], _LABEL_CHARS + 8),
            error_kw={"elinewidth": 0.8, "ecolor": _MUTED, "capsize": 1.5},
        )
    ax.axhline(0, color="#9aa5b1", linewidth=0.8)
    ax.set_xticks(x, [_text(c.removeprefix("class="), 24) for c in classes])
    if len(classes) > 12:
        ax.tick_params(axis="x", labelrotation=60)
    ax.set_xlabel("true class", color=_MUTED)
    ax.set_ylabel("recall drop")
    _percent_axis(ax, "recall_drop")
    ms = set(chosen.values())
    at = f" at magnitude {fmt_magnitude(next(iter(ms)))}" if len(ms) == 1 else ""
    title = "Recall drop per class" + at
    if len(classes) < len(worst):
        title += f" (the {len(classes)} most affected classes)"
    ax.set_title(_text(title), loc="left")
    _bottom_legend(fig, n)
    return fig


@_themed
def plot_error_modes(result: Any, top: int = 10, *, magnitude: float | None = None) -> Figure:
    """The error modes that grow most: true → predicted transitions, as a share of all rows.

    Args:
        result: a :class:`perturbkit.SweepResult` of a classification run with labels.
        top: how many transitions to show (ranked by their largest growth
            over the perturbations).
        magnitude: as in :func:`plot_per_class`.

    Returns:
        A Figure with one Axes of horizontal bars, one bar container per perturbation.
    """
    check_result(result, "plot_error_modes")
    info = RunInfo(result)
    _needs_labels(info, "plot_error_modes", "transition_increase")
    if int(top) < 1:
        raise ParameterError(
            f"The 'top' parameter of plot_error_modes must be >= 1. Got {top!r} instead."
        )
    g = info.group_means("transition_increase")
    chosen = _at_magnitude(info, g, magnitude, "plot_error_modes")
    rows = {lab: g[(g["label"] == lab) & (g["magnitude"] == m)] for lab, m in chosen.items()}
    growth: dict[str, float] = {}
    for r in rows.values():
        for grp, v in zip(r["group"], r["mean"]):
            if v > 0:
                growth[grp] = max(growth.get(grp, 0.0), float(v))
    modes = sorted(growth, key=lambda k: -growth[k])[: int(top)]
    slots = len(modes) * max(len(rows), 1)
    fig = _figure(8.0, min(8.0, max(2.6, 1.5 + 0.15 * slots + 0.22 * -(-len(rows) // 3))))
    ax = fig.add_subplot()
    _style(ax)
    if not modes:
        return _empty(fig, ax, "No error mode grows under these perturbations.")
    y = np.arange(len(modes))
    n = len(rows)
    h = 0.8 / max(n, 1)
    names = _legend_labels(chosen)
    for i, (lab, r) in enumerate(rows.items()):
        v = r.set_index("group")["mean"].reindex(modes).fillna(0.0).to_numpy(dtype=np.float64)
        ax.barh(
            y - 0.4 + h * (i + 0.5),
            v,
            h * 0.92,
            color=_color(i),
            label=_text(names[lab], _LABEL_CHARS + 8),
        )
    ax.set_yticks(y, [_text(_arrow(m), _LABEL_CHARS) for m in modes])
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    _percent_axis(ax, "transition_increase", axis="x")
    ax.set_xlabel("growth, as a share of all rows", color=_MUTED)
    ms = set(chosen.values())
    at = f" at magnitude {fmt_magnitude(next(iter(ms)))}" if len(ms) == 1 else ""
    ax.set_title(_text("Growing error modes (true → predicted)" + at), loc="left")
    _bottom_legend(fig, n)
    return fig


def _bottom_legend(fig: Figure, n: int) -> None:
    fig.legend(loc="outside lower center", ncol=min(n, 3), handlelength=1.2, columnspacing=1.6)


def _arrow(group: str) -> str:
    a, _, b = group.partition("->")
    return f"{a} → {b}"
