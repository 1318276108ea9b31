"""A plain-language summary of a sweep, for readers who will not read the curves.

Every number in a sentence is computed from the run's summary table (means
over repeats); nothing is rounded before a comparison is made.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from perturbkit.analysis.thresholds import find_threshold
from perturbkit.exceptions import ParameterError
from perturbkit.report._common import RunInfo, check_result, fmt_magnitude, fmt_value

__all__ = ["default_tolerance", "plain_language_summary"]


def default_tolerance(result: Any) -> float | None:
    """The tolerance :func:`plain_language_summary` uses when none is given.

    0.02 (2 percentage points of accuracy, or 2% of predictions flipped) for
    classification; 0.10 (10% of the clean MSE) for regression with labels;
    None for regression without labels (there is no scale to be relative to).
    """
    info = RunInfo(result)
    return _default_tolerance(info)


def _default_tolerance(info: RunInfo) -> float | None:
    if info.primary in ("accuracy", "flip_rate", "tv_distance", "js_distance", "accuracy_drop"):
        return 0.02
    if info.primary in ("mse", "rmse", "mae"):
        return 0.10
    return None


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _pts(v: float) -> str:
    return f"{100 * v:.3g} point" + ("" if math.isclose(100 * v, 1) else "s")


def _unit(info: RunInfo, label: str) -> str:
    """A closing sentence naming what one unit of this perturbation's magnitude is."""
    u = info.units.get(label, "").strip().rstrip(".")
    if not u:
        return ""
    if not u.lower().startswith(("the ", "a ", "an ")):
        u = "the " + u
    return f" Its magnitude is {u}."


def _level(v: float) -> str:
    return f"{100 * v:.4g}%"


