"""The ``perturbkit`` command: a thin Typer + rich layer over the public Python API.

Everything here can be done from Python; the CLI adds presentation only.
Bad input prints one line, ``error: ...``, on stderr and exits with code 2,
without a traceback; Ctrl-C during a run exits with 130 and leaves the run
stored as ``interrupted``, to be continued with ``--resume``. ``--json`` on
the read commands prints machine-readable JSON and nothing else on stdout.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from perturbkit.exceptions import PerturbkitError

__all__ = ["app", "main"]

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="perturbkit",
    help=(
        "How fragile is your model? Sweep perturbations over a model and data, store every "
        "run, and write a self-contained HTML report.\n\n"
        "Start with [bold]perturbkit demo[/bold], then:\n\n"
        "  perturbkit run examples/breast_cancer.yaml --report report.html\n"
        "  perturbkit runs\n"
        "  perturbkit show RUN_ID\n"
        "  perturbkit report RUN_ID -o report.html\n"
        "  perturbkit perturbations\n"
        "  perturbkit bound model.skops diabetes --levels 0,0.1,0.5\n"
        "  perturbkit calc taylor 'x**2' --x 2 --epsilon 0.01"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
calc_app = typer.Typer(
    name="calc",
    help=(
        "The perturbation calculator: closed-form answers before (or beside) a sweep.\n\n"
        "  perturbkit calc drop --p 0.92 --epsilon 0.1 --sensitivity 2\n"
        "  perturbkit calc taylor 'x**2' --x 2 --epsilon 0.01\n"
        "  perturbkit calc gradient 'x**2 + y**2' --x 1,2 --delta 0.1,0\n"
        "  perturbkit calc norm 0.01 -0.02 0.03\n"
        "  perturbkit calc fgsm --epsilon 0.05 1 -1 1\n"
        "  perturbkit calc from-run RUN_ID gaussian_noise --epsilon 0.3"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(calc_app)

_NUMBERS = {"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]}

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        "-s",
        help="Results store URL or .db path. Default: sqlite:///perturbkit.db in this folder.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
AllowPickleOpt = Annotated[
    bool,
    typer.Option(
        "--allow-pickle",
        help="Load a .pkl/.joblib model, which runs code when loaded: only files you trust.",
    ),
]
SeedOpt = Annotated[
    int | None,
    typer.Option("--seed", help="Root seed (default: drawn and shown).", show_default=False),
]


# -- output helpers -----------------------------------------------------------------------
def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _text(value: Any) -> Text:
    """User content (names, formulas, labels) as literal text, never rich markup."""
    return value if isinstance(value, Text) else Text(str(value))


def _row(table: Table, *cells: Any, **kw: Any) -> None:
    table.add_row(*(_text(c) for c in cells), **kw)


def _one_line(message: str) -> str:
    return " ".join(str(message).split()) or "unknown error"


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    sys.stdout.flush()
    typer.echo(f"error: {_one_line(message)}", err=True)
    raise typer.Exit(code)


@contextmanager
def _user_errors() -> Iterator[None]:
    """User errors become one line on stderr and exit code 2; bugs keep their traceback."""
    try:
        yield
    except PerturbkitError as exc:
        _fail(str(exc))
    except OSError as exc:
        where = f" '{exc.filename}'" if getattr(exc, "filename", None) else ""
        _fail(f"{exc.strerror or type(exc).__name__}{where}.")


def _plain(value: Any) -> Any:
    """JSON-ready: numpy/pandas scalars to Python, NaN/inf to None, timestamps to ISO 8601."""
    import numpy as np
    import pandas as pd

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value if isinstance(value, str) else str(value)


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(_plain(obj), indent=2, allow_nan=False))


def _records(frame: Any) -> list[dict[str, Any]]:
    return [_plain(r) for r in frame.to_dict(orient="records")]


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(f):
        return "–"
    return f"{f:.{digits}g}"


_PRIMARY = ("accuracy", "flip_rate", "rmse", "mse", "mae", "deviation")


def _primary_metric(result: Any) -> str | None:
    metrics = list(dict.fromkeys(result.table["metric"].astype(str)))
    for m in _PRIMARY:
        if m in metrics:
            return m
    return metrics[0] if metrics else None


def _summary_table(result: Any, metric: str, *, title: str | None = None) -> Table:
    """The primary metric per perturbation × magnitude: mean, 95% interval, change."""
    s = result.summary()
    s = s[s["metric"] == metric]
    base = result.baseline.get(metric)
    if base is None:
        zero = s[s["magnitude"] == 0]
        base = float(zero["mean"].iloc[0]) if len(zero) else None
    table = Table(title=title, title_justify="left", show_lines=False, pad_edge=False)
    table.add_column("perturbation", style="bold")
    table.add_column("magnitude", justify="right")
    table.add_column(metric, justify="right")
    table.add_column("95% interval", justify="right")
    table.add_column("vs clean", justify="right")
    for label, g in s.groupby("label", sort=False):
        g = g.sort_values("magnitude")
        for i, (_, row) in enumerate(g.iterrows()):
            lo, hi = row["ci_low"], row["ci_high"]
            ci = "–" if not (math.isfinite(lo) and math.isfinite(hi)) else f"{lo:.4g} – {hi:.4g}"
            delta = "–" if base is None else _delta(row["mean"] - base, base)
            _row(
                table,
                str(label) if i == 0 else "",
                f"{row['magnitude']:g}",
                _fmt(row["mean"]),
                ci,
                delta,
                end_section=i == len(g) - 1,
            )
    return table


def _delta(d: float, base: float) -> str:
    if abs(d) <= 1e-12 * max(1.0, abs(base)):  # rounding in the mean of equal repeats
        return "0"
    return f"{d:+.3g}"


def _plain_sentences(result: Any) -> list[str]:
    try:
        from perturbkit.report import plain_language_summary
    except ImportError:  # pragma: no cover - the report package ships with perturbkit
        return []
    return list(plain_language_summary(result))


def _bullets(con: Console, lines: Sequence[str], indent: int = 0) -> None:
    if not lines:
        return
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=indent + 1, justify="right")
    grid.add_column()
    for line in lines:
        _row(grid, "•", line)
    con.print(grid)


def _store_url(store: str | None) -> str:
    from perturbkit.experiment import DEFAULT_STORE

    return DEFAULT_STORE if store is None else store


def _open_store(store: str | None) -> Any:
    from perturbkit import Store

    return Store(_store_url(store))


def _load(store: Any, run_id: str) -> Any:
    from perturbkit import SweepResult

    record, table = store.load_run(run_id)
    meta = dict(record.get("meta") or {})
    meta.setdefault("run_id", record.get("run_id"))
    meta["status"] = record.get("status", meta.get("status"))
    return record, SweepResult(table, meta)


# -- top level --------------------------------------------------------------------------
def _version(value: bool) -> None:
    if value:
        from perturbkit import __version__

        typer.echo(f"perturbkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """How fragile is your model? Perturbation sweeps, a results store and HTML reports."""


@app.command()
def run(
    experiment: Annotated[
        Path,
        typer.Argument(metavar="EXPERIMENT.yaml", help="Experiment YAML file.", show_default=False),
    ],
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the newest stored run of the same experiment."),
    ] = False,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar and no tables.")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            "-r",
            help="Also write the HTML report here (overrides the file's).",
            show_default=False,
        ),
    ] = None,
    allow_pickle: AllowPickleOpt = False,
    trust: Annotated[
        list[str] | None,
        typer.Option(
            "--trust",
            help="A type a .skops model may hold beyond skops's defaults (repeatable).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run an experiment: sweep, store every cell, print a summary and the run id.

    Shows a progress bar with ETA, then a table of the primary metric per
    perturbation and magnitude. The run is stored as it goes; Ctrl-C keeps the
    finished cells and --resume continues from them.

    Examples:

      perturbkit run examples/breast_cancer.yaml
      perturbkit run exp.yaml --report report.html --store sqlite:///runs.db
      perturbkit run exp.yaml --resume
      perturbkit run exp.yaml --json --quiet > result.json
    """
    from perturbkit.experiment import load_experiment, run_experiment, write_experiment_report

    t0 = time.perf_counter()
    with _user_errors():
        exp = load_experiment(experiment)
        if allow_pickle:
            exp.model.allow_pickle = True
        if trust:
            exp.model.trust = [*exp.model.trust, *trust]
        url = exp.store_url(store)
        before = _known_runs(url)
        try:
            result = run_experiment(
                exp, store=store, resume=resume, progress=not (quiet or json_out)
            )
        except KeyboardInterrupt:
            _interrupted(exp, url, before, experiment, store)
        except PerturbkitError as exc:
            _fail(f"{exc}{_failed_run_note(exp, url, before)}")
        out = write_experiment_report(exp, result, report)
    seconds = time.perf_counter() - t0
    resumed = result.run_id in before
    sweep_part = getattr(result, "sweep", result)
    curve = getattr(result, "bounds", None)
    bounds_id = getattr(result, "bounds_run_id", None)
    metric = None if sweep_part is None else _primary_metric(sweep_part)
    if json_out:
        _print_json(
            {
                "run_id": result.run_id,
                "name": result.meta.get("name"),
                "status": result.meta.get("status"),
                "resumed": resumed,
                "store": url,
                "root_seed": result.meta.get("root_seed"),
                "task": result.meta.get("task"),
                "primary_metric": metric,
                "baseline": result.baseline,
                "report": None if out is None else str(out),
                "seconds": round(seconds, 3),
                "command": result.meta.get("command"),
                "summary": [] if sweep_part is None else _records(sweep_part.summary()),
                "bounds_run_id": bounds_id,
                "bounds": None
                if curve is None
                else _bounds_json(curve, getattr(result, "certification", None)),
            }
        )
        return
    con = _out()
    if not quiet and metric is not None and sweep_part is not None:
        con.print(
            _summary_table(sweep_part, metric, title=f"{sweep_part.meta.get('name')}: {metric}")
        )
        _bullets(con, _plain_sentences(sweep_part))
    if not quiet and curve is not None:
        _print_bounds(con, curve, getattr(result, "certification", None))
    if sweep_part is not None:
        verb = "resumed and finished" if resumed else "stored"
        con.print(
            Text.assemble(
                "Run ", (str(result.run_id), "bold"), f" {verb} in {url} ({seconds:.1f} s)."
            )
        )
    if bounds_id is not None:
        verb = "reused" if bounds_id in before else "stored"
        con.print(Text.assemble("Bounds run ", (str(bounds_id), "bold"), f" {verb} in {url}."))
    if out is not None:
        con.print(f"Report: {out}")
    if not quiet:
        con.print(f"Next: perturbkit show {result.run_id}" + _store_flag(store))


