"""Interaction effects: does a pair of perturbations hurt more (or less) than its parts?

For perturbations A and B at their magnitudes, with Δ(·) the change of a
metric from the clean data,

    interaction(A, B) = Δ(A + B) − Δ(A) − Δ(B)

where ``A + B`` is :class:`perturbkit.Combine` ``([A, B])``: each perturbation
drawn on exactly the stream it has alone (common random numbers), then
applied in order. Positive: the pair is worse than the sum of its parts
(for a degradation metric such as ``accuracy_drop``); negative: the damage
overlaps (both hit the same rows, or one masks the other); zero: additive.
Stacks of three or more work the same way (``Δ(stack) − ΣΔ(members)``).

Because the pair sees the singles' exact noise in every repeat, the
per-repeat differences cancel most of the noise, and the interval across
repeats (a t-interval, as :meth:`perturbkit.SweepResult.summary` gives) is
sharp. Everything is one :func:`perturbkit.sweep`, so it streams, seeds and
stores as a sweep does; the run's metadata is in ``table.attrs["meta"]``.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from perturbkit._types import SeedLike
from perturbkit._validation import Interval, check_param
from perturbkit.exceptions import ParameterError

__all__ = ["interaction_heatmap", "interactions"]

# Default metric per (task, has labels): a degradation (higher = worse), 0 when clean.
_DEFAULT_METRIC = {
    ("classification", True): "accuracy_drop",
    ("classification", False): "flip_rate",
    ("regression", True): "mse_increase",
    ("regression", False): "deviation",
}

COLUMNS = [
    "kind",
    "label",
    "members",
    "magnitudes",
    "metric",
    "clean",
    "delta",
    "delta_low",
    "delta_high",
    "additive",
    "interaction",
    "interaction_low",
    "interaction_high",
    "interaction_p",
    "n_repeats",
]


def _singles(perturbations: Any) -> list[Any]:
    from perturbkit.perturbations.base import Perturbation, _as_perturbation

    if isinstance(perturbations, (str, Perturbation, Mapping)) or not isinstance(
        perturbations, Sequence
    ):
        raise ParameterError(
            "The 'perturbations' parameter of interactions must be a list of at least two "
            f"perturbations. Got {type(perturbations).__name__} instead."
        )
    singles = [copy.deepcopy(_as_perturbation(p)) for p in perturbations]
    for p in singles:
        p._validate_params()
    labels = [p.label for p in singles]
    dup = next((lab for lab in labels if labels.count(lab) > 1), None)
    if dup is not None:
        raise ParameterError(
            f"The 'perturbations' parameter of interactions lists {dup} twice; "
            "give each entry different parameters."
        )
    return singles


def _magnitudes(magnitude: Any, singles: list[Any]) -> list[float]:
    if isinstance(magnitude, Mapping):
        out = []
        for p in singles:
            for key in (p.label, p.name):
                if key in magnitude:
                    out.append(magnitude[key])
                    break
            else:
                raise ParameterError(
                    f"The 'magnitude' mapping of interactions has no entry for {p.label!r}. "
                    f"Got keys {sorted(map(str, magnitude))} instead."
                )
    elif isinstance(magnitude, Sequence) and not isinstance(magnitude, str):
        if len(magnitude) != len(singles):
            raise ParameterError(
                "The 'magnitude' parameter of interactions must be one float, a mapping from "
                f"label to float, or one float per perturbation ({len(singles)}). "
                f"Got {len(magnitude)} values instead."
            )
        out = list(magnitude)
    else:
        out = [magnitude] * len(singles)
    mags = []
    for p, m in zip(singles, out):
        f = p.check_magnitude(m)
        if f == 0:
            raise ParameterError(
                f"The 'magnitude' of {p.label} in interactions must be > 0 (magnitude 0 is the "
                "clean data). Got 0 instead."
            )
        mags.append(f)
    return mags


def _groups(pairs: Any, singles: list[Any]) -> list[tuple[int, ...]]:
    k = len(singles)
    if pairs is None:
        if k < 2:
            raise ParameterError(
                "The 'perturbations' parameter of interactions must list at least two "
                f"perturbations to form pairs. Got {k} instead."
            )
        return list(itertools.combinations(range(k), 2))
    if isinstance(pairs, (str, Mapping)) or not isinstance(pairs, Sequence) or not pairs:
        raise ParameterError(
            "The 'pairs' parameter of interactions must be None (all pairs) or a non-empty list "
            f"of pairs or stacks, e.g. [('a', 'b'), ('a', 'b', 'c')]. Got {pairs!r} instead."
        )
    labels = [p.label for p in singles]
    names = [p.name for p in singles]
    out: list[tuple[int, ...]] = []
    for group in pairs:
        if isinstance(group, (str, Mapping)) or not isinstance(group, Sequence) or len(group) < 2:
            raise ParameterError(
                "Each entry of the 'pairs' parameter of interactions must list two or more "
                f"perturbations. Got {group!r} instead."
            )
        idx = tuple(_member(item, singles, labels, names) for item in group)
        if len(set(idx)) != len(idx):
            raise ParameterError(
                f"An entry of the 'pairs' parameter of interactions repeats a perturbation: "
                f"{group!r}."
            )
        key = tuple(sorted(idx))
        if key not in {tuple(sorted(g)) for g in out}:
            out.append(idx)
    return out


def _member(item: Any, singles: list[Any], labels: list[str], names: list[str]) -> int:
    from perturbkit.perturbations.base import Perturbation

    if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
        if 0 <= int(item) < len(singles):
            return int(item)
    elif isinstance(item, str):
        if item in labels:
            return labels.index(item)
        if names.count(item) == 1:
            return names.index(item)
    elif isinstance(item, Perturbation):
        for i, p in enumerate(singles):
            if p == item:
                return i
    raise ParameterError(
        f"The 'pairs' parameter of interactions names {item!r}, which is not one of the "
        f"perturbations (by index 0..{len(singles) - 1}, label or instance); labels: "
        f"{', '.join(labels)}."
    )


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
    """Mean, t-interval and two-sided p-value (against 0) of per-repeat values."""
    from scipy import stats

    n = values.shape[0]
    mean = float(values.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(values.std(ddof=1))
    sem = sd / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sem
    if sem == 0:
        p = math.nan if mean == 0 else 0.0
    else:
        p = float(2 * stats.t.sf(abs(mean) / sem, n - 1))
    return mean, mean - half, mean + half, p


def interactions(
    model: Any,
    X: Any,
    y: Any = None,
    *,
    perturbations: Sequence[Any],
    magnitude: float | Mapping[str, float] | Sequence[float],
    repeats: int = 5,
    metric: str | None = None,
    seed: SeedLike = None,
    pairs: Sequence[Sequence[Any]] | None = None,
    confidence: float = 0.95,
    batch_size: int = 8192,
    task: str | None = None,
    store: Any = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Single, pair and stack effects of perturbations, and their interactions, as a tidy table.

    Args:
        model: anything :func:`perturbkit.wrap` accepts.
        X: the data (as for :func:`perturbkit.sweep`).
        y: labels, optional (without them the default metric is label-free).
        perturbations: the singles: Perturbation instances, registry names or
            ``{name, params}`` dicts, at least two unless ``pairs`` is given.
        magnitude: one magnitude for all, a mapping from label or name to
            magnitude, or one per perturbation (each in its own unit, > 0).
        repeats: independent draws, >= 2 (the intervals come from their spread).
        metric: the metric whose change is measured; default a degradation
            metric that is 0 on clean data: ``accuracy_drop`` (classification
            with labels), ``flip_rate`` (without), ``mse_increase``
            (regression with labels) or ``deviation`` (without).
        seed: root seed; None draws one (recorded in ``table.attrs["meta"]``).
        pairs: None for every pair of ``perturbations``; or a list of groups of
            two or more, each naming members by index, label or instance
            (a group of three or more is a stack).
        confidence: level of the t-intervals across repeats.
        batch_size, task, store, progress: passed to :func:`perturbkit.sweep`.

    Returns:
        One row per single and per group, columns ``kind`` (``"single"``,
        ``"pair"``, ``"stack"``), ``label`` (``"a + b"``), ``members`` and
        ``magnitudes`` (tuples), ``metric``, ``clean`` (the metric on clean
        data), ``delta`` (mean change from clean) with ``delta_low`` /
        ``delta_high``, ``additive`` (mean ΣΔ of the members), ``interaction``
        (mean of Δ(group) − ΣΔ(members) per repeat) with ``interaction_low``
        / ``interaction_high`` and ``interaction_p`` (two-sided t-test against
        0), and ``n_repeats``. Singles have NaN in the group columns.
    """
    from perturbkit.engine.sweep import sweep
    from perturbkit.perturbations.base import Combine

    # one repeat has no spread: the intervals (and the interaction's) would all be NaN
    check_param("interactions", "repeats", repeats, Interval(2, None, integer=True))
    check_param(
        "interactions",
        "confidence",
        confidence,
        Interval(0, 1, closed_low=False, closed_high=False),
    )
    singles = _singles(perturbations)
    mags = _magnitudes(magnitude, singles)
    groups = _groups(pairs, singles)
    combos = [
        Combine([copy.deepcopy(singles[i]) for i in g], weights=[mags[i] for i in g])
        for g in groups
    ]
    entries = singles + combos
    grid = {p.label: [0.0, m] for p, m in zip(singles, mags)}
    grid.update({c.label: [0.0, 1.0] for c in combos})
    result = sweep(
        model,
        X,
        y,
        perturbations=entries,
        magnitudes=grid,
        repeats=repeats,
        seed=seed,
        batch_size=batch_size,
        metrics=None if metric is None else [metric],
        task=task,
        store=store,
        progress=progress,
    )
    meta = result.meta
    if metric is None:
        metric = _DEFAULT_METRIC[(meta["task"], bool(meta["has_labels"]))]
    t = result.table
    t = t[(t["metric"] == metric) & (t["group"] == "")]

    from perturbkit._rng import canonical_json

    def deltas(p: Any) -> tuple[np.ndarray, float]:
        rows = t[(t["perturbation"] == p.name) & (t["params"] == canonical_json(p.get_params()))]
        clean = rows[rows["magnitude"] == 0].sort_values("repeat")["value"].to_numpy()
        hit = rows[rows["magnitude"] != 0].sort_values("repeat")["value"].to_numpy()
        return hit - clean, float(clean[0])

    # The sweep keeps fitted copies; identify entries by name and canonical params.
    single_d = [deltas(p) for p in singles]
    labels = [p.label for p in singles]
    records = []
    for i, p in enumerate(singles):
        d, clean = single_d[i]
        mean, lo, hi, _ = _interval(d, confidence)
        records.append(
            ["single", p.label, (p.label,), (mags[i],), metric, clean, mean, lo, hi]
            + [math.nan] * 5
            + [d.shape[0]]
        )
    for g, c in zip(groups, combos):
        d, clean = deltas(c)
        additive = np.sum([single_d[i][0] for i in g], axis=0)
        mean, lo, hi, _ = _interval(d, confidence)
        inter, ilo, ihi, p_value = _interval(d - additive, confidence)
        records.append(
            [
                "pair" if len(g) == 2 else "stack",
                " + ".join(labels[i] for i in g),
                tuple(labels[i] for i in g),
                tuple(mags[i] for i in g),
                metric,
                clean,
                mean,
                lo,
                hi,
                float(additive.mean()),
                inter,
                ilo,
                ihi,
                p_value,
                d.shape[0],
            ]
        )
    table = pd.DataFrame.from_records(records, columns=COLUMNS)
    table.attrs["meta"] = meta
    return table


