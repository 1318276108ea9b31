"""Examples before and after: each perturbation of a run re-applied to a few rows of data.

A sweep stores metrics, not perturbed inputs. :func:`perturbation_examples`
rebuilds each perturbation of a run from ``result.meta["perturbations"]``,
fits it on the data (as the sweep did: statistics from ``X``, or from
``reference``) and applies it to a few sample rows at a few of the run's own
magnitudes, seeded. :func:`perturbkit.report.write_report` shows them in an
"Examples before and after" section of the run::

    from perturbkit.report import perturbation_examples, write_report

    examples = perturbation_examples(result, X, n_rows=3)
    write_report(result, "report.html", examples=examples)

Each modality has its view: image thumbnails (the clean image, then each
magnitude), text with the changed characters marked (inserted, deleted),
audio waveforms and spectrograms, and tabular rows with the changed cells
highlighted. The examples are illustrations drawn from their own seed, not the
sweep's exact draws; within one perturbation every magnitude uses the same
draws, so the examples show one corruption growing. Images are embedded as
small PNG data URIs and capped per run, so the report stays small.
"""

from __future__ import annotations

import base64
import difflib
import html
import io
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perturbkit.exceptions import ParameterError
from perturbkit.report._common import check_result, fmt_magnitude

__all__ = ["Example", "examples_html", "perturbation_examples"]

#: What the report shows at most: sample rows per perturbation, by modality.
MAX_ROWS = {"image": 3, "text": 3, "audio": 1, "tabular": 3}
#: Magnitudes per perturbation (besides the clean data) the report shows at most.
MAX_MAGNITUDES = 5
#: Longest side of an image thumbnail, in pixels: larger images are downscaled, smaller
#: ones shown enlarged (pixelated, at a whole multiple of their size).
THUMB_PX = 96
#: Embedded PNG data per run, in bytes of base64; perturbations past it are listed, not shown.
MAX_EMBED_BYTES = 1_500_000
#: Characters of a text example shown before it is cut with "…".
TEXT_CHARS = 320
#: Features per tabular example (those the perturbation changed most).
TABLE_COLUMNS = 5
_MODALITIES = ("image", "text", "audio", "tabular")


@dataclass(frozen=True)
class Example:
    """One perturbation of a run applied to a few sample rows at a few magnitudes.

    Attributes:
        label: the perturbation's label in the run (as in the report's tables).
        perturbation: its id, ``name@version``.
        modality: ``"image"``, ``"text"``, ``"audio"`` or ``"tabular"``.
        unit: what magnitude 1.0 means.
        magnitudes: the magnitudes shown, ascending, all > 0.
        rows: the positions in ``X`` of the sample rows.
        before: the clean sample rows (an array, or a list of strings for text).
        after: the perturbed rows, one entry per magnitude, shaped as ``before``.
        run_id: the run the perturbation belongs to.
        seed: the seed the draws came from.
        feature_names: tabular column names.
        sample_rate: audio samples per second.
        layout: image layout, ``"NCHW"`` or ``"NHWC"``.
    """

    label: str
    perturbation: str
    modality: str
    unit: str
    magnitudes: tuple[float, ...]
    rows: tuple[int, ...]
    before: Any
    after: tuple[Any, ...]
    run_id: str | None = None
    seed: int = 0
    feature_names: tuple[str, ...] | None = None
    sample_rate: int | None = None
    layout: str = "NCHW"