def _store_flag(store: str | None) -> str:
    return "" if store is None else f" --store {store}"


def _known_runs(url: str) -> set[str]:
    from perturbkit import Store

    with Store(url) as st:
        return set(st.list_runs()["run_id"])


def _failed_run_note(exp: Any, url: str, before: set[str]) -> str:
    """Where a sweep failed after its run was created, say what the store keeps."""
    try:
        from perturbkit import Store

        with Store(url) as st:
            runs = st.list_runs()
    except PerturbkitError:
        return ""
    new = runs[(runs["name"] == exp.run_name) & ~runs["run_id"].isin(list(before))]
    if new.empty:
        return ""
    row = new.iloc[0]
    return (
        f" (run {row['run_id']} is kept in {url} as '{row['status']}' with its "
        f"{int(row['n_cells'])} finished cells)"
    )


def _interrupted(exp: Any, url: str, before: set[str], path: Path, store: str | None) -> NoReturn:
    sys.stdout.flush()
    line = "interrupted"
    try:
        from perturbkit import Store

        with Store(url) as st:
            runs = st.list_runs()
        mine = runs[runs["name"] == exp.run_name]
        row = mine.iloc[0] if len(mine) else None
        if row is not None and (row["run_id"] not in before or row["status"] == "interrupted"):
            cmd = f"perturbkit run {path} --resume{_store_flag(store)}"
            line += (
                f": run {row['run_id']} keeps its {int(row['n_cells'])} finished cells in {url}; "
                f"continue it with: {cmd}"
            )
        else:
            line += "; nothing was stored."
    except Exception:  # reporting on Ctrl-C must not fail
        line += "."
    typer.echo(line, err=True)
    raise typer.Exit(EXIT_INTERRUPTED)