def _curve(info: RunInfo, label: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    s = info.metric(metric)
    s = s[s["label"] == label]
    return s["magnitude"].to_numpy(dtype=np.float64), s["mean"].to_numpy(dtype=np.float64)


def _within(mags: np.ndarray, bad: np.ndarray) -> tuple[float | None, float | None]:
    """(largest magnitude up to which no point is bad, first bad magnitude) on the grid."""
    order = np.argsort(mags)
    mags, bad = mags[order], bad[order]
    hit = np.flatnonzero(bad)
    if hit.size == 0:
        return float(mags[-1]), None
    i = int(hit[0])
    return (float(mags[i - 1]) if i > 0 else None), float(mags[i])


def plain_language_summary(
    result: Any, tolerance: float | None = None, *, level: float | None = None
) -> list[str]:
    """Sentences a non-specialist can read, computed from the run's numbers.

    Args:
        result: a :class:`perturbkit.SweepResult`.
        tolerance: how much degradation still counts as "unchanged". For
            classification with labels, percentage points of accuracy as a
            fraction (0.02 = 2 points); without labels, the share of predictions
            that change (0.02 = 2%); for regression with labels, a fraction of
            the clean MSE (0.10 = 10%); without labels, a root-mean-square
            output shift in the target's units. Default: :func:`default_tolerance`.
        level: the level whose crossing is reported. Accuracy (default: the
            largest multiple of 5% at least 5 points under the clean accuracy);
            flip rate (default 0.10); for regression a multiple of the clean MSE
            (default 2.0, "the error doubles").

    Returns:
        A list of sentences: the clean baseline, one per perturbation (the
        largest magnitude within tolerance, where the level is crossed, each
        perturbation's unit), and which perturbation did the most damage.
    """
    check_result(result, "plain_language_summary")
    info = RunInfo(result)
    tol = _default_tolerance(info) if tolerance is None else float(tolerance)
    if tol is not None and not (tol > 0 and math.isfinite(tol)):
        raise ParameterError(
            f"The 'tolerance' parameter of plain_language_summary must be a float in the range "
            f"(0, inf). Got {tolerance!r} instead."
        )
    n_rows, n_feat = info.meta.get("n_rows"), info.meta.get("n_features")
    size = ""
    if n_rows:
        size = f" ({n_rows:,} rows" + (f", {n_feat:,} features)" if n_feat else ")")
    primary = info.primary
    if primary == "accuracy":
        out = _accuracy_sentences(info, tol or 0.02, level, size)
    elif primary in ("mse", "rmse", "mae"):
        out = _error_sentences(info, tol or 0.10, level, size)
    elif primary == "deviation":
        out = _deviation_sentences(info, tol, size)
    else:
        out = _flip_sentences(info, tol or 0.02, level, size)
    if info.repeats > 1:
        out.append(
            f"Numbers are means over {info.repeats} repeats with independent noise; the curves "
            "shade their 95% intervals."
        )
    else:
        out.append("Each number comes from a single repeat, so no interval is shown.")
    return out


def _worst(info: RunInfo, metric: str) -> tuple[str, float, float] | None:
    """(label, its largest magnitude, mean ``metric`` there) with the largest value."""
    best: tuple[str, float, float] | None = None
    for label in info.labels:
        mags, vals = _curve(info, label, metric)
        if mags.size == 0:
            continue
        i = int(np.argmax(mags))
        v = float(vals[i])
        if np.isfinite(v) and (best is None or v > best[2]):
            best = (label, float(mags[i]), v)
    return best


_COMPARE = (
    "Magnitudes of different perturbations are in different units, "
    "so this ranks the grid as tested."
)


def _accuracy_sentences(info: RunInfo, tol: float, level: float | None, size: str) -> list[str]:
    clean = info.clean_value("accuracy")
    out = [f"On clean data{size} the model is accurate on {_pct(clean)} of the rows."]
    if level is None:
        level = math.floor(round((clean - 0.05) * 20, 9)) / 20
    for label in info.labels:
        mags, acc = _curve(info, label, "accuracy")
        if mags.size == 0:
            continue
        drop = clean - acc
        ok, first_bad = _within(mags, drop > tol + 1e-12)
        unit = _unit(info, label)
        at = dict(zip(mags.tolist(), acc.tolist()))
        if first_bad is None:
            s = (
                f"{label}: accuracy stays within {_pts(tol)} of its clean value at every tested "
                f"magnitude up to {fmt_magnitude(ok)}; there it is {_pct(at[ok])}."
            )
        elif ok is None or ok == 0:
            s = (
                f"{label}: accuracy already drops by more than {_pts(tol)} at the smallest tested "
                f"magnitude, {fmt_magnitude(first_bad)}, to {_pct(at[first_bad])}."
            )
        else:
            s = (
                f"{label}: accuracy stays within {_pts(tol)} of its clean value up to magnitude "
                f"{fmt_magnitude(ok)}; at {fmt_magnitude(first_bad)} it is "
                f"{_pct(at[first_bad])}."
            )
        cross = find_threshold(mags, -acc, -level) if level > 0 else float("nan")
        if math.isfinite(cross) and level < clean:
            s += f" It falls below {_level(level)} at magnitude ≈ {fmt_magnitude(cross, 2)}."
        out.append(s + unit)
    w = _worst(info, "accuracy_drop") if "accuracy_drop" in set(info.summary["metric"]) else None
    if w is not None and len(info.labels) > 1 and w[2] > 0:
        out.append(
            f"The largest damage on this grid comes from {w[0]}: at its largest tested magnitude "
            f"({fmt_magnitude(w[1])}) accuracy is {_pts(w[2])} lower than on clean data. {_COMPARE}"
        )
    return out


def _flip_sentences(info: RunInfo, tol: float, level: float | None, size: str) -> list[str]:
    metric = info.primary
    label_free = "No labels were given, so accuracy is unknown" if not info.has_labels else "Here"
    out = [
        f"{label_free}; the report measures how often the model's prediction changes under each "
        f"perturbation (the flip rate){size}."
    ]
    if metric != "flip_rate":
        out[0] = f"The report follows {metric.replace('_', ' ')} under each perturbation{size}."
    level = 0.10 if level is None else float(level)
    for label in info.labels:
        mags, v = _curve(info, label, metric)
        if mags.size == 0:
            continue
        ok, first_bad = _within(mags, v > tol + 1e-12)
        unit = _unit(info, label)
        at = dict(zip(mags.tolist(), v.tolist()))
        if first_bad is None:
            s = (
                f"{label}: at most {_pct(tol)} of predictions change at every tested magnitude "
                f"up to {fmt_magnitude(ok)}; there {_pct(at[ok])} change."
            )
        elif ok is None or ok == 0:
            s = (
                f"{label}: already at the smallest tested magnitude, {fmt_magnitude(first_bad)}, "
                f"{_pct(at[first_bad])} of predictions change."
            )
        else:
            s = (
                f"{label}: at most {_pct(tol)} of predictions change up to magnitude "
                f"{fmt_magnitude(ok)}; at {fmt_magnitude(first_bad)}, {_pct(at[first_bad])} "
                "change."
            )
        cross = find_threshold(mags, v, level)
        if math.isfinite(cross) and cross > 0:
            s += f" {_level(level)} of predictions change at magnitude ≈ {fmt_magnitude(cross, 2)}."
        out.append(s + unit)
    w = _worst(info, metric)
    if w is not None and len(info.labels) > 1 and w[2] > 0:
        out.append(
            f"The largest effect on this grid comes from {w[0]}: at its largest tested magnitude "
            f"({fmt_magnitude(w[1])}) {_pct(w[2])} of predictions change. {_COMPARE}"
        )
    return out


def _error_sentences(info: RunInfo, tol: float, level: float | None, size: str) -> list[str]:
    metric = info.primary
    clean = info.clean_value(metric)
    name = {
        "mse": "mean squared error",
        "rmse": "root mean squared error",
        "mae": "mean absolute error",
    }
    short = metric.upper()
    extra = ""
    if metric == "mse" and "rmse" in info.baseline:
        extra = (
            f", a typical error (RMSE) of {fmt_value(info.baseline['rmse'], 'rmse')} in the "
            "target's units"
        )
    out = [f"On clean data{size} the {name[metric]} is {fmt_value(clean, metric)}{extra}."]
    ratio = 2.0 if level is None else float(level)
    word = "doubles" if ratio == 2.0 else f"reaches {ratio:g}× its clean value"
    for label in info.labels:
        mags, v = _curve(info, label, metric)
        if mags.size == 0 or not (clean > 0):
            continue
        rel = v / clean - 1.0
        ok, first_bad = _within(mags, rel > tol + 1e-12)
        unit = _unit(info, label)
        at = dict(zip(mags.tolist(), v.tolist()))

        def _rel(m: float, at: dict[float, float] = at) -> str:
            return f"{fmt_value(at[m], metric)} ({100 * (at[m] / clean - 1):+.0f}%)"

        if first_bad is None:
            s = (
                f"{label}: the {short} stays within {100 * tol:g}% of its clean value at every "
                f"tested magnitude up to {fmt_magnitude(ok)}; there it is {_rel(ok)}."
            )
        elif ok is None or ok == 0:
            s = (
                f"{label}: the {short} already rises by more than {100 * tol:g}% at the smallest "
                f"tested magnitude, {fmt_magnitude(first_bad)}, to {_rel(first_bad)}."
            )
        else:
            s = (
                f"{label}: the {short} stays within {100 * tol:g}% of its clean value up to "
                f"magnitude {fmt_magnitude(ok)}; at {fmt_magnitude(first_bad)} it is "
                f"{_rel(first_bad)}."
            )
        cross = find_threshold(mags, v / clean, ratio)
        if math.isfinite(cross) and cross > 0:
            s += f" It {word} at magnitude ≈ {fmt_magnitude(cross, 2)}."
        out.append(s + unit)
    w = _worst(info, metric)
    if w is not None and len(info.labels) > 1 and clean > 0 and w[2] > clean:
        out.append(
            f"The largest damage on this grid comes from {w[0]}: at its largest tested magnitude "
            f"({fmt_magnitude(w[1])}) the {short} is {w[2] / clean:.2f}× its clean value. "
            f"{_COMPARE}"
        )
    return out


def _deviation_sentences(info: RunInfo, tol: float | None, size: str) -> list[str]:
    out = [
        "No labels were given, so the error is unknown; the report measures how far predictions "
        f"move under each perturbation (root-mean-square shift, in the target's units){size}."
    ]
    for label in info.labels:
        mags, dev = _curve(info, label, "deviation")
        if mags.size == 0:
            continue
        rms = np.sqrt(np.maximum(dev, 0))
        unit = _unit(info, label)
        pos = mags > 0
        if not pos.any():
            continue
        lo_i = int(np.flatnonzero(pos)[np.argmin(mags[pos])])
        hi_i = int(np.argmax(mags))
        s = (
            f"{label}: predictions move by {fmt_value(rms[lo_i], 'rmse')} at magnitude "
            f"{fmt_magnitude(mags[lo_i])}"
        )
        s += (
            f" and by {fmt_value(rms[hi_i], 'rmse')} at {fmt_magnitude(mags[hi_i])}."
            if hi_i != lo_i
            else "."
        )
        if tol is not None:
            ok, first_bad = _within(mags, rms > tol)
            if first_bad is None:
                s += f" They stay within {tol:g} at every tested magnitude."
            elif ok:
                s += f" They stay within {tol:g} up to magnitude {fmt_magnitude(ok)}."
        out.append(s + unit)
    w = _worst(info, "deviation")
    if w is not None and len(info.labels) > 1 and w[2] > 0:
        out.append(
            f"The largest effect on this grid comes from {w[0]}: at its largest tested magnitude "
            f"({fmt_magnitude(w[1])}) predictions move by {fmt_value(math.sqrt(w[2]), 'rmse')}. "
            f"{_COMPARE}"
        )
    return out