# -- making examples ---------------------------------------------------------------------
def _count(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ParameterError(
            f"The '{name}' parameter of {owner} must be an int >= 1. Got {value!r} instead."
        )
    return int(value)


def _n_rows(X: Any) -> int:
    if hasattr(X, "shape") and len(getattr(X, "shape", ())) >= 1:
        return int(X.shape[0])
    try:
        return len(X)
    except TypeError:
        raise ParameterError(
            "The 'X' parameter of perturbation_examples must be the run's data (an array, a "
            f"DataFrame, a tensor or a list of strings). Got {type(X).__name__} instead."
        ) from None


def _pick_rows(n: int, rows: Any, n_rows: int, seed: int) -> np.ndarray:
    if n == 0:
        raise ParameterError("The 'X' parameter of perturbation_examples has no rows.")
    if rows is not None:
        idx = np.asarray(rows)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ParameterError(
                "The 'rows' parameter of perturbation_examples must be a non-empty list of row "
                f"positions. Got {rows!r} instead."
            )
        bad = idx[(idx < 0) | (idx >= n)]
        if bad.size:
            raise ParameterError(
                f"The 'rows' parameter of perturbation_examples must hold positions in "
                f"[0, {n - 1}]. Got {int(bad[0])} instead."
            )
        return idx.astype(np.int64)
    if n <= n_rows:
        return np.arange(n)
    gen = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    return np.sort(gen.choice(n, size=n_rows, replace=False))


def _take(X: Any, idx: np.ndarray, modality: str) -> Any:
    if modality == "text":
        if hasattr(X, "iloc"):
            return [X.iloc[int(i)] for i in idx]
        return [X[int(i)] for i in idx]
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    if type(X).__module__.startswith("torch"):
        return X[idx.tolist()]
    if isinstance(X, (list, tuple)):
        return np.asarray([X[int(i)] for i in idx])
    return np.asarray(X)[idx]


def _as_numpy(X: Any) -> np.ndarray:
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    return np.array(X)


def _spread(values: Sequence[float], k: int) -> list[float]:
    """Up to ``k`` of the non-zero ``values``, evenly spread and including the largest."""
    vals = sorted({float(v) for v in values if float(v) > 0})
    if len(vals) <= k:
        return vals
    picks = np.unique(np.round(np.linspace(0, len(vals) - 1, k)).astype(int))
    return [vals[i] for i in picks]


def _chosen_magnitudes(
    spec: Mapping[str, Any], run_mags: Sequence[float], magnitudes: Any, k: int
) -> list[float]:
    if magnitudes is None:
        return _spread(run_mags, k)
    if isinstance(magnitudes, Mapping):
        for key in (spec.get("label"), spec.get("name")):
            if key in magnitudes:
                given = magnitudes[key]
                break
        else:
            return _spread(run_mags, k)
    else:
        given = magnitudes
    vals = [given] if isinstance(given, numbers.Real) else given
    if isinstance(vals, (str, bytes)) or not isinstance(vals, Sequence):
        raise ParameterError(
            "The 'magnitudes' parameter of perturbation_examples must be a list of floats or a "
            f"mapping from perturbation label to a list of floats. Got {given!r} instead."
        )
    return sorted({float(v) for v in vals if float(v) > 0})


def _run_magnitudes(result: Any, i: int, spec: Mapping[str, Any]) -> list[float]:
    cfg = (result.meta.get("config") or {}).get("magnitudes")
    n_specs = len(result.meta.get("perturbations") or [])
    if isinstance(cfg, list) and len(cfg) == n_specs and isinstance(cfg[i], list):
        return [float(m) for m in cfg[i]]
    t = result.table
    label = spec.get("label")
    if "label" in t.columns and label is not None:
        rows = t[t["label"] == label]
    else:
        rows = t[t["perturbation"] == spec.get("name")]
    return sorted({float(m) for m in rows["magnitude"]})


def _step_attr(p: Any, name: str) -> Any:
    for step in [p, *getattr(p, "steps", [])]:
        value = getattr(step, name, None)
        if value is not None:
            return value
    return None


def perturbation_examples(
    result: Any,
    X: Any,
    *,
    n_rows: int = 3,
    rows: Sequence[int] | None = None,
    magnitudes: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    n_magnitudes: int = 3,
    seed: int = 0,
    reference: Any = None,
    sample_rate: int | None = None,
) -> list[Example]:
    """Re-apply each perturbation of a run to a few rows of ``X``, for the report.

    Args:
        result: a :class:`perturbkit.SweepResult` (from ``sweep`` or ``load_run``);
            its ``meta["perturbations"]`` says what to re-apply.
        X: the data the run used (or data like it): an array, a DataFrame, a
            tensor, or a list of strings for text.
        n_rows: how many rows of ``X`` to show, chosen at random from ``seed``.
        rows: the positions of the rows to show instead.
        magnitudes: the magnitudes to show: a list for every perturbation, or a
            mapping from label (or name) to a list. Default: ``n_magnitudes`` of
            the run's own non-zero magnitudes, evenly spread, the largest included.
        n_magnitudes: how many of the run's magnitudes to show by default.
        seed: the seed of the row choice and of every perturbation's draws (each
            perturbation has its own stream; its magnitudes share it).
        reference: data to learn feature statistics from (default ``X``), as for
            :func:`perturbkit.sweep`.
        sample_rate: samples per second of audio clips, for the spectrograms;
            default each perturbation's own ``sample_rate`` parameter, else 16000.

    Returns:
        One :class:`Example` per perturbation of the run, in the run's order
        (perturbations of model weights have no input to show and are skipped).
        Pass them to :func:`perturbkit.report.write_report` as ``examples=``.
    """
    from perturbkit.perturbations import from_dict

    owner = "perturbation_examples"
    check_result(result, owner)
    n_rows = _count(owner, "n_rows", n_rows)
    n_magnitudes = _count(owner, "n_magnitudes", n_magnitudes)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ParameterError(
            f"The 'seed' parameter of {owner} must be an int >= 0. Got {seed!r} instead."
        )
    if sample_rate is not None:
        sample_rate = _count(owner, "sample_rate", sample_rate)
    specs = list(result.meta.get("perturbations") or [])
    if not specs:
        raise ParameterError(
            f"The 'result' parameter of {owner} has no meta['perturbations']; pass a run "
            "from perturbkit.sweep or perturbkit.load_run."
        )
    idx = _pick_rows(_n_rows(X), rows, n_rows, int(seed))
    names = result.meta.get("feature_names")
    if hasattr(X, "columns"):
        names = [str(c) for c in X.columns]
    out = []
    for i, spec in enumerate(specs):
        p = from_dict(spec)
        modality = str(p.modality)
        if modality not in _MODALITIES:
            continue
        mags = _chosen_magnitudes(spec, _run_magnitudes(result, i, spec), magnitudes, n_magnitudes)
        if not mags:
            continue
        p.fit(X if reference is None else reference)
        sample = _take(X, idx, modality)
        after = []
        for m in mags:
            gen = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(1, p.key)))
            new = p(sample, m, gen)
            after.append(list(new) if modality == "text" else _as_numpy(new))
        before = list(sample) if modality == "text" else _as_numpy(sample)
        feature_names = None
        if modality == "tabular" and before.ndim == 2:
            ok = names is not None and len(names) == before.shape[1]
            feature_names = tuple(names if ok else (f"x{j}" for j in range(before.shape[1])))
        rate = None
        if modality == "audio":
            rate = int(sample_rate or _step_attr(p, "sample_rate") or 16000)
        out.append(
            Example(
                label=str(spec.get("label") or p.label),
                perturbation=str(spec.get("id") or p.id),
                modality=modality,
                unit=str(spec.get("unit") or p.unit),
                magnitudes=tuple(mags),
                rows=tuple(int(r) for r in idx),
                before=before,
                after=tuple(after),
                run_id=result.meta.get("run_id"),
                seed=int(seed),
                feature_names=feature_names,
                sample_rate=rate,
                layout=str(_step_attr(p, "layout") or "NCHW"),
            )
        )
    return out