@app.command()
def runs(store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """List the stored runs, newest first.

    Examples:

      perturbkit runs
      perturbkit runs --store sqlite:///demo/perturbkit.db --json
    """
    import pandas as pd

    with _user_errors(), _open_store(store) as st:
        frame = st.list_runs()
    if json_out:
        _print_json(_records(frame))
        return
    con = _out()
    if frame.empty:
        con.print(f"No runs in {_store_url(store)} yet; try: perturbkit demo")
        return
    table = Table(title=f"Runs in {_store_url(store)}", title_justify="left")
    table.add_column("run id", no_wrap=True)
    table.add_column("name")
    table.add_column("status")
    table.add_column("created (UTC)", no_wrap=True)
    table.add_column("cells", justify="right")
    table.add_column("seed", justify="right", max_width=12, no_wrap=True, overflow="ellipsis")
    for r in frame.itertuples(index=False):
        created = "" if pd.isna(r.created_at) else r.created_at.strftime("%Y-%m-%d %H:%M")
        _row(table, r.run_id, r.name, r.status, created, r.n_cells, r.root_seed)
    con.print(table)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="Run id (or a unique prefix).")],
    store: StoreOpt = None,
    json_out: JsonOpt = False,
    metric: Annotated[
        str | None,
        typer.Option("--metric", "-m", help="Metric of the table (default: the primary one)."),
    ] = None,
) -> None:
    """Show a stored run: metadata, clean baseline and the summary table.

    A bounds run (from 'perturbkit bound' or an experiment's bounds) shows its
    curve: estimates and upper bounds per noise level, the area under the
    curve and the robustness radius (--metric picks the curve column they use).

    Examples:

      perturbkit show 3f2a9c
      perturbkit show 3f2a9c --metric flip_rate
      perturbkit show 3f2a9c --json
    """
    from perturbkit.analysis.bounds_store import is_bounds_run

    with _user_errors(), _open_store(store) as st:
        record, result = _load(st, run_id)
        if is_bounds_run(result.meta):
            _show_bounds(record, result, metric, json_out)
            return
        chosen = metric or _primary_metric(result)
        have = sorted(set(result.table["metric"]))
        if chosen is not None and chosen not in have:
            raise _metric_error(chosen, have)
    meta = result.meta
    if json_out:
        _print_json(
            {
                "run": {k: v for k, v in record.items() if k not in ("meta", "config")},
                "config": record.get("config"),
                "meta": meta,
                "baseline": result.baseline,
                "primary_metric": chosen,
                "summary": _records(result.summary()),
            }
        )
        return
    con = _out()
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    env = meta.get("environment") or {}
    model = meta.get("model") or {}
    rows = [
        ("run", f"{record['run_id']}  {record['name']}"),
        ("status", f"{record['status']} ({record.get('n_cells', 0)} cells)"),
        ("created", f"{record.get('created_at')}  finished {record.get('finished_at') or '–'}"),
        (
            "task",
            f"{meta.get('task')}, {meta.get('n_rows')} rows x {meta.get('n_features')} "
            f"features, labels: {'yes' if meta.get('has_labels') else 'no'}",
        ),
        ("model", f"{model.get('description', '–')}  [{model.get('fingerprint', '')[:12]}]"),
        ("data", str(meta.get("data_fingerprint", "–"))[:12]),
        ("seed", f"{record.get('root_seed')} ({'given' if meta.get('seed_given') else 'drawn'})"),
        ("versions", ", ".join(f"{k} {v}" for k, v in env.items() if k != "platform")),
        ("baseline", ", ".join(f"{k} {_fmt(v)}" for k, v in result.baseline.items()) or "–"),
    ]
    if meta.get("command"):
        rows.append(("command", str(meta["command"])))
    if meta.get("bounds_run_id"):
        rows.append(("bounds run", f"{meta['bounds_run_id']} (perturbkit show it for the curve)"))
    for k, v in rows:
        _row(info, k, v)
    con.print(info)
    perts = meta.get("perturbations") or []
    if perts:
        pt = Table(title="Perturbations", title_justify="left")
        pt.add_column("perturbation", style="bold")
        pt.add_column("id")
        pt.add_column("unit of magnitude")
        for p in perts:
            _row(pt, p.get("label"), p.get("id"), p.get("unit"))
        con.print(pt)
    if chosen is not None and not result.table.empty:
        con.print(_summary_table(result, chosen, title=f"{record['name']}: {chosen}"))


