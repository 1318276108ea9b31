"""One self-contained HTML file per report: inline CSS, inline SVG figures, no scripts, no URLs.

Example thumbnails and audio plots are small PNG images embedded as ``data:`` URIs.
"""

from __future__ import annotations

import html
import io
import json
import math
import pprint
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd

from perturbkit.exceptions import ParameterError
from perturbkit.report import bounds as _bounds
from perturbkit.report import examples as _examples
from perturbkit.report import figures
from perturbkit.report import interactions as _interactions
from perturbkit.report._common import (
    PERCENT_METRICS,
    RunInfo,
    check_result,
    fmt_magnitude,
    fmt_value,
    metric_title,
)
from perturbkit.report.summary import plain_language_summary

__all__ = ["render_html", "write_report"]

ThresholdsArg = float | Sequence[float] | Mapping[str, float | Sequence[float]] | None


# -- escaping ---------------------------------------------------------------------------------
def _e(value: Any) -> str:
    """HTML-escape user data; '//' becomes '&#47;&#47;' so no text can form a URL."""
    return html.escape(str(value), quote=True).replace("//", "&#47;&#47;")


_SVG_HEAD = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_SVG_META = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_SVG_NS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_SVG_ID = re.compile(r'\b(id)="([^"]+)"')
_SVG_REF = re.compile(r'((?:xlink:)?href="|url\()#')