def interaction_heatmap(table: pd.DataFrame, *, annotate: bool = True) -> Any:
    """The pair interactions of an :func:`interactions` table as a heatmap Figure.

    Cell (a, b) is the interaction of the pair a + b, on a diverging scale
    centred at 0 (red: the pair is worse than additive for a degradation
    metric; blue: better); a star marks an interval that excludes 0. The
    diagonal shows each single's own Δ in grey. Stacks of three or more are
    not drawn. Returns a :class:`matplotlib.figure.Figure` with an Agg canvas
    (no pyplot): save it with ``fig.savefig("interactions.svg")``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    needed = {"kind", "members", "delta", "interaction", "interaction_low", "interaction_high"}
    if not isinstance(table, pd.DataFrame) or not needed <= set(table.columns):
        raise ParameterError(
            "interaction_heatmap needs the table that interactions() returns. "
            f"Got {type(table).__name__} instead."
        )
    singles = table[table["kind"] == "single"]
    labels = [str(m[0]) for m in singles["members"]]
    k = len(labels)
    pos = {lab: i for i, lab in enumerate(labels)}
    inter = np.full((k, k), np.nan)
    sig = np.zeros((k, k), bool)
    for _, row in table[table["kind"] == "pair"].iterrows():
        a, b = (pos[m] for m in row["members"])
        inter[a, b] = inter[b, a] = row["interaction"]
        low, high = row["interaction_low"], row["interaction_high"]
        sig[a, b] = sig[b, a] = bool(np.isfinite(low) and (low > 0 or high < 0))
    metric = str(table["metric"].iloc[0]) if len(table) else ""

    longest = max((len(lab) for lab in labels), default=0)
    size = 1.6 + 0.75 * k
    fig = Figure(figsize=(size + 1.6 + 0.07 * longest, size + 0.05 * longest), dpi=100)
    fig.set_layout_engine("constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    finite = inter[np.isfinite(inter)]
    span = float(np.abs(finite).max()) if finite.size else 0.0
    span = span if span > 0 else 1e-12
    shown = np.ma.masked_invalid(inter)
    im = ax.imshow(
        shown, cmap="RdBu_r", norm=TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span), aspect="equal"
    )
    for i in range(k):
        ax.add_patch(
            _rect(i, facecolor="#e4e7eb", edgecolor="white"),
        )
    if annotate:
        for i in range(k):
            d = singles["delta"].iloc[i]
            ax.text(i, i, f"{d:+.3g}", ha="center", va="center", fontsize=8, color="#333333")
            for j in range(k):
                if i != j and np.isfinite(inter[i, j]):
                    dark = abs(inter[i, j]) > 0.6 * span
                    ax.text(
                        j,
                        i,
                        f"{inter[i, j]:+.3g}" + ("*" if sig[i, j] else ""),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if dark else "#1f2933",
                    )
    ticks = [lab.replace("$", r"\$") for lab in labels]
    ax.set_xticks(range(k), ticks, rotation=35, ha="right")
    ax.set_yticks(range(k), ticks)
    ax.set_title(
        f"Interaction Δ(a+b) − Δ(a) − Δ(b), {metric.replace('_', ' ')}\n"
        "diagonal: Δ alone; *: interval excludes 0",
        fontsize=9.5,
    )
    fig.colorbar(im, ax=ax, shrink=0.8, label="interaction")
    return fig


def _rect(i: int, **kw: Any) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((i - 0.5, i - 0.5), 1, 1, **kw)