def _metric_error(metric: str, have: Sequence[str]) -> PerturbkitError:
    import difflib

    from perturbkit.exceptions import ParameterError

    close = difflib.get_close_matches(metric, list(have), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ParameterError(
        f"The run has no metric '{metric}'.{hint} Its metrics: {', '.join(have)}."
    )


@app.command()
def report(
    run_ids: Annotated[
        list[str], typer.Argument(metavar="RUN...", help="One or more run ids (or prefixes).")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The .html file to write.", show_default=False)
    ],
    store: StoreOpt = None,
    title: Annotated[str | None, typer.Option("--title", help="Page title.")] = None,
) -> None:
    """Write one self-contained HTML report (opens offline) for stored runs.

    Examples:

      perturbkit report 3f2a9c -o report.html
      perturbkit report 3f2a9c 8b1d07 -o compare.html --store sqlite:///runs.db
    """
    from perturbkit.report import write_report

    with _user_errors():
        with _open_store(store) as st:
            results = [_load(st, r)[1] for r in run_ids]
        commands = [r.meta.get("command") for r in results]
        command = commands[0] if len(results) == 1 else None
        path = write_report(
            results if len(results) > 1 else results[0], output, title=title, command=command
        )
    _out().print(f"Report: {path}")


# -- bounds ---------------------------------------------------------------------------------
_CURVE_COLUMNS = (
    ("mse", "MSE"),
    ("mse_upper", "bound"),
    ("mse_upper_minkowski", "Minkowski"),
    ("mse_upper_normalized", "bound/Var(y)"),
    ("deviation", "dev."),
    ("deviation_upper", "dev. bound"),
    ("deviation_upper_normalized", "bound/norm."),
    ("error_rate", "errors"),
    ("error_rate_upper", "bound"),
    ("flip_rate", "flips"),
    ("flip_rate_upper", "bound"),
)
_TOLERANCE = 1.0


def _radius_text(r: float, curve: Any) -> str:
    if not math.isfinite(r):
        return f"none (exceeded at ε = {float(curve.levels.min()):g})"
    if r >= float(curve.levels.max()):
        return f"≥ {r:g} (the whole grid)"
    return f"{r:g}"


def _curve_column(curve: Any, column: str | None) -> str:
    """``column`` checked against the curve's numeric columns (default: the normalised bound)."""
    from perturbkit.exceptions import ParameterError

    if column is None:
        return "mse_upper_normalized" if curve.has_labels else "deviation_upper_normalized"
    have = [c for c in curve.table.columns if c not in ("level", "tighter")]
    if column not in have:
        import difflib

        close = difflib.get_close_matches(column, have, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ParameterError(
            f"The curve has no column '{column}'.{hint} Its columns: {', '.join(have)}."
        )
    return column


def _bounds_json(curve: Any, certification: Any = None, column: str | None = None) -> dict:
    col = _curve_column(curve, column)
    return {
        "label": curve.label,
        "run_id": curve.meta.get("run_id"),
        "meta": curve.meta,
        "column": col,
        "auc": curve.auc(col, normalize=True),
        "tolerance": _TOLERANCE,
        "radius": curve.radius(_TOLERANCE, col),
        "curve": _records(curve.to_pandas()),
        "certification": None
        if certification is None or not len(certification)
        else _records(certification),
    }


def _curve_table(curve: Any) -> Table:
    m = curve.meta
    t = curve.to_pandas()
    conf = m.get("confidence")
    how = (
        f"{100 * float(conf):g}% {m.get('target')} bounds ({m.get('method')}, "
        f"{m.get('sampler')}, {m.get('n_draws')} draws), {m.get('noise')} noise "
        + ("relative to feature std" if m.get("relative", True) else "in input units")
    )
    title = f"{curve.label or m.get('name') or 'robustness curve'}: {how}"
    table = Table(title=title, title_justify="left")
    table.add_column("ε", justify="right")
    cols = [(c, h) for c, h in _CURVE_COLUMNS if c in t.columns]
    if "mse" in t.columns:
        cols = [(c, h) for c, h in cols if c != "deviation_upper_normalized"]
    if m.get("task") == "classification":  # the Brier score and the rates; fits 80 columns
        drop = ("mse_upper_minkowski", "deviation", "deviation_upper", "deviation_upper_normalized")
        cols = [(c, "Brier" if c == "mse" else h) for c, h in cols if c not in drop]
    for _, h in cols:
        table.add_column(h, justify="right")
    for _, r in t.iterrows():
        _row(table, f"{float(r['level']):g}", *(_fmt(r[c]) for c, _ in cols))
    return table


def _certification_table(cert: Any) -> Table:
    first = cert.iloc[0]
    title = (
        f"Certified robustness (randomized smoothing; {int(first['n_points']):,} rows, "
        f"n0 = {int(first['n0']):,}, n = {int(first['n']):,}, α = {float(first['alpha']):g})"
    )
    acc = [c for c in cert.columns if str(c).startswith("certified_accuracy@")]
    caption = (
        "r = …: certified accuracy at that L2 radius (abstentions count as wrong)" if acc else None
    )
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for h in ("σ", "abstain", "median r", "mean r"):
        table.add_column(h, justify="right")
    for c in acc:
        k = c.removeprefix("certified_accuracy@").removesuffix("sigma")
        table.add_column("r = 0" if float(k) == 0 else f"{k}σ", justify="right")
    for _, r in cert.iterrows():
        _row(
            table,
            _fmt(r["sigma"]),
            f"{100 * float(r['abstain_rate']):.1f}%",
            _fmt(r["median_radius"], 3),
            _fmt(r["mean_radius"], 3),
            *(f"{100 * float(r[c]):.1f}%" for c in acc),
        )
    return table


def _print_bounds(
    con: Console, curve: Any, certification: Any = None, column: str | None = None
) -> None:
    col = _curve_column(curve, column)
    con.print(_curve_table(curve))
    con.print(
        f"AUC of {col} (mean over the grid): {_fmt(curve.auc(col, normalize=True))}; "
        f"robustness radius ({col} <= {_TOLERANCE:g}): "
        f"{_radius_text(curve.radius(_TOLERANCE, col), curve)}"
    )
    if certification is not None and len(certification):
        con.print(_certification_table(certification))


def _show_bounds(record: dict, result: Any, metric: str | None, json_out: bool) -> None:
    from perturbkit.analysis.bounds_store import certification_from_table, curve_from_table

    curve = curve_from_table(result.table, result.meta)
    cert = certification_from_table(result.table, result.meta)
    col = _curve_column(curve, metric)
    meta = result.meta
    if json_out:
        _print_json(
            {
                "run": {k: v for k, v in record.items() if k not in ("meta", "config")},
                "config": record.get("config"),
                "kind": "bounds",
                **_bounds_json(curve, cert, col),
            }
        )
        return
    con = _out()
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    labels = "yes" if curve.has_labels else "no"
    rows = [
        ("run", f"{record['run_id']}  {record['name']}  (robustness curve)"),
        ("status", f"{record['status']} ({record.get('n_cells', 0)} cells)"),
        ("created", f"{record.get('created_at')}  finished {record.get('finished_at') or '–'}"),
        (
            "task",
            f"{meta.get('task')}, {meta.get('n_points')} rows x {meta.get('n_features')} "
            f"features, labels: {labels}",
        ),
        ("model", str(meta.get("model", "–"))),
        ("seed", str(record.get("root_seed"))),
        ("measure", str(meta.get("measure", "–"))),
    ]
    if meta.get("sweep_run_id"):
        rows.append(("sweep run", str(meta["sweep_run_id"])))
    if meta.get("command"):
        rows.append(("command", str(meta["command"])))
    for k, v in rows:
        _row(info, k, v)
    con.print(info)
    _print_bounds(con, curve, cert, col)


def _levels(text: str, flag: str) -> list[float]:
    values = _floats([text], flag)
    if not values:
        _fail(f"{flag} must list at least one number, e.g. 0,0.1,0.5. Got {text!r} instead.")
    bad = [v for v in values if not (math.isfinite(v) and v >= 0)]
    if bad and flag == "--levels":
        _fail(f"{flag} must be finite numbers >= 0. Got {bad[0]:g} instead.")
    if bad:
        _fail(f"{flag} must be finite numbers > 0. Got {bad[0]:g} instead.")
    if flag == "--sigma" and 0 in values:
        _fail(f"{flag} must be finite numbers > 0. Got 0 instead.")
    dup = sorted({v for v in values if values.count(v) > 1})
    if dup:
        _fail(f"{flag} must not repeat a value. Got {dup[0]:g} twice.")
    return values


def _choice(value: str, allowed: Sequence[str], flag: str) -> str:
    if value not in allowed:
        import difflib

        close = difflib.get_close_matches(value, list(allowed), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        _fail(f"{flag} must be one of {', '.join(allowed)}. Got {value!r} instead.{hint}")
    return value


def _model_and_data(
    model: str, data: str, target_column: str | None, task: str | None, allow_pickle: bool
) -> tuple[Any, Any, Any, Any]:
    from perturbkit.data import load_data
    from perturbkit.models import load_model

    if task is not None:
        _choice(task, ("classification", "regression"), "--task")
    m = load_model(model, task=task, allow_pickle=allow_pickle)  # type: ignore[arg-type]
    X, y, info = load_data(data, target=target_column)
    return m, X, y, info


def _figure_path(path: Path | None) -> Path | None:
    if path is not None and path.suffix.lower() not in (".png", ".svg", ".pdf"):
        _fail(f"--figure must end in .png, .svg or .pdf. Got '{path}' instead.")
    return path


def _default_label(model: str, info: Any) -> str:
    name = model.rpartition(":")[2] if ":" in model and not Path(model).exists() else model
    source = str(getattr(info, "source", "data")).removeprefix("sklearn:")
    return f"{Path(name).stem or name} on {Path(source).name}"


@app.command()
def bound(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="A model file (.onnx, .skops, .pt; .pkl/.joblib with --allow-pickle) or an "
            "entry point 'file.py:name' / 'module:name' naming a fitted model.",
            show_default=False,
        ),
    ],
    data: Annotated[
        str,
        typer.Argument(
            metavar="DATA",
            help="A bundled data set (breast_cancer, digits, diabetes, iris, wine) or a "
            ".csv/.parquet/.npy/.npz file.",
            show_default=False,
        ),
    ],
    levels: Annotated[
        str,
        typer.Option(
            "--levels",
            "-l",
            help="Noise levels ε, comma-separated (0 is the clean model), e.g. 0,0.05,0.1.",
            show_default=False,
        ),
    ],
    target_column: Annotated[
        str | None,
        typer.Option(
            "--target-column",
            help="The label column of a CSV/Parquet file (or npz key); without labels only "
            "the label-free output deviation is bounded.",
            show_default=False,
        ),
    ] = None,
    noise: Annotated[
        str, typer.Option("--noise", help="Noise shape: gaussian, uniform or laplace.")
    ] = "gaussian",
    absolute: Annotated[
        bool,
        typer.Option(
            "--absolute", help="ε in input units (default: in each feature's standard deviation)."
        ),
    ] = False,
    confidence: Annotated[
        float, typer.Option("--confidence", help="Confidence of each bound, in (0, 1).")
    ] = 0.95,
    draws: Annotated[int, typer.Option("--draws", help="Noise draws per row.")] = 64,
    method: Annotated[
        str,
        typer.Option("--method", help="Confidence method: t, bootstrap, bernstein or hoeffding."),
    ] = "t",
    sampler: Annotated[
        str, typer.Option("--sampler", help="Noise sampler: qmc, mc, antithetic or orthogonal.")
    ] = "qmc",
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            help="population: bound the error on the distribution the rows came from; "
            "dataset: on these rows.",
        ),
    ] = "population",
    value_range: Annotated[
        float | None,
        typer.Option(
            "--value-range",
            help="B: every per-point squared error lies in [0, B] (bernstein, hoeffding).",
            show_default=False,
        ),
    ] = None,
    simultaneous: Annotated[
        bool,
        typer.Option("--simultaneous", help="All levels' bounds hold at once (Bonferroni)."),
    ] = False,
    seed: SeedOpt = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task", help="classification or regression (default: inferred).", show_default=False
        ),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option("--label", help="The curve's name in tables and figures.", show_default=False),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            "-s",
            help="Also store the curve as a run in this store (URL or .db path).",
            show_default=False,
        ),
    ] = None,
    figure: Annotated[
        Path | None,
        typer.Option(
            "--figure", help="Write the curve's figure (.png, .svg or .pdf).", show_default=False
        ),
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option("--csv", help="Write the curve's table as CSV.", show_default=False),
    ] = None,
    json_out: JsonOpt = False,
    allow_pickle: AllowPickleOpt = False,
) -> None:
    """Robustness curve: the model's error under random input noise, with upper bounds.

    For each noise level ε, a high-probability upper bound on the MSE (with
    labels) and on the mean squared output deviation (always), from the
    model's outputs only. Prints the curve, its area and the robustness
    radius (the largest ε whose bound on MSE / Var(y) stays <= 1).

    Examples:

      perturbkit bound model.skops diabetes --levels 0,0.05,0.1,0.5 --seed 0

      perturbkit bound model.onnx data.csv --target-column y --levels 0,0.1 --figure curve.svg

      perturbkit bound models.py:model diabetes --levels 0,0.1 --store runs.db --json
    """
    from perturbkit.analysis import bounds as _b

    lv = _levels(levels, "--levels")
    _choice(noise, _b.NOISES, "--noise")
    _choice(method, _b.CONFIDENCE_METHODS, "--method")
    _choice(sampler, _b.SAMPLERS, "--sampler")
    _choice(scope, _b.TARGETS, "--scope")
    if not (0 < confidence < 1):
        _fail(f"--confidence must be in (0, 1), e.g. 0.95. Got {confidence:g} instead.")
    if draws < 1:
        _fail(f"--draws must be an integer >= 1. Got {draws} instead.")
    if value_range is not None and not (math.isfinite(value_range) and value_range > 0):
        _fail(f"--value-range must be a finite number > 0. Got {value_range:g} instead.")
    if seed is not None and seed < 0:
        _fail(f"--seed must be an integer >= 0. Got {seed} instead.")
    _figure_path(figure)
    t0 = time.perf_counter()
    run_id = None
    with _user_errors():
        if store is not None:  # an unreachable store fails before any work
            _open_store(store).close()
        m, X, y, info = _model_and_data(model, data, target_column, task, allow_pickle)
        curve = _b.robustness_curve(
            m,
            X,
            y,
            levels=lv,
            noise=noise,
            relative=not absolute,
            confidence=confidence,
            n_draws=draws,
            method=method,
            sampler=sampler,
            target=scope,
            value_range=value_range,
            simultaneous=simultaneous,
            seed=seed,
            label=label or _default_label(model, info),
        )
        seconds = time.perf_counter() - t0
        command = _bound_command(
            model,
            data,
            target_column,
            lv,
            noise,
            absolute,
            confidence,
            draws,
            method,
            sampler,
            scope,
            value_range,
            simultaneous,
            int(curve.meta["root_seed"]),
            task,
            allow_pickle,
        )
        if store is not None:
            run_id = _store_curve(store, curve, m, X, y, info, command, seconds)
            curve.meta.update(run_id=run_id)
        if figure is not None:
            figure.parent.mkdir(parents=True, exist_ok=True)
            _b.plot_robustness_curves([curve]).savefig(figure)
        if csv is not None:
            csv.parent.mkdir(parents=True, exist_ok=True)
            curve.to_pandas().to_csv(csv, index=False)
    if json_out:
        _print_json(
            {
                **_bounds_json(curve),
                "run_id": run_id,
                "store": None if store is None else _store_url(store),
                "data": info.to_dict(),
                "figure": None if figure is None else str(figure),
                "csv": None if csv is None else str(csv),
                "seconds": round(seconds, 3),
                "command": command,
            }
        )
        return
    con = _out()
    _print_bounds(con, curve)
    con.print(f"Seed {curve.meta['root_seed']} · {info.summary()} · {seconds:.1f} s")
    if figure is not None:
        con.print(f"Figure: {figure}")
    if csv is not None:
        con.print(f"CSV: {csv}")
    if run_id is not None:
        con.print(Text.assemble("Run ", (run_id, "bold"), f" stored in {_store_url(store)}."))
        con.print(f"Next: perturbkit show {run_id} --store {store}")