# -- HTML ------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True).replace("//", "&#47;&#47;")


def _muted(text: str) -> str:
    return f'<span class="muted">{text}</span>'


def _short(label: str, limit: int = 70) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _mag_head(m: float) -> str:
    return f'<span class="num">{_e(fmt_magnitude(m))}</span>'


def _title(ex: Example) -> str:
    return (
        f'<div class="ex-title"><strong title="{_e(ex.label)}">{_e(_short(ex.label))}</strong>'
        f'<span class="ex-unit">{_e(ex.unit)}</span></div>'
    )


def _shown(ex: Example) -> list[tuple[float, Any]]:
    """(magnitude, perturbed rows) pairs to show: at most MAX_MAGNITUDES, evenly spread."""
    pairs = list(zip(ex.magnitudes, ex.after))
    if len(pairs) <= MAX_MAGNITUDES:
        return pairs
    picks = np.unique(np.round(np.linspace(0, len(pairs) - 1, MAX_MAGNITUDES)).astype(int))
    return [pairs[i] for i in picks]


class _Budget:
    """Bytes of embedded PNG left for one run."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.skipped: list[str] = []


def _png_data(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# images
def _image_hwc(img: np.ndarray, layout: str) -> np.ndarray:
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 3 and layout == "NCHW":
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return np.clip(np.nan_to_num(a), 0.0, 1.0)


def _thumbnail(img: np.ndarray, layout: str) -> tuple[bytes, int, int]:
    """PNG bytes and display width and height (small images scaled up, pixelated)."""
    from PIL import Image

    a = (_image_hwc(img, layout) * 255.0 + 0.5).astype(np.uint8)
    im = Image.fromarray(a)
    w, h = im.size
    if max(w, h) > THUMB_PX:
        f = THUMB_PX / max(w, h)
        im = im.resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.LANCZOS)
        w, h = im.size
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    scale = max(1, THUMB_PX // max(w, h))
    return buf.getvalue(), w * scale, h * scale


def _image_card(ex: Example, budget: _Budget) -> str | None:
    rows = list(range(min(len(ex.rows), MAX_ROWS["image"])))
    shown = _shown(ex)
    cells: list[list[str]] = []
    used = 0
    for r in rows:
        line = []
        for j, img in enumerate([ex.before[r], *(a[r] for _, a in shown)]):
            png, w, h = _thumbnail(img, ex.layout)
            used += 4 * math.ceil(len(png) / 3)
            what = "clean" if j == 0 else f"magnitude {fmt_magnitude(shown[j - 1][0])}"
            line.append(
                f'<img class="ex-thumb" width="{w}" height="{h}" alt="{_e(ex.label)}, '
                f'{_e(what)}, row {ex.rows[r]}" src="{_png_data(png)}">'
            )
        cells.append(line)
    if used > budget.left:
        budget.skipped.append(ex.label)
        return None
    budget.left -= used
    head = "<th></th><th>clean</th>" + "".join(f"<th>{_mag_head(m)}</th>" for m, _ in shown)
    body = "".join(
        f'<tr><th class="ex-row">row {ex.rows[r]}</th>'
        + "".join(f"<td>{c}</td>" for c in line)
        + "</tr>"
        for r, line in zip(rows, cells)
    )
    grid = f'<table class="ex-grid-img"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    return f'<div class="ex-card">{_title(ex)}<div class="ex-scroll">{grid}</div></div>'


# text
def _diff_segments(before: str, after: str) -> tuple[list[tuple[str, str]], int]:
    """(kind, text) pieces: "eq", "del" (removed from before), "ins" (new); and the edit count."""
    sm = difflib.SequenceMatcher(None, before, after, autojunk=False)
    out: list[tuple[str, str]] = []
    edits = 0
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            out.append(("eq", after[j1:j2]))
            continue
        edits += 1
        if i2 > i1:
            out.append(("del", before[i1:i2]))
        if j2 > j1:
            out.append(("ins", after[j1:j2]))
    return out, edits


def diff_html(before: str, after: str, *, limit: int = TEXT_CHARS) -> tuple[str, int]:
    """``after`` as HTML with its changes from ``before`` marked, and the number of edits.

    Removed characters are in ``<del>``, inserted or replacing ones in ``<ins>``
    (a replacement is one edit: ``<del>old</del><ins>new</ins>``); everything
    is HTML-escaped. Text past ``limit`` characters is cut with "…".
    """
    segs, edits = _diff_segments(before, after)
    parts, shown = [], 0
    for kind, text in segs:
        room = limit - shown
        if room <= 0:
            parts.append('<span class="muted">…</span>')
            break
        piece = text if len(text) <= room else text[:room]
        shown += len(piece)
        parts.append(_e(piece) if kind == "eq" else f"<{kind}>{_e(piece)}</{kind}>")
        if len(piece) < len(text):
            parts.append('<span class="muted">…</span>')
            break
    return "".join(parts), edits


def _text_card(ex: Example) -> str:
    bodies = []
    for r in range(min(len(ex.rows), MAX_ROWS["text"])):
        before = str(ex.before[r])
        clean = _e(before[:TEXT_CHARS]) + (
            '<span class="muted">…</span>' if len(before) > TEXT_CHARS else ""
        )
        trs = [
            f'<tr class="ex-clean"><th>row {ex.rows[r]}<br>{_muted("clean")}</th>'
            f'<td><span class="ex-str">{clean}</span></td></tr>'
        ]
        for m, after in _shown(ex):
            marked, edits = diff_html(before, str(after[r]))
            n = _muted(f"{edits} edit{'s' if edits != 1 else ''}") if edits else _muted("no change")
            trs.append(
                f"<tr><th>{_mag_head(m)}<br>{n}</th>"
                f'<td><span class="ex-str">{marked}</span></td></tr>'
            )
        bodies.append("<tbody>" + "".join(trs) + "</tbody>")
    return (
        f'<div class="ex-card">{_title(ex)}<table class="ex-text">{"".join(bodies)}</table></div>'
    )


# audio
def _audio_png(ex: Example, r: int) -> bytes:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    from scipy import signal

    rate = int(ex.sample_rate or 16000)
    shown = _shown(ex)
    clips = [np.asarray(ex.before[r], np.float64).ravel()]
    clips += [np.asarray(a[r], np.float64).ravel() for _, a in shown]
    clips = [c if c.size else np.zeros(1) for c in clips]
    titles = ["clean"] + [f"magnitude {fmt_magnitude(m)}" for m, _ in shown]
    n = len(clips)
    peak = max(1.0, *(float(np.max(np.abs(c))) for c in clips))
    nperseg = max(64, 2 ** round(math.log2(0.016 * rate)))
    rc = {
        "font.size": 7.5,
        "axes.titlesize": 8.5,
        "axes.edgecolor": "#9aa5b1",
        "axes.labelcolor": "#1f2933",
        "xtick.color": "#616e7c",
        "ytick.color": "#616e7c",
        "text.color": "#1f2933",
        "axes.linewidth": 0.6,
    }
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(2.15 * n + 0.4, 2.5), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(2, n, sharex=True, squeeze=False)
        vmax = None
        for col, (clip, title) in enumerate(zip(clips, titles)):
            t_end = clip.size / rate
            # the waveform as its min/max envelope: the same picture, far fewer points
            starts = np.linspace(0, clip.size, min(600, clip.size) + 1).astype(int)[:-1]
            lo, hi = np.minimum.reduceat(clip, starts), np.maximum.reduceat(clip, starts)
            tt = starts / rate
            ax = axes[0, col]
            ax.fill_between(tt, lo, hi, color="#0072B2", lw=0.3, step="post")
            ax.axhline(0, color="#cbd2d9", lw=0.5, zorder=0)
            ax.set_ylim(-peak, peak)
            ax.set_title(title, fontweight="bold" if col else "normal")
            ax.tick_params(labelbottom=False, length=2)
            seg = min(nperseg, max(8, clip.size))
            _, _, s = signal.spectrogram(clip, rate, nperseg=seg, noverlap=seg // 2)
            db = 10 * np.log10(s + 1e-12)
            if vmax is None:
                vmax = float(db.max()) if db.size else 0.0
            ax = axes[1, col]
            ax.imshow(
                db,
                origin="lower",
                aspect="auto",
                extent=(0, t_end, 0, rate / 2000),
                cmap="magma",
                vmin=vmax - 80,
                vmax=vmax,
                interpolation="nearest",
            )
            ax.set_xlabel("s")
            ax.tick_params(length=2)
            ax.xaxis.set_major_locator(MaxNLocator(3))
            axes[0, col].set_yticks([-peak, 0, peak], [f"{-peak:g}", "0", f"{peak:g}"])
            if col == 0:
                axes[0, col].set_ylabel("amplitude")
                ax.set_ylabel("kHz")
            else:
                axes[0, col].tick_params(labelleft=False)
                ax.tick_params(labelleft=False)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
    # 64 colours: a third of the bytes, no visible change for a plot.
    from PIL import Image

    im = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    out = io.BytesIO()
    im.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    return out.getvalue()


def _audio_card(ex: Example, budget: _Budget) -> str | None:
    pngs = [_audio_png(ex, r) for r in range(min(len(ex.rows), MAX_ROWS["audio"]))]
    used = sum(4 * math.ceil(len(p) / 3) for p in pngs)
    if used > budget.left:
        budget.skipped.append(ex.label)
        return None
    budget.left -= used
    rate = int(ex.sample_rate or 16000)
    imgs = "".join(
        f'<img class="ex-audio" alt="{_e(ex.label)}: waveform and spectrogram of row {ex.rows[r]}" '
        f'src="{_png_data(p)}">'
        f'<div class="ex-cap">Row {ex.rows[r]} at {_e(f"{rate / 1000:g}")} kHz: waveform (top) '
        "and spectrogram (bottom, dB, the clean clip's scale).</div>"
        for r, p in enumerate(pngs)
    )
    return f'<div class="ex-card wide">{_title(ex)}{imgs}</div>'


# tabular
def _fmt_cell(v: float) -> str:
    if math.isnan(v):
        return '<span class="ex-nan">NaN</span>'
    return _e(f"{v:.4g}")


def _tabular_card(ex: Example) -> str:
    before = np.asarray(ex.before, np.float64)
    shown = _shown(ex)
    afters = [np.asarray(a, np.float64) for _, a in shown]
    k = min(len(ex.rows), MAX_ROWS["tabular"])
    before, afters = before[:k], [a[:k] for a in afters]
    names = list(ex.feature_names or [f"x{j}" for j in range(before.shape[1])])
    changed = np.zeros(before.shape, bool)
    rel = np.zeros(before.shape[1])
    for a in afters:
        diff = ~((a == before) | (np.isnan(a) & np.isnan(before)))
        changed |= diff
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.abs(a - before) / (np.abs(before) + 1e-12)
        r = np.where(np.isnan(a) != np.isnan(before), np.inf, np.nan_to_num(r, nan=0.0))
        rel = np.maximum(rel, np.where(diff, r, 0.0).max(axis=0))
    counts = changed.sum(axis=0)
    order = sorted(range(len(names)), key=lambda j: (-counts[j], -rel[j], j))
    n_changed = int((counts > 0).sum())
    cols = sorted(order[: min(TABLE_COLUMNS, len(names))])
    if n_changed:
        cols = sorted(j for j in order[:TABLE_COLUMNS] if counts[j] > 0)
    head = "<th>magnitude</th>" + "".join(f"<th>{_e(names[j])}</th>" for j in cols)
    bodies = []
    for r in range(k):
        trs = [
            f'<tr class="ex-clean"><th>row {ex.rows[r]}<br>{_muted("clean")}</th>'
            + "".join(f'<td class="num">{_fmt_cell(before[r, j])}</td>' for j in cols)
            + "</tr>"
        ]
        for (m, _), a in zip(shown, afters):
            tds = []
            for j in cols:
                v, b = a[r, j], before[r, j]
                same = v == b or (math.isnan(v) and math.isnan(b))
                if same:
                    tds.append(f'<td class="num">{_fmt_cell(v)}</td>')
                else:
                    tip = _e(f"was {b:.6g}")
                    tds.append(f'<td class="num chg" title="{tip}">{_fmt_cell(v)}</td>')
            trs.append(f"<tr><th>{_mag_head(m)}</th>{''.join(tds)}</tr>")
        bodies.append("<tbody>" + "".join(trs) + "</tbody>")
    if not n_changed:
        note = "No shown cell changed at these magnitudes."
    elif n_changed > len(cols):
        note = (
            f"{n_changed} features changed in these rows; the {len(cols)} most changed are shown."
        )
    else:
        note = f"{n_changed} feature{'s' if n_changed != 1 else ''} changed in these rows."
    table = (
        f'<div class="ex-scroll"><table class="ex-tab"><thead><tr>{head}</tr></thead>'
        f"{''.join(bodies)}</table></div>"
    )
    return f'<div class="ex-card">{_title(ex)}{table}<div class="ex-cap">{_e(note)}</div></div>'


_LEADS = {
    "image": "The clean image, then the same image at each magnitude.",
    "text": (
        "Changes from the clean text: <ins>inserted or replacing</ins> and <del>removed</del> "
        "characters."
    ),
    "audio": "Waveform and spectrogram of a clip, clean and at each magnitude.",
    "tabular": (
        'The clean row, then the row at each magnitude; <span class="chg">changed cells</span> '
        "are highlighted (hover for the clean value)."
    ),
}
_TITLES = {"image": "Images", "text": "Text", "audio": "Audio", "tabular": "Tabular rows"}


def examples_html(examples: Sequence[Example], *, max_bytes: int = MAX_EMBED_BYTES) -> str:
    """The body of a run's "Examples before and after" section (escaped, size-capped)."""
    by_mod: dict[str, list[Example]] = {}
    for ex in examples:
        by_mod.setdefault(ex.modality, []).append(ex)
    budget = _Budget(max_bytes)
    parts = []
    for mod in _MODALITIES:
        exs = by_mod.get(mod)
        if not exs:
            continue
        cards = []
        for ex in exs:
            if mod == "image":
                card = _image_card(ex, budget)
            elif mod == "audio":
                card = _audio_card(ex, budget)
            elif mod == "text":
                card = _text_card(ex)
            else:
                card = _tabular_card(ex)
            if card is not None:
                cards.append(card)
        head = f"<h4>{_TITLES[mod]}</h4>" if len(by_mod) > 1 else ""
        grid = 'class="ex-cards wide"' if mod == "audio" else 'class="ex-cards"'
        if mod == "image":  # cards as wide as their thumbnails, as many per line as fit
            n_cols = 1 + max(len(_shown(ex)) for ex in exs)
            grid += (
                ' style="grid-template-columns:repeat(auto-fill,minmax(min(100%,'
                f'{54 + n_cols * (THUMB_PX + 5) + 24}px),1fr))"'
            )
        parts.append(
            f'{head}<p class="ex-lead">{_LEADS[mod]}</p><div {grid}>{"".join(cards)}</div>'
        )
    if budget.skipped:
        names = ", ".join(_e(_short(s, 40)) for s in budget.skipped)
        parts.append(
            f'<p class="note">Not shown, to keep the report under {max_bytes / 1e6:g} MB of '
            f"embedded images per run: {names}. Pass fewer rows or magnitudes to "
            "perturbation_examples to see them.</p>"
        )
    return "".join(parts)


