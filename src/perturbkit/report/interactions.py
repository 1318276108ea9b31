"""The "Interactions" part of the HTML report: do pairs of perturbations hurt more than their parts?

:func:`perturbkit.report.write_report` takes ``interactions=`` a table from
:func:`perturbkit.analysis.interactions.interactions` (or a list of them) and
shows, for each, the interaction heatmap, each perturbation's effect alone and
each pair's (or stack's) effect together, the sum of its singles, and the
interaction Δ(pair) − ΣΔ(singles) with its interval across repeats::

    from perturbkit.analysis.interactions import interactions
    table = interactions(model, X, y, perturbations=["gaussian_noise", "outliers"],
                         magnitude=0.3, repeats=5, seed=0)
    write_report(result, "report.html", interactions=table)
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from perturbkit.analysis.interactions import COLUMNS, interaction_heatmap
from perturbkit.exceptions import ParameterError
from perturbkit.report._common import fmt_magnitude, fmt_value, metric_title

__all__ = ["KEY", "as_tables", "interactions_article"]

KEY = "interactions"
_NEEDED = set(COLUMNS)  # the columns of analysis.interactions' table


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True).replace("//", "&#47;&#47;")


def _muted(text: str) -> str:
    return f'<span class="muted">{text}</span>'


def as_tables(interactions: Any, owner: str) -> list[pd.DataFrame]:
    """The interaction tables to report, checked, or a one-line error."""
    items = [interactions] if isinstance(interactions, pd.DataFrame) else interactions
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or not items:
        raise ParameterError(
            f"The 'interactions' parameter of {owner} must be a table from "
            "perturbkit.analysis.interactions.interactions() or a non-empty list of them. "
            f"Got {type(interactions).__name__} instead."
        )
    for t in items:
        missing = sorted(_NEEDED - set(t.columns)) if isinstance(t, pd.DataFrame) else None
        if missing is None or missing or len(t) == 0:
            what = (
                type(t).__name__
                if missing is None
                else "an empty table"
                if not missing
                else "a table without " + ", ".join(missing[:3])
            )
            raise ParameterError(
                f"The 'interactions' parameter of {owner} must hold tables from "
                f"perturbkit.analysis.interactions.interactions(). Got {what} instead."
            )
    return list(items)


def _value(v: Any, metric: str) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return _e(v)
    return _e(fmt_value(f, metric, points=True))


def _interval(lo: Any, hi: Any, metric: str) -> str:
    if not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
        return ""
    return "<br>" + _muted(
        _e(f"[{fmt_value(lo, metric, points=True)}, ")
        + _e(f"{fmt_value(hi, metric, points=True)}]")
    )


def _mags(m: Any) -> str:
    vals = m if isinstance(m, (list, tuple)) else [m]
    return ", ".join(fmt_magnitude(float(v)) for v in vals)


def _reading(row: pd.Series) -> str:
    lo, hi = float(row["interaction_low"]), float(row["interaction_high"])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return _muted("one repeat: no interval")
    if lo > 0:
        return '<span class="ia-pos">more than the sum</span>'
    if hi < 0:
        return '<span class="ia-neg">less than the sum</span>'
    return _muted("additive (interval includes 0)")


def _table_html(t: pd.DataFrame, table: Callable[..., str]) -> str:
    metric = str(t["metric"].iloc[0])
    singles = t[t["kind"] == "single"]
    groups = t[t["kind"] != "single"]
    rows = []
    for _, r in singles.iterrows():
        rows.append(
            [
                f"<strong>{_e(r['label'])}</strong>",
                f'<span class="num">{_e(_mags(r["magnitudes"]))}</span>',
                f'<span class="num">{_value(r["delta"], metric)}'
                f"{_interval(r['delta_low'], r['delta_high'], metric)}</span>",
            ]
        )
    alone = table(["Perturbation", "Magnitude", "Δ alone"], rows, cls="compact")
    rows = []
    for _, r in groups.iterrows():
        members = " + ".join(f"<strong>{_e(m)}</strong>" for m in r["members"])
        kind = "" if r["kind"] == "pair" else f"<br>{_muted('stack')}"
        p = float(r["interaction_p"])
        p_text = _e("< 0.001" if p < 0.001 else f"{p:.2g}") if math.isfinite(p) else "–"
        rows.append(
            [
                members + kind,
                f'<span class="num">{_e(_mags(r["magnitudes"]))}</span>',
                f'<span class="num">{_value(r["delta"], metric)}'
                f"{_interval(r['delta_low'], r['delta_high'], metric)}</span>",
                f'<span class="num">{_value(r["additive"], metric)}</span>',
                f'<span class="num"><strong>{_value(r["interaction"], metric)}</strong>'
                f"{_interval(r['interaction_low'], r['interaction_high'], metric)}</span>",
                f'<span class="num">{p_text}</span>',
                _reading(r),
            ]
        )
    together = table(
        [
            "Pair",
            "Magnitudes",
            "Δ pair",
            "Sum of singles",
            "Interaction",
            "p",
            "Reading",
        ],
        rows,
        cls="compact",
    )
    return f"<h4>Alone</h4>{alone}<h4>Together</h4>{together}"


def interactions_article(
    tables: Sequence[pd.DataFrame],
    *,
    table: Callable[..., str],
    figure: Callable[[Any, str, str], str],
    section: Callable[..., str],
) -> tuple[str, list[tuple[str, str]]]:
    """The report's "Interactions" article and its table-of-contents entries."""
    toc: list[tuple[str, str]] = []
    parts = []
    for i, t in enumerate(tables, start=1):
        meta = dict(t.attrs.get("meta") or {})
        metric = str(t["metric"].iloc[0])
        name = str(meta.get("name") or "")
        title = "Interactions" if len(tables) == 1 else f"Interactions {i}"
        if name and name not in ("sweep", "interactions"):
            title += f": {name}"
        reps = int(t["n_repeats"].max())
        facts = [
            f"{_e(metric_title(metric))} ({_e(metric)}), as a change from the clean data",
            f"{reps} repeats; intervals are t-intervals across them"
            if reps > 1
            else "1 repeat: no interval",
        ]
        model = (meta.get("model") or {}).get("description")
        if model:
            facts.append(f"model {_e(model)}")
        if meta.get("run_id"):
            facts.append(f"run <code>{_e(meta['run_id'])}</code>")
        if meta.get("root_seed") is not None:
            facts.append(f"seed <code>{_e(meta['root_seed'])}</code>")
        body = ""
        if (t["kind"] == "pair").any():
            body += (
                '<div class="figs">'
                + figure(
                    interaction_heatmap(t),
                    f"{KEY}-{i}-heatmap",
                    "Each pair's interaction Δ(a + b) − Δ(a) − Δ(b); the diagonal is each "
                    "perturbation's Δ alone; * marks an interval that excludes 0.",
                )
                + "</div>"
            )
        body += _table_html(t, table)
        sid = f"{KEY}-{i}"
        toc.append((sid, title))
        parts.append(section(sid, title, body, lead=" · ".join(facts) + "."))
    how = (
        '<ul class="plain">'
        "<li>Δ is the change of the metric from the clean data; the pair applies both "
        "perturbations (<code>perturbkit.Combine</code>), each with the very draws it has "
        "alone, so the interval of the difference is sharp.</li>"
        "<li>Interaction = Δ(pair) − Δ(first) − Δ(second), per repeat, then averaged. For a "
        "degradation metric (a drop or an increase) a positive interaction means the pair "
        "does more harm than its parts added up; a negative one that their damage overlaps "
        "(they hit the same rows, or one masks the other).</li>"
        "<li>An interval that includes 0 is consistent with additive effects; p is the "
        "two-sided t-test of the per-repeat interactions against 0.</li></ul>"
    )
    sid = f"{KEY}-method"
    toc.append((sid, "How to read interactions"))
    parts.append(section(sid, "How to read interactions", how))
    n = sum(int((t["kind"] != "single").sum()) for t in tables)
    pills = f'<span class="pill">{n} combination{"s" if n != 1 else ""}</span>'
    head = (
        f'<header class="run-head"><h2>Interactions</h2><div class="pills">{pills}</div></header>'
    )
    article = f'<article class="run" id="{KEY}">{head}{"".join(parts)}</article>'
    return article, [(KEY, "Interactions"), *toc]


CSS = """
.ia-pos{color:var(--bad);font-weight:600;white-space:nowrap}
.ia-neg{color:var(--accent);font-weight:600;white-space:nowrap}
"""