def _bound_command(
    model: str,
    data: str,
    target_column: str | None,
    levels: Sequence[float],
    noise: str,
    absolute: bool,
    confidence: float,
    draws: int,
    method: str,
    sampler: str,
    scope: str,
    value_range: float | None,
    simultaneous: bool,
    seed: int,
    task: str | None,
    allow_pickle: bool,
) -> str:
    """The command that computes the same curve again (with the seed actually used)."""
    import shlex

    parts = ["perturbkit", "bound", model, data]
    if target_column is not None:
        parts += ["--target-column", target_column]
    parts += ["--levels", ",".join(f"{v:g}" for v in levels)]
    if noise != "gaussian":
        parts += ["--noise", noise]
    if absolute:
        parts.append("--absolute")
    parts += ["--confidence", f"{confidence:g}", "--draws", str(draws)]
    parts += ["--method", method, "--sampler", sampler, "--scope", scope]
    if value_range is not None:
        parts += ["--value-range", f"{value_range!r}"]
    if simultaneous:
        parts.append("--simultaneous")
    if task is not None:
        parts += ["--task", task]
    if allow_pickle:
        parts.append("--allow-pickle")
    parts += ["--seed", str(seed)]
    return shlex.join(parts)


def _store_curve(
    store: str, curve: Any, model: Any, X: Any, y: Any, info: Any, command: str, seconds: float
) -> str:
    import numpy as np

    from perturbkit._rng import canonical_json
    from perturbkit._validation import as_numeric_2d
    from perturbkit.analysis.bounds_store import save_curve
    from perturbkit.engine.sweep import data_fingerprint

    Xa = as_numeric_2d(X)
    dfp = data_fingerprint(Xa, None if y is None else np.asarray(y))
    settings = canonical_json({k: curve.meta.get(k) for k in sorted(curve.meta) if k != "model"})
    import hashlib

    fp = hashlib.blake2b(
        "\x1f".join([model.fingerprint(), dfp, settings]).encode(), digest_size=16
    ).hexdigest()
    with _open_store(store) as st:
        return save_curve(
            curve,
            st,
            name=f"{curve.label} bounds" if curve.label else "bounds",
            meta={
                "command": command,
                "data": info.to_dict(),
                "model_fingerprint": model.fingerprint(),
                "data_fingerprint": dfp,
                "timings": {"total_seconds": seconds},
            },
            fingerprint=fp,
            seconds=seconds,
        )