def examples_lead(examples: Sequence[Example]) -> str:
    ex = examples[0]
    rows = len({r for e in examples for r in e.rows})
    return (
        f"Each perturbation re-applied to {rows} row{'s' if rows != 1 else ''} of the data at "
        f"some of the run's magnitudes (seed {ex.seed}; an illustration, not the sweep's own "
        "draws). Within a perturbation every magnitude uses the same draws."
    )


def as_examples(examples: Any, owner: str) -> list[Example]:
    """A list of Example, or a one-line error naming what was given."""
    if isinstance(examples, Example):
        return [examples]
    if isinstance(examples, (str, bytes, Mapping)) or not isinstance(examples, Sequence):
        raise ParameterError(
            f"The 'examples' parameter of {owner} must be a list of Example (from "
            "perturbation_examples) or a mapping from run position or run id to such a list. "
            f"Got {type(examples).__name__} instead."
        )
    bad = next((x for x in examples if not isinstance(x, Example)), None)
    if bad is not None:
        raise ParameterError(
            f"The 'examples' parameter of {owner} must hold Example objects (from "
            f"perturbation_examples). Got {type(bad).__name__} instead."
        )
    return list(examples)


CSS = """
.ex-lead{margin:4px 0 10px;color:var(--muted);font-size:13.5px}
.ex-cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:14px;
margin-bottom:8px}
.ex-cards.wide{grid-template-columns:1fr}
.ex-card{border:1px solid var(--line);border-radius:10px;padding:10px 12px 12px;background:#fff;
min-width:0}
.ex-title{margin-bottom:8px;line-height:1.35}
.ex-title strong{font-size:14px;overflow-wrap:anywhere}
.ex-unit{display:block;color:var(--muted);font-size:12px}
.ex-scroll{overflow-x:auto}
.ex-cap{color:var(--muted);font-size:12px;margin-top:4px}
table.ex-grid-img{width:auto;border-collapse:separate;border-spacing:4px 3px;font-size:12px}
table.ex-grid-img th,table.ex-grid-img td{padding:0;border:0;background:none;text-align:center;
vertical-align:middle}
table.ex-grid-img thead th{background:none;border:0;color:var(--muted);font-weight:600;
font-size:11.5px}
table.ex-grid-img tbody tr:nth-child(even){background:none}
th.ex-row{color:var(--muted);font-weight:500;font-size:11.5px;white-space:nowrap;
padding-right:4px!important;text-align:right!important}
img.ex-thumb{display:block;image-rendering:pixelated;border-radius:3px;
box-shadow:0 0 0 1px rgba(16,24,40,.12)}
img.ex-audio{display:block;max-width:100%;height:auto}
table.ex-text{font-size:13.5px}
table.ex-text th{width:78px;font-weight:600;font-size:12.5px;white-space:nowrap;
color:var(--ink);background:none}
table.ex-text tbody tr:nth-child(even){background:none}
table.ex-text tbody+tbody tr:first-child th,table.ex-text tbody+tbody tr:first-child td{
border-top:2px solid #d9dfe6}
table.ex-text td,table.ex-text th{padding:5px 8px}
tr.ex-clean td,tr.ex-clean th{background:#f8fafc}
.ex-str{white-space:pre-wrap;overflow-wrap:anywhere;
font:12.5px/1.6 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
ins{text-decoration:none;background:#d3f0dc;color:#0b5c2b;border-radius:2px;
box-shadow:inset 0 -1px 0 #7cc896}
del{background:#fbdcd8;color:#9b2c1f;border-radius:2px;text-decoration:line-through}
table.ex-tab{font-size:12.5px;width:auto;min-width:100%}
table.ex-tab thead th{font-size:11.5px;vertical-align:bottom;white-space:normal;
overflow-wrap:break-word;min-width:58px;max-width:120px;line-height:1.3}
table.ex-tab thead th:first-child{color:var(--muted);font-weight:500;white-space:nowrap;
overflow-wrap:normal}
table.ex-tab th{white-space:nowrap;font-weight:600;font-size:12px}
table.ex-tab td,table.ex-tab th{padding:4px 7px}
table.ex-tab tbody tr:nth-child(even){background:none}
table.ex-tab tbody+tbody tr:first-child th,table.ex-tab tbody+tbody tr:first-child td{
border-top:2px solid #d9dfe6}
td.chg,span.chg{background:#fff1c2;font-weight:600;color:#7a4d00}
.ex-nan{color:#9b2c1f;font-style:italic}
"""