def _svg(fig: Any, key: str) -> str:
    """The figure as inline SVG: no XML prolog, DOCTYPE, metadata or namespace URLs."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": key}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = _SVG_HEAD.sub("", buf.getvalue(), count=1)
    text = _SVG_META.sub("", text)
    text = _SVG_NS.sub("", text)
    text = re.sub(r"\n\s*", "\n", text).replace("//", "&#47;&#47;")
    # Several SVGs share one document: make their ids (and references to them) unique.
    text = _SVG_ID.sub(lambda m: f'{m.group(1)}="{key}-{m.group(2)}"', text)
    text = _SVG_REF.sub(lambda m: f"{m.group(1)}#{key}-", text)
    return text.replace("<svg ", f'<svg role="img" aria-label="{_e(key)}" ', 1)


# -- small HTML builders --------------------------------------------------------------------------
def _table(head: Sequence[str], rows: Sequence[Sequence[str]], *, cls: str = "") -> str:
    """A table; ``head`` and ``rows`` are already-escaped HTML fragments."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    c = f' class="{cls}"' if cls else ""
    return (
        f'<div class="table-wrap"><table{c}><thead><tr>{th}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _figure(fig: Any, key: str, caption: str) -> str:
    return f'<figure class="fig">{_svg(fig, key)}<figcaption>{caption}</figcaption></figure>'


def _section(sid: str, title: str, body: str, *, lead: str = "") -> str:
    lead_html = f'<p class="lead">{lead}</p>' if lead else ""
    return f'<section class="block" id="{sid}"><h3>{_e(title)}</h3>{lead_html}{body}</section>'


def _lower(title: str) -> str:
    """'Accuracy drop' -> 'accuracy drop', but 'MSE increase' stays."""
    return title if title[1:2].isupper() else title[:1].lower() + title[1:]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _muted(text: str) -> str:
    return f'<span class="muted">{text}</span>'


# -- thresholds ---------------------------------------------------------------------------------
def _tolerances(info: RunInfo, thresholds: ThresholdsArg) -> dict[str, list[tuple[float, str]]]:
    """metric -> [(absolute tolerance, column header)]."""

    def header(metric: str, tol: float) -> str:
        if metric in PERCENT_METRICS:
            what = "drop" if metric.endswith("_drop") else metric.replace("_", " ")
            unit = " pts" if metric.endswith(("_drop", "_increase")) else "%"
            return f"{what} ≥ {100 * tol:g}{unit}"
        return f"{metric} ≥ {fmt_value(tol, metric)}"

    def as_list(v: Any, metric: str) -> list[float]:
        vals = [v] if isinstance(v, (int, float)) else list(v)
        out = []
        for t in vals:
            if (
                isinstance(t, bool)
                or not isinstance(t, (int, float))
                or not (t > 0 and math.isfinite(t))
            ):
                raise ParameterError(
                    f"The 'thresholds' parameter of write_report must hold tolerances > 0 for "
                    f"{metric!r}. Got {t!r} instead."
                )
            out.append(float(t))
        return out

    metrics = set(info.summary["metric"])
    if thresholds is None:
        m = info.degradation
        if m == "accuracy_drop":
            return {m: [(t, header(m, t)) for t in (0.01, 0.02, 0.05, 0.10)]}
        if m == "flip_rate":
            return {m: [(t, header(m, t)) for t in (0.01, 0.05, 0.10, 0.25)]}
        if m == "mse_increase" and info.clean_value("mse") > 0:
            base = info.clean_value("mse")
            return {
                m: [
                    (f * base, f"MSE +{100 * f:g}%<br>{_muted('Δ ≥ ' + fmt_value(f * base, m))}")
                    for f in (0.1, 0.25, 0.5, 1.0)
                ]
            }
        top = float(info.metric(m)["mean"].max()) if m in metrics else float("nan")
        if not (top > 0 and math.isfinite(top)):
            return {}
        tols = sorted({float(f"{f * top:.2g}") for f in (0.1, 0.25, 0.5)})
        return {m: [(t, _e(header(m, t))) for t in tols]}
    if isinstance(thresholds, Mapping):
        out = {}
        for metric, v in thresholds.items():
            if metric not in metrics:
                raise ParameterError(
                    f"The 'thresholds' parameter of write_report names metric {metric!r}, which "
                    f"the run does not have ({', '.join(sorted(metrics))})."
                )
            out[str(metric)] = [(t, _e(header(metric, t))) for t in as_list(v, metric)]
        return out
    m = info.degradation
    return {m: [(t, _e(header(m, t))) for t in as_list(thresholds, m)]}


def _thresholds_html(info: RunInfo, thresholds: ThresholdsArg) -> str:
    spec = _tolerances(info, thresholds)
    if not spec:
        return (
            f"<p>{_muted('No degradation was measured, so there is no threshold to report.')}</p>"
        )
    parts = []
    for metric, tols in spec.items():
        frames = [info.result.thresholds(metric, t) for t, _ in tols]
        base = frames[0]
        rows = []
        for i, label in enumerate(base["label"]):
            cells = [f"<strong>{_e(label)}</strong>", _muted(_e(info.units.get(label, "")))]
            for f in frames:
                thr = float(f["threshold"].iloc[i])
                if math.isfinite(thr):
                    cells.append(f'<span class="num">{fmt_magnitude(thr, 3)}</span>')
                else:
                    top = fmt_magnitude(f["max_magnitude"].iloc[i])
                    cells.append(f'<span class="ok">not reached</span><br>{_muted(f"up to {top}")}')
            at_max = _e(fmt_value(float(base["value_at_max"].iloc[i]), metric))
            top = fmt_magnitude(float(base["max_magnitude"].iloc[i]))
            cells.append(f'<span class="num">{at_max}</span> {_muted("at " + top)}')
            rows.append(cells)
        head = (
            ["Perturbation", "Unit of magnitude"] + [h for _, h in tols] + ["At largest magnitude"]
        )
        parts.append(
            f"<h4>{_e(metric_title(metric))} ({_e(metric)})</h4>" + _table(head, rows, cls="thr")
        )
    return "".join(parts)


# -- sections ------------------------------------------------------------------------------------
_BASELINE_CARDS = {
    "classification": ["accuracy", "ece", "log_loss", "brier", "entropy"],
    "regression": ["mse", "rmse", "mae"],
}
_CARD_HELP = {
    "accuracy": "share of rows predicted correctly",
    "ece": "expected calibration error; lower is better",
    "log_loss": "lower is better",
    "brier": "lower is better",
    "entropy": "mean predictive uncertainty (nats)",
    "mse": "mean squared error",
    "rmse": "in the target's units",
    "mae": "in the target's units",
}


def _card(value: str, label: str, help_text: str = "", *, accent: bool = False) -> str:
    cls = "card accent" if accent else "card"
    h = f'<div class="card-help">{help_text}</div>' if help_text else ""
    return (
        f'<div class="{cls}"><div class="card-value">{value}</div>'
        f'<div class="card-label">{label}</div>{h}</div>'
    )


def _baseline_html(info: RunInfo) -> str:
    cards = []
    for m in _BASELINE_CARDS[info.task]:
        if m in info.baseline:
            cards.append(
                _card(
                    _e(fmt_value(info.baseline[m], m)),
                    _e(metric_title(m)),
                    _e(_CARD_HELP.get(m, "")),
                    accent=m == info.primary,
                )
            )
    n_rows, n_feat = info.meta.get("n_rows"), info.meta.get("n_features")
    if n_rows is not None:
        cards.append(
            _card(f"{int(n_rows):,}", "rows", f"{int(n_feat):,} features" if n_feat else "")
        )
    classes = info.meta.get("classes")
    if info.task == "classification" and classes:
        shown = ", ".join(str(c) for c in classes[:8]) + (" …" if len(classes) > 8 else "")
        cards.append(_card(str(len(classes)), "classes", _e(shown)))
    note = ""
    if not info.has_labels:
        note = (
            '<p class="note">No labels were given: accuracy and error metrics are unknown, and '
            "the report uses label-free metrics (how much predictions move).</p>"
        )
    return f'<div class="cards">{"".join(cards)}</div>{note}'


def _overview_html(info: RunInfo) -> str:
    cfg = info.meta.get("config") or {}
    rows = []
    for label in info.labels:
        name_params = info.summary.loc[
            info.summary["label"] == label, ["perturbation", "version", "params"]
        ].iloc[0]
        params = _params_text(name_params["params"])
        pid = f"{name_params['perturbation']}@{name_params['version']}"
        mags = ", ".join(fmt_magnitude(m) for m in info.magnitudes(label))
        rows.append(
            [
                f"<strong>{_e(label)}</strong>",
                f'<code class="id">{_e(pid)}</code>',
                f"<code>{_e(params)}</code>" if params else _muted("defaults"),
                _e(info.units.get(label, "")),
                f'<span class="num">{_e(mags)}</span>',
            ]
        )
    table = _table(["Perturbation", "Id", "Parameters", "Unit of magnitude", "Magnitudes"], rows)
    rep = cfg.get("repeats", info.repeats)
    metrics = cfg.get("metrics") or sorted(set(info.summary["metric"]))
    note = (
        f"<p>{int(rep)} repeat{'s' if int(rep) != 1 else ''} per magnitude · "
        f"{len(metrics)} metrics · magnitude 0 is the clean data.</p>"
    )
    return table + note


def _params_text(params: str) -> str:
    """``k=v, …`` from the canonical JSON parameters (JSON spelling of values)."""
    try:
        p = json.loads(params) if params else {}
    except ValueError:
        return str(params)
    if not isinstance(p, dict):
        return str(params)
    return ", ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in p.items())


def _curves_html(info: RunInfo, key: str) -> str:
    res = info.result
    figs = [(info.primary, figures.plot_curves(res, info.primary))]
    second = {"accuracy": "flip_rate", "mse": "deviation"}.get(info.primary)
    if second and second in set(info.summary["metric"]):
        figs.append((second, figures.plot_curves(res, second)))
    interval = (
        "Shaded bands: 95% t-interval over the repeats."
        if info.repeats > 1
        else "A single repeat: no interval is shown."
    )
    body = ""
    for metric, fig in figs:
        cap = f"{_e(metric_title(metric))} against magnitude. {interval}"
        body += _figure(fig, f"{key}-curve-{metric}", cap)
    s = info.metric(info.primary)
    mags = info.magnitudes()
    rows = []
    for label in info.labels:
        g = s[s["label"] == label].set_index("magnitude")
        cells = [f"<strong>{_e(label)}</strong>"]
        for m in mags:
            if m not in g.index:
                cells.append(_muted("–"))
                continue
            r = g.loc[m]
            v = _e(fmt_value(float(r["mean"]), info.primary))
            if info.repeats > 1 and np.isfinite(r["ci_low"]):
                lo, hi = (
                    fmt_value(float(r["ci_low"]), info.primary),
                    fmt_value(float(r["ci_high"]), info.primary),
                )
                v += f"<br>{_muted(_e(f'[{lo}, {hi}]'))}"
            cells.append(f'<span class="num">{v}</span>')
        rows.append(cells)
    numbers = _table(["Perturbation"] + [fmt_magnitude(m) for m in mags], rows, cls="compact")
    return (
        f'<div class="figs">{body}</div><details><summary>Numbers behind the '
        f"{_e(_lower(metric_title(info.primary)))} curve</summary>{numbers}</details>"
    )


def _per_class_html(info: RunInfo, key: str) -> str:
    g = info.group_means("recall_drop")
    r = info.group_means("recall")
    if g.empty:
        return f"<p>{_muted('This run has no per-class rows.')}</p>"
    fig = figures.plot_per_class(info.result)
    chosen = figures._at_magnitude(info, g, None, "plot_per_class")
    classes = list(dict.fromkeys(g["group"]))
    note = ""
    if len(classes) > 30:  # a long tail of classes: the table lists the most affected
        sel = pd.concat(
            [g[(g["label"] == lab) & (g["magnitude"] == m)] for lab, m in chosen.items()]
        )
        worst = sel.groupby("group")["mean"].max().fillna(-np.inf)
        keep = set(worst.sort_values(ascending=False).index[:30])
        classes = [c for c in classes if c in keep]
        note = f"<p>{_muted('The 30 classes with the largest recall drop are listed.')}</p>"
    head = ["Class", "Clean recall"] + [
        f"{_e(lab)}<br>{_muted('@ ' + fmt_magnitude(m))}" for lab, m in chosen.items()
    ]
    rows = []
    for c in classes:
        any_row = r[r["group"] == c]
        rz = any_row[any_row["magnitude"] == 0]
        clean = float(rz["mean"].iloc[0]) if len(rz) else float("nan")
        cells = [f"<strong>{_e(c.removeprefix('class='))}</strong>", _e(fmt_value(clean, "recall"))]
        for lab, m in chosen.items():
            v = any_row[(any_row["label"] == lab) & (any_row["magnitude"] == m)]["mean"]
            dv = g[(g["label"] == lab) & (g["magnitude"] == m) & (g["group"] == c)]["mean"]
            txt = _e(fmt_value(float(v.iloc[0]), "recall")) if len(v) else "–"
            if len(dv) and np.isfinite(dv.iloc[0]):
                txt += " " + _muted(_e(f"({-100 * float(dv.iloc[0]):+.1f} pts)"))
            cells.append(f'<span class="num">{txt}</span>')
        rows.append(cells)
    cap = "Recall drop per true class (clean recall minus perturbed recall); higher is worse."
    if info.repeats > 1 and len(chosen) * min(len(classes), 20) <= 16:
        cap += " Error bars: 95% interval over the repeats."
    elif info.repeats > 1:
        cap += f" Means over {info.repeats} repeats."
    fig_html = _figure(fig, key + "-per-class", cap)
    return f'<div class="figs">{fig_html}</div>' + _table(head, rows, cls="compact") + note


def _error_modes_html(info: RunInfo, key: str) -> str:
    g = info.group_means("transition_increase")
    fig = figures.plot_error_modes(info.result)
    cap = (
        "Growth of each true → predicted confusion relative to clean data, as a share of all rows, "
        "for the confusions that grow most."
    )
    body = f'<div class="figs">{_figure(fig, key + "-error-modes", cap)}</div>'
    if g.empty:
        return body
    chosen = figures._at_magnitude(info, g, None, "plot_error_modes")
    growth: dict[str, float] = {}
    for lab, m in chosen.items():
        sel = g[(g["label"] == lab) & (g["magnitude"] == m)]
        for grp, v in zip(sel["group"], sel["mean"]):
            growth[grp] = max(growth.get(grp, -np.inf), float(v))
    modes = [k for k in sorted(growth, key=lambda k: -growth[k]) if growth[k] > 0][:10]
    if not modes:
        return body
    head = ["True → predicted"] + [
        f"{_e(lab)}<br>{_muted('@ ' + fmt_magnitude(m))}" for lab, m in chosen.items()
    ]
    rows = []
    for mode in modes:
        a, _, b = mode.partition("->")
        cells = [f"<strong>{_e(a)}</strong> → <strong>{_e(b)}</strong>"]
        for lab, m in chosen.items():
            v = g[(g["label"] == lab) & (g["magnitude"] == m) & (g["group"] == mode)]["mean"]
            val = float(v.iloc[0]) if len(v) else 0.0
            cells.append(f'<span class="num">{_e(fmt_value(val, "transition_increase"))}</span>')
        rows.append(cells)
    return body + _table(head, rows, cls="compact")


def _python_call(info: RunInfo) -> str:
    cfg = info.meta.get("config") or {}
    perts = [
        {"name": p.get("name"), "params": p.get("params", {})} for p in cfg.get("perturbations", [])
    ] or [p.get("id") for p in info.meta.get("perturbations", [])]
    mags = cfg.get("magnitudes") or []
    if mags and all(m == mags[0] for m in mags):
        mag_arg: Any = mags[0]
    else:
        names = [p.get("label") or p.get("name") for p in info.meta.get("perturbations", [])]
        mag_arg = dict(zip(names, mags))
    args = [
        f"perturbations={pprint.pformat(perts, width=88, sort_dicts=False)}",
        f"magnitudes={mag_arg!r}",
        f"repeats={cfg.get('repeats', info.repeats)!r}",
        f"seed={info.meta.get('root_seed')!r}",
    ]
    y = "y" if info.has_labels else "None"
    return (
        f"result = perturbkit.sweep(\n    model, X, {y},\n    "
        + ",\n    ".join(a.replace("\n", "\n    ") for a in args)
        + ",\n)"
    )


def _reproducibility_html(info: RunInfo, command: str | None) -> str:
    meta = info.meta
    model = meta.get("model") or {}
    seed_note = "given by the user" if meta.get("seed_given") else "drawn at random and recorded"
    timings = meta.get("timings") or {}
    total = timings.get("total_seconds")
    facts = [
        ("Run id", f"<code>{_e(meta.get('run_id'))}</code>"),
        ("Root seed", f"<code>{_e(meta.get('root_seed'))}</code> {_muted('(' + seed_note + ')')}"),
        ("Seeding", _e(meta.get("seeding", "–"))),
        ("Model", _e(model.get("description", "–"))),
        ("Model fingerprint", f"<code>{_e(model.get('fingerprint', '–'))}</code>"),
        ("Data fingerprint", f"<code>{_e(meta.get('data_fingerprint', '–'))}</code>"),
        ("Run fingerprint", f"<code>{_e(meta.get('fingerprint', '–'))}</code>"),
        ("Created", _e(meta.get("created_at", "–"))),
        ("Duration", _e(f"{float(total):.2f} s") if isinstance(total, (int, float)) else "–"),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    env = meta.get("environment") or {}
    env_rows = "".join(
        f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in env.items()
    )
    env_html = f'<table class="kv">{env_rows}</table>' if env_rows else _muted("not recorded")
    cmd = ""
    if command:
        cmd = f'<h4>Command</h4><pre class="cmd">{_e(command)}</pre>'
    py = f"<h4>From Python</h4><pre>{_e(_python_call(info))}</pre>"
    config = json.dumps(meta.get("config") or {}, indent=2, sort_keys=True, default=str)
    cfg = f"<details><summary>Full configuration</summary><pre>{_e(config)}</pre></details>"
    return (
        f'<div class="repro"><div><dl class="facts">{dl}</dl></div>'
        f"<div><h4>Environment</h4>{env_html}</div></div>{cmd}{py}{cfg}"
    )


_STATUS = {"complete": "ok", "interrupted": "warn", "failed": "bad"}


def _run_html(
    result: Any,
    index: int,
    n_runs: int,
    command: str | None,
    thresholds: ThresholdsArg,
    examples: Sequence[_examples.Example] = (),
) -> tuple[str, list[tuple[str, str]]]:
    info = RunInfo(result)
    key = f"run{index}"
    meta = info.meta
    name = str(meta.get("name") or f"run {index}")
    status = str(meta.get("status") or "unknown")
    task = info.task + ("" if info.has_labels else ", without labels")
    toc: list[tuple[str, str]] = []

    def sec(suffix: str, title: str, body: str, lead: str = "") -> str:
        sid = f"{key}-{suffix}"
        toc.append((sid, title))
        return _section(sid, title, body, lead=lead)

    sentences = plain_language_summary(result)
    summary = '<ul class="plain">' + "".join(f"<li>{_e(s)}</li>" for s in sentences) + "</ul>"
    parts = [
        sec("summary", "In plain words", summary),
        sec("baseline", "Clean baseline", _baseline_html(info), "Metrics on the unperturbed data."),
        sec(
            "overview",
            "What was tested",
            _overview_html(info),
            "Each perturbation has its own unit of magnitude; compare perturbations through the "
            "thresholds below rather than by raw magnitude.",
        ),
    ]
    if examples:
        parts.append(
            sec(
                "examples",
                "Examples before and after",
                _examples.examples_html(examples),
                _e(_examples.examples_lead(examples)),
            )
        )
    parts += [
        sec(
            "curves",
            "Robustness curves",
            _curves_html(info, key),
            f"How {_e(_lower(metric_title(info.primary)))} changes as each perturbation grows.",
        ),
        sec(
            "heatmap",
            "Degradation heatmap",
            _figure(
                figures.plot_heatmap(result),
                f"{key}-heatmap",
                f"Mean {_e(_lower(metric_title(info.degradation)))} ({_e(info.degradation)}) per "
                "perturbation and magnitude; blank cells were not tested."
                + (
                    " Cell values in percentage points."
                    if info.degradation in PERCENT_METRICS
                    else ""
                ),
            ),
        ),
        sec(
            "thresholds",
            "Thresholds",
            _thresholds_html(info, thresholds),
            "The smallest magnitude at which the mean degradation reaches each tolerance "
            "(linear interpolation between tested magnitudes).",
        ),
    ]
    if info.task == "classification":
        if info.has_labels:
            parts.append(sec("per-class", "Per-class breakdown", _per_class_html(info, key)))
            parts.append(sec("error-modes", "Error modes", _error_modes_html(info, key)))
        else:
            why = (
                "Needs labels: pass y to perturbkit.sweep to see per-class recall and error modes."
            )
            na = f"<p>{_muted(why)}</p>"
            parts.append(sec("per-class", "Per-class breakdown", na))
    parts.append(
        sec(
            "reproducibility",
            "Reproducibility",
            _reproducibility_html(info, command or meta.get("command")),
            "Everything needed to compute this run again, bit for bit, in the same environment.",
        )
    )
    rows_txt = f"{int(meta['n_rows']):,} rows" if meta.get("n_rows") else ""
    pills = [
        f'<span class="pill status-{_STATUS.get(status, "warn")}">{_e(status)}</span>',
        f'<span class="pill">{_e(task)}</span>',
        f'<span class="pill">{_plural(len(info.labels), "perturbation")}</span>',
        f'<span class="pill">{_plural(info.repeats, "repeat")}</span>',
    ]
    if rows_txt:
        pills.append(f'<span class="pill">{_e(rows_txt)}</span>')
    runno = f'<div class="run-kicker">Run {index} of {n_runs}</div>' if n_runs > 1 else ""
    head = (
        f'<header class="run-head">{runno}<h2>{_e(name)}</h2>'
        f'<div class="pills">{"".join(pills)}</div>'
        f'<div class="run-sub">{_e(meta.get("model", {}).get("description", ""))}'
        f" · run <code>{_e(meta.get('run_id'))}</code> · {_e(meta.get('created_at', ''))}"
        "</div></header>"
    )
    return f'<article class="run" id="{key}">{head}{"".join(parts)}</article>', [(key, name), *toc]


_CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;--brand:#0b3c5d;
--accent:#0072b2;--ok:#1b7f4b;--warn:#b7791f;--bad:#c0392b}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.55 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.top{background:linear-gradient(135deg,#0b3c5d 0%,#145374 60%,#1d6a8f 100%);color:#fff;
padding:34px 0 28px}
.wrap{max-width:1120px;margin:0 auto;padding:0 28px}
.top h1{margin:0 0 6px;font-size:28px;font-weight:650;letter-spacing:-.01em}
.top .sub{opacity:.85;font-size:14px}
.brand{font-size:12px;letter-spacing:.14em;text-transform:uppercase;opacity:.75;
margin-bottom:10px}
nav.toc{background:#fff;border:1px solid var(--line);border-radius:10px;padding:16px 22px;
margin:24px 0;box-shadow:0 1px 2px rgba(16,24,40,.04)}
nav.toc h2{font-size:13px;text-transform:uppercase;letter-spacing:.08em;color:var(--muted);
margin:0 0 8px}
nav.toc ol{margin:0;padding-left:20px}
nav.toc li{margin:3px 0}
nav.toc ul{margin:2px 0 8px;padding-left:0;list-style:none;display:flex;flex-wrap:wrap;
gap:4px 14px;font-size:13.5px}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
article.run{background:var(--card);border:1px solid var(--line);border-radius:12px;
margin:26px 0 34px;box-shadow:0 1px 3px rgba(16,24,40,.06);overflow:hidden}
.run-head{padding:22px 28px 18px;border-bottom:1px solid var(--line);background:#fbfcfd}
.run-kicker{font-size:12px;text-transform:uppercase;letter-spacing:.1em;color:var(--muted)}
.run-head h2{margin:2px 0 10px;font-size:23px;font-weight:650}
.run-sub{color:var(--muted);font-size:13px;margin-top:10px}
.pills{display:flex;flex-wrap:wrap;gap:6px}
.pill{display:inline-block;font-size:12.5px;padding:2px 10px;border-radius:999px;
background:#eef2f6;color:#3e4c59;border:1px solid #dde3ea}
.status-ok{background:#e6f4ea;color:var(--ok);border-color:#bfe3cb;font-weight:600}
.status-warn{background:#fdf3e1;color:var(--warn);border-color:#f2d9a6;font-weight:600}
.status-bad{background:#fbe9e7;color:var(--bad);border-color:#f3c2bb;font-weight:600}
section.block{padding:22px 28px;border-bottom:1px solid var(--line)}
section.block:last-child{border-bottom:0}
h3{margin:0 0 6px;font-size:18px;font-weight:650}
h4{margin:18px 0 8px;font-size:14.5px;font-weight:650}
p.lead{margin:0 0 14px;color:var(--muted);font-size:14px}
ul.plain{margin:6px 0 0;padding:0;list-style:none}
ul.plain li{position:relative;padding:7px 0 7px 22px;border-bottom:1px dashed #edf0f3}
ul.plain li:last-child{border-bottom:0}
ul.plain li:before{content:"";position:absolute;left:4px;top:15px;width:8px;height:8px;
border-radius:50%;background:var(--accent)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:12px}
.card{border:1px solid var(--line);border-radius:10px;padding:12px 14px;background:#fff}
.card.accent{border-color:#9cc7e4;background:#f2f8fc}
.card-value{font-size:24px;font-weight:650;font-variant-numeric:tabular-nums;
letter-spacing:-.01em}
.card-label{font-size:13px;color:var(--ink);margin-top:2px}
.card-help{font-size:12px;color:var(--muted)}
.note{background:#fdf8ec;border:1px solid #f2e1b5;border-radius:8px;padding:9px 12px;
font-size:14px}
.table-wrap{overflow-x:auto;margin:6px 0}
table{border-collapse:collapse;width:100%;font-size:13.5px}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}
thead th{font-size:12.5px;color:#3e4c59;background:#f3f6f9;border-bottom:1px solid #d9dfe6;
font-weight:600}
tbody tr:nth-child(even){background:#fbfcfd}
table.compact td,table.compact th{padding:5px 8px}
.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.muted{color:var(--muted);font-size:.92em}
.ok{color:var(--ok);white-space:nowrap}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f4f7;
padding:1px 5px;border-radius:4px;overflow-wrap:anywhere}
code.id{white-space:nowrap}
pre{font:12.5px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#0f1d2b;
color:#e6edf3;padding:12px 14px;border-radius:8px;overflow-x:auto;margin:6px 0}
pre.cmd{background:#102a43}
details{margin-top:10px}
summary{cursor:pointer;color:var(--accent);font-size:14px}
.figs{display:grid;grid-template-columns:1fr;gap:14px}
figure.fig{margin:8px 0;padding:10px;border:1px solid var(--line);border-radius:10px;
background:#fff}
figure.fig svg{display:block;max-width:100%;height:auto;margin:0 auto}
figcaption{font-size:13px;color:var(--muted);margin-top:6px;text-align:center}
.repro{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:22px}
dl.facts{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:6px 14px;margin:0;
font-size:13.5px}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;word-break:break-word}
table.kv th{font-size:13px;text-transform:none;letter-spacing:0;color:var(--muted);
background:none;border-bottom:1px solid var(--line);font-weight:500;width:40%}
table.kv td,table.kv th{padding:4px 8px}
footer{color:var(--muted);font-size:12.5px;text-align:center;padding:6px 0 36px}
@media (max-width:760px){.repro{grid-template-columns:1fr}.wrap{padding:0 14px}section.block{
padding:18px}}
@media print{body{background:#fff}.top{background:#0b3c5d;-webkit-print-color-adjust:exact;
print-color-adjust:exact}article.run{box-shadow:none;break-inside:auto}section.block{
break-inside:avoid}details{display:block}}
"""


def _as_results(results: Any) -> tuple[list[Any], list[_bounds.BoundsItem]]:
    """The sweep results and the robustness curves (with their certification) to report."""
    items = (
        [results]
        if hasattr(results, "table")
        else list(results)
        if isinstance(results, (list, tuple))
        else None
    )
    if not items:
        raise ParameterError(
            "The 'results' parameter of write_report must be a SweepResult, a RobustnessCurve "
            f"or a non-empty list of them. Got {type(results).__name__} instead."
        )
    sweeps, curves = [], []
    for r in items:
        curve = _bounds.as_bounds_item(r)
        if curve is not None:
            curves.append(curve)
            continue
        check_result(r, "write_report")
        if len(r.table) == 0:
            raise ParameterError(
                f"The 'results' parameter of write_report holds run {r.meta.get('run_id')!r}, "
                "which has no rows; run the sweep first."
            )
        sweeps.append(r)
    return sweeps, curves


def _examples_by_run(examples: Any, results: Any, items: list[Any]) -> list[list[Any]]:
    """The examples of each sweep in ``items``: by run id, or by position or run id in a mapping."""
    out: list[list[Any]] = [[] for _ in items]
    if examples is None:
        return out
    given = (
        [results]
        if hasattr(results, "table")
        else list(results)
        if isinstance(results, (list, tuple))
        else []
    )
    ids = [r.meta.get("run_id") for r in items]

    def slot(key: Any) -> int:
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(given):
            for j, r in enumerate(items):
                if r is given[key]:
                    return j
        elif isinstance(key, str) and key in ids:
            return ids.index(key)
        raise ParameterError(
            f"The 'examples' parameter of write_report names run {key!r}, which is not a sweep "
            f"of the report; use a position in 'results' (0 to {len(given) - 1}) or a run id "
            f"({', '.join(map(str, ids))})."
        )

    if isinstance(examples, Mapping):
        for key, exs in examples.items():
            out[slot(key)].extend(_examples.as_examples(exs, "write_report"))
        return out
    for ex in _examples.as_examples(examples, "write_report"):
        if ex.run_id in ids:
            out[ids.index(ex.run_id)].append(ex)
        elif len(items) == 1:
            out[0].append(ex)
        else:
            raise ParameterError(
                f"The 'examples' parameter of write_report holds an example of run "
                f"{ex.run_id!r}, which is not a sweep of the report ({', '.join(map(str, ids))})."
            )
    return out


def render_html(
    results: Any,
    *,
    title: str | None = None,
    command: str | None = None,
    thresholds: ThresholdsArg = None,
    bounds_tolerance: float = 1.0,
    examples: Any = None,
    interactions: Any = None,
) -> str:
    """The report as one self-contained HTML document (see :func:`write_report`)."""
    tolerance = _bounds.check_tolerance(bounds_tolerance, "write_report")
    items, curves = _as_results(results)
    run_examples = _examples_by_run(examples, results, items)
    tables = [] if interactions is None else _interactions.as_tables(interactions, "write_report")
    if title is None:
        if len(items) == 1:
            title = f"Robustness report: {items[0].meta.get('name') or 'sweep'}"
        elif not items and len(curves) == 1:
            c = curves[0][0]
            title = f"Robustness bounds: {c.label or c.meta.get('name') or 'curve'}"
        else:
            title = "Robustness report"
    runs, tocs = [], []
    for i, r in enumerate(items, start=1):
        body, toc = _run_html(r, i, len(items), command, thresholds, run_examples[i - 1])
        runs.append(body)
        tocs.append(toc)
    if tables:
        body, toc = _interactions.interactions_article(
            tables, table=_table, figure=_figure, section=_section
        )
        runs.append(body)
        tocs.append(toc)
    if curves:
        body, toc = _bounds.bounds_article(
            curves,
            command=command if not items else None,
            tolerance=tolerance,
            table=_table,
            figure=_figure,
            section=_section,
        )
        runs.append(body)
        tocs.append(toc)
    toc_html = "".join(
        f'<li><a href="#{sid}">{_e(name)}</a><ul>'
        + "".join(f'<li><a href="#{s}">{_e(t)}</a></li>' for s, t in entries)
        + "</ul></li>"
        for (sid, name), *entries in tocs
    )
    from perturbkit._version import __version__

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    n = len(items)
    sub = f"{n} run{'s' if n != 1 else ''} · " if n or not curves else ""
    if curves:
        k = len(curves)
        sub += f"{k} robustness curve{'s' if k != 1 else ''} · "
    sub += f"generated {now} · perturbkit {_e(__version__)}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="perturbkit {_e(__version__)}">'
        f"<title>{_e(title)}</title><style>{_CSS}{_examples.CSS}{_interactions.CSS}</style>"
        "</head><body>"
        '<header class="top" id="top"><div class="wrap">'
        '<div class="brand">perturbkit · robustness report</div>'
        f'<h1>{_e(title)}</h1><div class="sub">{sub}</div></div></header>'
        '<main class="wrap"><nav class="toc" id="contents"><h2>Contents</h2>'
        f"<ol>{toc_html}</ol></nav>"
        f"{''.join(runs)}</main>"
        "<footer>Self-contained report: no scripts, no network access. "
        "Figures are also available from Python: <code>perturbkit.report.figures</code>."
        "</footer></body></html>\n"
    )


def write_report(
    results: Any,
    path: str | Path,
    *,
    title: str | None = None,
    command: str | None = None,
    thresholds: ThresholdsArg = None,
    bounds_tolerance: float = 1.0,
    examples: Any = None,
    interactions: Any = None,
) -> Path:
    """Write one self-contained HTML report (no external URL, no script) and return its path.

    Args:
        results: a :class:`perturbkit.SweepResult` or a list of them; each run
            gets its own section, reached from the table of contents. The list
            may also hold :class:`perturbkit.RobustnessCurve` objects and stored
            bounds runs (``perturbkit.load_run`` of a run whose ``meta["kind"]``
            is ``"bounds"``): they share one "Robustness bounds" section with a
            figure of the curves (estimate solid, upper bound dashed; MSE / Var(y)
            where labels exist), each curve's table, its area under the curve and
            robustness radius, and certification where it was stored.
        path: where to write the ``.html`` file (parent folders are created).
        title: the page title; default "Robustness report: <run name>".
        command: the command that re-runs the experiment (default: each run's
            ``meta["command"]`` where it has one; for example
            ``perturbkit run exp.yaml``), shown in the reproducibility block.
        thresholds: tolerances for the thresholds table: a float or a list of
            floats for each run's degradation metric (accuracy_drop, flip_rate,
            mse_increase or deviation), or a mapping ``{metric: tolerance(s)}``.
            Default: 1, 2, 5 and 10 points of accuracy; 1, 5, 10 and 25% of
            predictions flipped; +10, 25, 50 and 100% of the clean MSE.
        bounds_tolerance: the robustness radius of a curve is the largest level
            whose normalised bound (MSE / Var(y), or deviation / Var(f(x))
            without labels) stays at or below this; default 1 (no worse than
            predicting the mean).
        examples: inputs before and after, shown in each run's "Examples before
            and after" section: the list that
            :func:`perturbkit.report.perturbation_examples` returns (several runs'
            lists may be joined; each example finds its run by run id), or a
            mapping from a run's position in ``results`` (or its run id) to its
            list. Images show as thumbnails, text with the changed characters
            marked, audio as waveforms and spectrograms, tabular rows with the
            changed cells highlighted; embedded images are capped per run.
        interactions: a table from
            :func:`perturbkit.analysis.interactions.interactions`, or a list of
            them: an "Interactions" section with the interaction heatmap, each
            perturbation's change alone, and each pair's change, the sum of its
            singles and the interaction with its interval.

    Returns:
        The path written.
    """
    doc = render_html(
        results,
        title=title,
        command=command,
        thresholds=thresholds,
        bounds_tolerance=bounds_tolerance,
        examples=examples,
        interactions=interactions,
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    return out