@app.command("certify")
def certify_command(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="A classifier: a model file or an entry point naming a fitted model.",
            show_default=False,
        ),
    ],
    data: Annotated[
        str,
        typer.Argument(
            metavar="DATA",
            help="A bundled data set or a .csv/.parquet/.npy/.npz file, in the units the "
            "radius is stated in.",
            show_default=False,
        ),
    ],
    sigma: Annotated[
        str,
        typer.Option(
            "--sigma",
            help="Smoothing noise standard deviation(s) σ > 0, in input units; comma-separated "
            "for several.",
            show_default=False,
        ),
    ],
    n0: Annotated[
        int, typer.Option("--n0", help="Noisy copies per row to choose the class.")
    ] = 100,
    n: Annotated[int, typer.Option("--n", help="Noisy copies per row to certify it.")] = 10_000,
    alpha: Annotated[
        float, typer.Option("--alpha", help="Per-row failure probability, in (0, 1).")
    ] = 0.001,
    target_column: Annotated[
        str | None,
        typer.Option(
            "--target-column",
            help="The label column of a CSV/Parquet file, for certified accuracy.",
            show_default=False,
        ),
    ] = None,
    seed: SeedOpt = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="classification if the model's outputs are probabilities.",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOpt = False,
    allow_pickle: AllowPickleOpt = False,
) -> None:
    """Certified L2 robustness of a classifier by randomized smoothing (Cohen et al. 2019).

    Each row is certified with radius σ·Φ⁻¹(p_A) when the lower confidence
    bound p_A of its top class under Gaussian noise exceeds 1/2, else it
    abstains. Prints, per σ, the abstain rate, the radii and (with labels) the
    certified accuracy at radii 0, 0.25σ, 0.5σ, σ and 2σ. The radius is in the
    input's units: standardise the features first.

    Examples:

      perturbkit certify model.skops breast_cancer --sigma 0.25 --n 10000 --seed 0

      perturbkit certify model.onnx digits.npz --sigma 0.12,0.25,0.5 --json
    """
    from perturbkit.analysis.bounds_store import certification_summary
    from perturbkit.analysis.certify import certify

    sigmas = _levels(sigma, "--sigma")
    if n0 < 1 or n < 1:
        _fail(f"--n0 and --n must be integers >= 1. Got --n0 {n0} and --n {n} instead.")
    if n0 > n:
        _fail(f"--n0 must be at most --n ({n}). Got {n0} instead.")
    if not (0 < alpha < 1):
        _fail(f"--alpha must be in (0, 1), e.g. 0.001. Got {alpha:g} instead.")
    if seed is not None and seed < 0:
        _fail(f"--seed must be an integer >= 0. Got {seed} instead.")
    from perturbkit._rng import root_entropy
    from perturbkit._validation import as_numeric_2d

    t0 = time.perf_counter()
    with _user_errors():
        m, X, y, info = _model_and_data(model, data, target_column, task, allow_pickle)
        Xa = as_numeric_2d(X)
        root = root_entropy(seed)
        results = [certify(m, Xa, sigma=s, n0=n0, n=n, alpha=alpha, seed=root) for s in sigmas]
        summary = certification_summary(results, y)
    seconds = time.perf_counter() - t0
    if json_out:
        _print_json(
            {
                "root_seed": root,
                "data": info.to_dict(),
                "seconds": round(seconds, 3),
                "summary": _records(summary),
                "results": [
                    {"sigma": r.meta["sigma"], "meta": r.meta, "rows": _records(r.to_pandas())}
                    for r in results
                ],
            }
        )
        return
    con = _out()
    con.print(_certification_table(summary))
    if y is None:
        con.print("No labels: certified accuracy needs --target-column (or a bundled data set).")
    con.print(f"Seed {root} · {info.summary()} · {seconds:.1f} s")


