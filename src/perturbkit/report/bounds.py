"""The "Robustness bounds" part of the HTML report: curves with upper confidence bounds.

:func:`perturbkit.report.write_report` accepts, beside sweep results,
:class:`perturbkit.RobustnessCurve` objects and stored bounds runs (a
:class:`perturbkit.SweepResult` whose ``meta["kind"]`` is ``"bounds"``, as
``perturbkit.load_run`` or ``perturbkit report RUN`` give them). All the curves
of one report share one section: a figure (estimate solid, upper bound dashed,
MSE / Var(y) where labels exist), a summary with the area under the curve and
the robustness radius, each curve's table, certification when stored, and how
to reproduce each curve.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from perturbkit.analysis.bounds import RobustnessCurve, plot_robustness_curves
from perturbkit.analysis.bounds_store import (
    certification_from_table,
    curve_from_table,
    is_bounds_run,
)
from perturbkit.exceptions import ParameterError

__all__ = ["BoundsItem", "as_bounds_item", "bounds_article", "check_tolerance"]

KEY = "bounds"

BoundsItem = tuple[RobustnessCurve, "pd.DataFrame | None"]


def as_bounds_item(obj: Any) -> BoundsItem | None:
    """``(curve, certification)`` when ``obj`` is a curve or a stored bounds run, else None."""
    if isinstance(obj, RobustnessCurve):
        return obj, None
    meta = getattr(obj, "meta", None)
    table = getattr(obj, "table", None)
    if isinstance(meta, dict) and isinstance(table, pd.DataFrame) and is_bounds_run(meta):
        cert = certification_from_table(table, meta)
        return curve_from_table(table, meta), (cert if len(cert) else None)
    return None


def check_tolerance(tolerance: Any, owner: str) -> float:
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (int, float))
        or not (math.isfinite(tolerance) and tolerance > 0)
    ):
        raise ParameterError(
            f"The 'bounds_tolerance' parameter of {owner} must be a finite float > 0 (the "
            f"normalised bound that defines the robustness radius). Got {tolerance!r} instead."
        )
    return float(tolerance)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True).replace("//", "&#47;&#47;")


def _muted(text: str) -> str:
    return f'<span class="muted">{text}</span>'


def _num(v: Any, digits: int = 4) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return _e(v)
    if not math.isfinite(f):
        return "–" if math.isnan(f) else _e(f"{f:g}")
    if f == 0:
        return "0"
    a = abs(f)
    return _e(f"{f:.3g}" if a >= 1e5 or a < 1e-3 else f"{f:.{digits}g}")


def _names(items: Sequence[BoundsItem]) -> list[str]:
    out: list[str] = []
    for i, (c, _) in enumerate(items, start=1):
        base = c.label or str(c.meta.get("name") or "") or f"curve {i}"
        name, k = base, 2
        while name in out:
            name, k = f"{base} ({k})", k + 1
        out.append(name)
    return out


def _radius_text(curve: RobustnessCurve, tolerance: float) -> str:
    r = curve.radius(tolerance)
    levels = curve.levels
    if math.isnan(r):
        return f"–<br>{_muted(_e(f'exceeded at ε = {levels.min():g}'))}"
    if r >= levels.max():
        return f'<span class="num">≥ {_e(f"{r:g}")}</span><br>{_muted("holds on the whole grid")}'
    return f'<span class="num">{_e(f"{r:g}")}</span>'


def _metric(items: Sequence[BoundsItem]) -> str:
    return "mse" if all(c.has_labels for c, _ in items) else "deviation"


_COLUMNS = [
    ("mse", "MSE"),
    ("mse_upper", "MSE bound"),
    ("mse_upper_minkowski", "Minkowski bound"),
    ("tighter", "tighter"),
    ("mse_upper_normalized", "MSE bound / Var(y)"),
    ("deviation", "deviation"),
    ("deviation_upper", "deviation bound"),
    ("deviation_upper_normalized", "deviation bound / normaliser"),
    ("error_rate", "error rate"),
    ("error_rate_upper", "error-rate bound"),
    ("flip_rate", "flip rate"),
    ("flip_rate_upper", "flip-rate bound"),
]


def _curve_table(curve: RobustnessCurve, table: Callable[..., str]) -> str:
    t = curve.to_pandas()
    cols = [(c, h) for c, h in _COLUMNS if c in t.columns]
    if "mse" in t.columns:  # the label-free normalised deviation adds little beside the MSE
        cols = [(c, h) for c, h in cols if c != "deviation_upper_normalized"]
    head = ["ε"] + [_e(h) for _, h in cols]
    rows = []
    for _, r in t.iterrows():
        level = float(r["level"])
        cells = [f'<span class="num">{_e(f"{level:g}")}</span>']
        for c, _ in cols:
            v = r[c]
            cells.append(_e(v) if c == "tighter" else f'<span class="num">{_num(v)}</span>')
        rows.append(cells)
    return table(head, rows, cls="compact")


def _python_call(curve: RobustnessCurve) -> str:
    m = curve.meta
    levels = [float(v) for v in curve.levels]
    args = [f"levels={levels!r}"]
    for k in ("noise", "relative", "confidence", "n_draws", "method", "sampler", "target"):
        if k in m:
            args.append(f"{k}={m[k]!r}")
    if m.get("value_range") is not None and m.get("method") in ("bernstein", "hoeffding"):
        args.append(f"value_range={m['value_range']!r}")
    if m.get("simultaneous"):
        args.append("simultaneous=True")
    args.append(f"seed={m.get('root_seed')!r}")
    y = "y" if curve.has_labels else "None"
    return (
        "curve = perturbkit.robustness_curve(\n    model, X, "
        + y
        + ",\n    "
        + (",\n    ".join(args) + ",\n)")
    )


def _radius_header(column: str) -> str:
    k = column.removeprefix("certified_accuracy@").removesuffix("sigma")
    return "certified at r = 0" if float(k) == 0 else f"certified at r = {k}σ"


def _certification_html(items: Sequence[BoundsItem], names: list[str], table: Any) -> str:
    parts = []
    for name, (_, cert) in zip(names, items, strict=True):
        if cert is None or not len(cert):
            continue
        acc = [c for c in cert.columns if str(c).startswith("certified_accuracy@")]
        head = ["σ", "n0 / n", "α", "points", "abstain", "median radius", "mean radius"]
        head += [_e(_radius_header(c)) for c in acc]
        rows = []
        for _, r in cert.iterrows():
            cells = [
                f'<span class="num">{_num(r["sigma"])}</span>',
                f'<span class="num">{int(r["n0"]):,} / {int(r["n"]):,}</span>',
                f'<span class="num">{_num(r["alpha"])}</span>',
                f'<span class="num">{int(r["n_points"]):,}</span>',
                f'<span class="num">{100 * float(r["abstain_rate"]):.1f}%</span>',
                f'<span class="num">{_num(r["median_radius"])}</span>',
                f'<span class="num">{_num(r["mean_radius"])}</span>',
            ]
            cells += [f'<span class="num">{100 * float(r[c]):.1f}%</span>' for c in acc]
            rows.append(cells)
        parts.append(f"<h4>{_e(name)}</h4>" + table(head, rows, cls="compact"))
    if not parts:
        return ""
    note = (
        "<p>Randomized smoothing (Cohen, Rosenfeld &amp; Kolter 2019): each row is certified "
        "when the lower confidence bound of its top class's probability under Gaussian noise "
        "of standard deviation σ exceeds 1/2; its certified L2 radius (input units) is "
        "σ·Φ⁻¹(p<sub>A</sub>). Certified accuracy at radius r: the share of rows certified "
        "correct with radius ≥ r (abstentions count as wrong).</p>"
    )
    return note + "".join(parts)


def bounds_article(
    items: Sequence[BoundsItem],
    *,
    command: str | None,
    tolerance: float,
    table: Callable[..., str],
    figure: Callable[[Any, str, str], str],
    section: Callable[..., str],
) -> tuple[str, list[tuple[str, str]]]:
    """The report's "Robustness bounds" article and its table-of-contents entries."""
    names = _names(items)
    curves = dict(zip(names, (c for c, _ in items), strict=True))
    metric = _metric(items)
    toc: list[tuple[str, str]] = []

    def sec(suffix: str, title: str, body: str, lead: str = "") -> str:
        sid = f"{KEY}-{suffix}"
        toc.append((sid, title))
        return section(sid, title, body, lead=lead)

    what = "MSE / Var(y)" if metric == "mse" else "mean squared output deviation / Var(f(x))"
    figs = figure(
        plot_robustness_curves(curves, metric=metric, normalized=True),
        f"{KEY}-curve-{metric}",
        _e(
            f"{what} against the noise level ε. Solid: the estimate; dashed: the upper "
            "confidence bound; shaded: the band between them."
        ),
    )
    if all("error_rate" in c.table.columns for c in curves.values()):
        figs += figure(
            plot_robustness_curves(curves, metric="error_rate", normalized=False),
            f"{KEY}-curve-error",
            "Error rate under noise: estimate (solid) and upper confidence bound (dashed).",
        )

    col = "MSE" if metric == "mse" else "deviation"
    head = [
        "Curve",
        "Run",
        "Points",
        "Noise",
        "Bound",
        f"Clean {col}",
        _e(f"AUC of the normalised {col} bound"),
        _e(f"Radius: normalised bound ≤ {tolerance:g}"),
    ]
    rows = []
    for name, c in curves.items():
        m = c.meta
        t = c.table
        clean = float(t["clean_mse"].iloc[0]) if "clean_mse" in t.columns else float("nan")
        noise = f"{m.get('noise', '?')}, " + (
            "relative to feature std" if m.get("relative", True) else "absolute"
        )
        conf = m.get("confidence")
        how = f"{m.get('method')}, {m.get('sampler')}, {m.get('n_draws')} draws"
        bound = _e(f"{100 * float(conf):g}% {m.get('target', '')}" if conf is not None else "–")
        bound += f"<br>{_muted(_e(how))}"
        rows.append(
            [
                f"<strong>{_e(name)}</strong><br>{_muted(_e(m.get('model', '')))}",
                f"<code>{_e(m.get('run_id') or '–')}</code>",
                f'<span class="num">{int(m.get("n_points", len(t))):,}</span>',
                _e(noise),
                bound,
                f'<span class="num">{_num(clean) if metric == "mse" else "0"}</span>',
                f'<span class="num">{_num(c.auc(normalize=True))}</span>',
                _radius_text(c, tolerance),
            ]
        )
    summary = table(head, rows)
    norm_note = (
        "Var(y), the error of predicting the mean, so 1 means the model's error under noise "
        "is no better than that"
        if metric == "mse"
        else "Var(f(x)), the spread of the clean outputs"
    )
    summary += (
        f"<p>AUC: the mean height of the normalised {col} bound over the grid of levels "
        f"(trapezoid rule); lower is more robust. Radius: the largest level ε whose bound, "
        f"and every smaller level's, stays at or below {tolerance:g} × {_e(norm_note)}. Only "
        "grid levels are claimed.</p>"
    )

    per = "".join(f"<h4>{_e(name)}</h4>{_curve_table(c, table)}" for name, c in curves.items())
    method = (
        '<ul class="plain">'
        "<li>Noise: independent entries of standard deviation ε times each feature's "
        "standard deviation (relative) or ε (absolute); Gaussian, uniform or Laplace.</li>"
        "<li>The <em>population</em> bound holds for the distribution the rows were sampled "
        "from (i.i.d. rows assumed) and accounts for both the finite data and the finite noise "
        "draws; the <em>dataset</em> bound holds for these rows and accounts for the noise "
        "draws only.</li>"
        "<li>Each level's bound holds with the stated confidence on its own; a curve computed "
        "with <code>simultaneous=True</code> holds at all levels at once.</li>"
        "<li>The Minkowski bound (√M(0) + √S(ε))² needs labels only for the clean pass; "
        "“tighter” names the smaller of the two bounds (choosing after seeing both holds at "
        "confidence 1 − 2α).</li></ul>"
    )
    repro = []
    for name, c in curves.items():
        m = c.meta
        cmd = m.get("command") or (command if len(curves) == 1 else None)
        block = f"<h4>{_e(name)}</h4>"
        block += (
            f"<p>Root seed <code>{_e(m.get('root_seed'))}</code> · measure "
            f"<code>{_e(m.get('measure', '–'))}</code> · model {_e(m.get('model', '–'))}</p>"
        )
        if cmd:
            block += f'<pre class="cmd">{_e(cmd)}</pre>'
        block += f"<pre>{_e(_python_call(c))}</pre>"
        repro.append(block)

    parts = [
        sec(
            "curves",
            "Robustness curves with upper bounds",
            f'<div class="figs">{figs}</div>',
            "High-probability upper bounds on the model's error under random input noise "
            "of level ε (perturbkit.robustness_curve).",
        ),
        sec("summary", "Area under the curve and robustness radius", summary),
        sec(
            "tables",
            "Curve tables",
            per,
            "Estimates and upper confidence bounds per noise level.",
        ),
    ]
    cert = _certification_html(items, names, table)
    if cert:
        parts.append(sec("certification", "Certified robustness", cert))
    parts.append(sec("method", "How to read the bounds", method))
    parts.append(
        sec(
            "reproducibility",
            "Reproducibility",
            "".join(repro),
            "Same seed, same data, same model: the same curve, bit for bit.",
        )
    )
    confs = sorted(
        {
            f"{100 * float(c.meta['confidence']):g}%"
            for c in curves.values()
            if c.meta.get("confidence") is not None
        }
    )
    pills = [f'<span class="pill">{len(curves)} curve{"s" if len(curves) != 1 else ""}</span>']
    pills += [f'<span class="pill">{_e(cf)} confidence</span>' for cf in confs]
    head_html = (
        f'<header class="run-head"><h2>Robustness bounds</h2>'
        f'<div class="pills">{"".join(pills)}</div></header>'
    )
    article = f'<article class="run" id="{KEY}">{head_html}{"".join(parts)}</article>'
    return article, [(KEY, "Robustness bounds"), *toc]