@app.command()
def perturbations(
    json_out: JsonOpt = False,
    modality: Annotated[
        str | None, typer.Option("--modality", help="Only this modality (e.g. tabular).")
    ] = None,
) -> None:
    """List the registered perturbations with version, modality and unit of magnitude.

    Examples:

      perturbkit perturbations
      perturbkit perturbations --json
    """
    from perturbkit import perturbations as registry

    with _user_errors():
        items = [registry.describe(n) for n in registry.list(modality)]
    if json_out:
        _print_json(items)
        return
    table = Table(title="Perturbations", title_justify="left", show_lines=True)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("version", justify="right")
    table.add_column("modality")
    table.add_column("one unit of magnitude is")
    table.add_column("parameters (defaults)")
    for d in items:
        mx = "" if d["max_magnitude"] is None else f" (max {d['max_magnitude']:g})"
        params = ", ".join(f"{k}={v!r}" for k, v in d["params"].items())
        _row(table, d["name"], d["version"], d["modality"], f"{d['unit']}{mx}", params)
    _out().print(table)


@app.command()
def demo(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for perturbkit.db and report.html."),
    ] = Path("."),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Train two small real models, sweep the tabular perturbations, write the report.

    A logistic regression on scikit-learn's breast cancer data and a gradient
    boosting regressor on its diabetes data; runs go to OUT/perturbkit.db and
    one report with both to OUT/report.html. Runs again in a moment: the
    stored runs are resumed, not recomputed.

    Examples:

      perturbkit demo
      perturbkit demo --out demo/
    """
    from perturbkit.demo import run_demo

    with _user_errors():
        res = run_demo(out, progress=not (quiet or json_out))
    if json_out:
        _print_json(res.to_dict())
        return
    con = _out()
    for r in res.results:
        metric = _primary_metric(r)
        base = r.baseline.get(metric) if metric else None
        con.print(
            Text.assemble(
                (str(r.meta.get("name")), "bold"), f": run {r.run_id}, clean {metric} {_fmt(base)}"
            )
        )
        sentences = _plain_sentences(r)
        picked = sentences[:1] + [s for s in sentences if s.startswith("The largest damage")]
        _bullets(con, picked, indent=2)
    con.print(f"Store:  {res.store_url}")
    con.print(f"Report: {res.report_path}  ({res.seconds:.1f} s)")
    con.print(f"Next:   perturbkit runs --store {res.db_path}")


# -- calc ---------------------------------------------------------------------------------
def _floats(values: Sequence[str], what: str) -> list[float]:
    out = []
    for v in values:
        for part in str(v).replace(",", " ").split():
            try:
                out.append(float(part))
            except ValueError:
                _fail(f"{what} must be numbers. Got {part!r} instead.")
    return out


def _calc_output(result: Any, json_out: bool) -> None:
    if json_out:
        _print_json(result.to_dict())
        return
    con = _out()
    con.print(_text(result.summary()))
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for k, v in result.to_dict().items():
        if isinstance(v, list):
            shown = "[" + ", ".join(_fmt(x, 6) for x in v) + "]"
        elif isinstance(v, float):
            shown = _fmt(v, 6)
        else:
            shown = "–" if v is None else str(v)
        _row(table, k, shown)
    con.print(table)
    warning = getattr(result, "warning", None)
    if warning:
        con.print(Text.assemble(("warning: ", "bold yellow"), str(warning)))


@calc_app.command("drop")
def calc_drop(
    p: Annotated[float, typer.Option("--p", help="Clean probability of the predicted class.")],
    epsilon: Annotated[float, typer.Option("--epsilon", "-e", help="Perturbation magnitude ε.")],
    sensitivity: Annotated[
        float, typer.Option("--sensitivity", "-s", help="Probability lost per unit of ε.")
    ],
    threshold: Annotated[float, typer.Option("--threshold", help="Decision threshold.")] = 0.5,
    json_out: JsonOpt = False,
) -> None:
    """Perturbed prediction p' = clip(p − ε·s, 0, 1), its change, and a threshold warning.

    Examples:

      perturbkit calc drop --p 0.92 --epsilon 0.1 --sensitivity 2
      perturbkit calc drop --p 0.6 --epsilon 0.1 --sensitivity 2 --threshold 0.5 --json
    """
    from perturbkit import calc

    with _user_errors():
        result = calc.drop(p, epsilon, sensitivity, threshold=threshold)
    _calc_output(result, json_out)


@calc_app.command("taylor")
def calc_taylor(
    expression: Annotated[str, typer.Argument(help="f as a formula, e.g. 'x**2' or 'sin(x)'.")],
    x: Annotated[float, typer.Option("--x", help="The point x.")],
    epsilon: Annotated[float, typer.Option("--epsilon", "-e", help="The step ε ≥ 0.")],
    variable: Annotated[str, typer.Option("--variable", help="The formula's variable.")] = "x",
    json_out: JsonOpt = False,
) -> None:
    """First-order estimate f(x+ε) ≈ f(x) + ε·f'(x), beside the true value and the error.

    The formula is parsed safely (numbers, + - * / ** ^, sin cos tan exp log
    sqrt tanh abs, pi, E); it is never evaluated as Python.

    Examples:

      perturbkit calc taylor 'x**2' --x 2 --epsilon 0.01
      perturbkit calc taylor 'exp(t)' --variable t --x 0 --epsilon 0.1 --json
    """
    from perturbkit import calc

    with _user_errors():
        result = calc.taylor(expression, x, epsilon, variable=variable)
    _calc_output(result, json_out)


@calc_app.command("gradient", context_settings=_NUMBERS)
def calc_gradient(
    expression: Annotated[str, typer.Argument(help="f as a formula, e.g. 'x**2 + x*y'.")],
    x: Annotated[
        list[str], typer.Option("--x", help="The point: one number per variable, e.g. 1,2.")
    ],
    delta: Annotated[
        list[str], typer.Option("--delta", "-d", help="The perturbation δ, e.g. 0.1,0.")
    ],
    variables: Annotated[
        str | None,
        typer.Option("--variables", help="Variable order, e.g. x,y (default: as they appear)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """How far the gradient moves: ∇f(x+δ) − ∇f(x), per variable and in L2.

    Examples:

      perturbkit calc gradient 'x**2 + y**2' --x 1,2 --delta 0.1,0
      perturbkit calc gradient 'sin(x)' --x 0 --delta 0.01 --json
    """
    from perturbkit import calc

    names = None if variables is None else [v for v in variables.replace(",", " ").split() if v]
    with _user_errors():
        result = calc.gradient_change(
            expression, _floats(x, "--x"), _floats(delta, "--delta"), variables=names
        )
    _calc_output(result, json_out)


@calc_app.command("norm", context_settings=_NUMBERS)
def calc_norm(
    vector: Annotated[list[str], typer.Argument(help="The vector's entries.")],
    json_out: JsonOpt = False,
) -> None:
    """L1, L2 and L∞ norms of a vector (negative entries are fine).

    Examples:

      perturbkit calc norm 0.01 -0.02 0.03
      perturbkit calc norm 0.01,-0.02,0.03 --json
    """
    from perturbkit import calc

    values = _floats(vector, "The vector's entries")
    with _user_errors():
        result = calc.norm(values)
    _calc_output(result, json_out)


@calc_app.command("fgsm", context_settings=_NUMBERS)
def calc_fgsm(
    gradient: Annotated[list[str], typer.Argument(help="The loss gradient (only signs matter).")],
    epsilon: Annotated[float, typer.Option("--epsilon", "-e", help="The step ε ≥ 0.")],
    json_out: JsonOpt = False,
) -> None:
    """The fast gradient sign step δ = ε·sign(g) and its norms.

    Examples:

      perturbkit calc fgsm --epsilon 0.05 1 -1 1
      perturbkit calc fgsm --epsilon 0.05 0.3,-2,0.0001 --json
    """
    from perturbkit import calc

    values = _floats(gradient, "The gradient's entries")
    with _user_errors():
        result = calc.fgsm(epsilon, values)
    _calc_output(result, json_out)


@calc_app.command("from-run")
def calc_from_run(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="Run id (or a unique prefix).")],
    perturbation: Annotated[str, typer.Argument(help="Perturbation label or name in the run.")],
    epsilon: Annotated[float, typer.Option("--epsilon", "-e", help="The magnitude ε.")],
    metric: Annotated[
        str | None, typer.Option("--metric", "-m", help="Metric (default: the primary one).")
    ] = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A stored run's measured metric at ε beside the first-order estimate m(0) − ε·s.

    The sensitivity s is the slope of the run's first grid segment.

    Examples:

      perturbkit calc from-run 3f2a9c gaussian_noise --epsilon 0.3
      perturbkit calc from-run 3f2a9c gaussian_noise --epsilon 0.3 --metric flip_rate --json
    """
    from perturbkit import calc

    with _user_errors():
        with _open_store(store) as st:
            _, result = _load(st, run_id)
        chosen = metric or _primary_metric(result) or "accuracy"
        comparison = calc.from_run(result, perturbation, epsilon, metric=chosen)
    _calc_output(comparison, json_out)


# -- entry point --------------------------------------------------------------------------
def _click_exception() -> type[Exception]:
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # pragma: no cover - typer versions that use click itself
        from click.exceptions import ClickException  # type: ignore[no-redef]
    return ClickException


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``perturbkit`` command; returns (and, as a script, exits with) the exit code.

    User errors (bad input, bad usage) are one line on stderr, ``error: ...``,
    with exit code 2 and no traceback; Ctrl-C exits with 130.
    """
    click_exception = _click_exception()
    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = command.main(args=args, prog_name="perturbkit", standalone_mode=False)
    except click_exception as exc:  # usage errors: unknown option, missing argument, …
        if not exc.format_message().strip():  # no arguments: the help was printed
            return EXIT_BAD_INPUT
        ctx = getattr(exc, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo(f"error: {_one_line(exc.format_message())}{where}", err=True)
        code = getattr(exc, "exit_code", EXIT_BAD_INPUT)
        return EXIT_BAD_INPUT if code in (1, 2) else int(code)
    except PerturbkitError as exc:  # pragma: no cover - commands catch their own
        typer.echo(f"error: {_one_line(str(exc))}", err=True)
        return EXIT_BAD_INPUT
    except typer.Abort:
        typer.echo("interrupted.", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        typer.echo("interrupted.", err=True)
        return EXIT_INTERRUPTED
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


def _script() -> None:  # pragma: no cover - ``python -m perturbkit.cli``
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    _script()
