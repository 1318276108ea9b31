"""Robustness curves and certification summaries in the results store.

A curve is stored as its own run (``meta["kind"] == "bounds"``): one cell per
noise level, whose metric rows are :meth:`RobustnessCurve.to_tidy`'s rows of
that level (the sweep table's columns, so ``perturbkit runs``, ``show`` and
SQL over the store see it like any run). The run's meta is the curve's meta
plus ``kind``, ``label`` and the column order, so :func:`load_curve` gives back
the same table, bit for bit (NaN comes back as NaN)::

    from perturbkit import Store, robustness_curve
    from perturbkit.analysis.bounds_store import load_curve, save_curve

    curve = robustness_curve(model, X, y, levels=[0, 0.1, 0.5], seed=0)
    with Store("sqlite:///runs.db") as store:
        run_id = save_curve(curve, store)
        same = load_curve(run_id, store)

Certification by randomized smoothing is kept with the curve as aggregate
metrics, one cell per ``sigma`` (perturbation ``"certify"``): ``n_points``,
``abstain_rate``, ``mean_radius``, ``median_radius`` and, with labels,
``certified_accuracy`` at radii ``k · sigma`` for ``k`` in
:data:`CERTIFY_RADII` (group ``"radius=<k>sigma"``); see
:func:`certification_summary`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from perturbkit._rng import canonical, canonical_json
from perturbkit.analysis.bounds import RobustnessCurve
from perturbkit.analysis.certify import CertifyResult
from perturbkit.exceptions import ParameterError

__all__ = [
    "CERTIFY_RADII",
    "KIND",
    "certification_from_table",
    "certification_summary",
    "curve_from_table",
    "is_bounds_run",
    "load_certification",
    "load_curve",
    "save_curve",
]

KIND = "bounds"
"""``meta["kind"]`` of a stored robustness curve."""
CERTIFY_RADII: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)
"""Radii, as multiples of sigma, at which certified accuracy is stored."""

_CERTIFY = "certify"
_CERTIFY_VERSION = 1
_CERT_METRICS = ("n_points", "abstain_rate", "mean_radius", "median_radius")
_BOOKKEEPING = ("columns", "label", "certification_columns")
_CONFIG_KEYS = (
    "noise",
    "relative",
    "confidence",
    "n_draws",
    "method",
    "sampler",
    "target",
    "value_range",
    "simultaneous",
)


def is_bounds_run(meta: Mapping[str, Any] | None) -> bool:
    """Whether a stored run's meta is a robustness curve's (``meta["kind"] == "bounds"``)."""
    return bool(meta) and meta.get("kind") == KIND  # type: ignore[union-attr]


def _radius_column(k: float) -> str:
    return f"certified_accuracy@{k:g}sigma"


def _radius_group(k: float) -> str:
    return f"radius={k:g}sigma"


def certification_summary(
    results: CertifyResult | Sequence[CertifyResult],
    y: Any = None,
    *,
    radii: Sequence[float] = CERTIFY_RADII,
) -> pd.DataFrame:
    """One row per certification (per ``sigma``): how much was certified, and how far.

    Columns: ``sigma``, ``n0``, ``n``, ``alpha``, ``n_points``, ``abstain_rate``,
    ``mean_radius`` and ``median_radius`` (abstentions count as radius 0) and,
    when ``y`` is given, ``certified_accuracy@<k>sigma`` for each ``k`` in
    ``radii``: the share of rows certified correct with radius at least
    ``k · sigma`` (``k = 0``: the smoothed classifier's accuracy, abstentions
    counted wrong).

    Args:
        results: one :class:`CertifyResult` or several (for example one per sigma).
        y: the true labels of the certified rows, or None.
        radii: the radii, as multiples of each result's sigma.
    """
    items = [results] if isinstance(results, CertifyResult) else list(results)
    if not items or not all(isinstance(r, CertifyResult) for r in items):
        raise ParameterError(
            "The 'results' parameter of certification_summary must be a CertifyResult or a "
            f"non-empty list of them. Got {type(results).__name__} instead."
        )
    ks = [float(k) for k in radii]
    if any(not (math.isfinite(k) and k >= 0) for k in ks):
        raise ParameterError(
            "The 'radii' parameter of certification_summary must hold finite floats >= 0. "
            f"Got {list(radii)!r} instead."
        )
    rows = []
    for r in items:
        m = r.meta
        sigma = float(m["sigma"])
        row: dict[str, Any] = {
            "sigma": sigma,
            "n0": int(m["n0"]),
            "n": int(m["n"]),
            "alpha": float(m["alpha"]),
            "n_points": float(len(r.radius)),
            "abstain_rate": float(np.mean(r.abstain)),
            "mean_radius": float(np.mean(r.radius)),
            "median_radius": float(np.median(r.radius)),
        }
        if y is not None:
            acc = r.certified_accuracy(y, [k * sigma for k in ks])
            for k, a in zip(ks, acc, strict=True):
                row[_radius_column(k)] = float(a)
        rows.append(row)
    return pd.DataFrame(rows)


# -- writing -------------------------------------------------------------------------------------
def _open(store: Any) -> tuple[Any, bool]:
    """``(store, owned)``: a Store as given, or a new one opened from a URL or path."""
    from perturbkit.store import Store

    if isinstance(store, Store):
        return store, False
    if isinstance(store, (str, os.PathLike)):
        return Store(store), True
    raise ParameterError(
        "The 'store' parameter must be a perturbkit.Store or a store URL. "
        f"Got {type(store).__name__} instead."
    )


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _certification_rows(frame: pd.DataFrame) -> list[tuple[float, list[dict[str, Any]]]]:
    """``(sigma, rows)`` per certification, rows with the store's eight keys."""
    out = []
    acc_cols = [c for c in frame.columns if c.startswith("certified_accuracy@")]
    for rec in frame.to_dict(orient="records"):
        sigma = float(rec["sigma"])
        params = canonical_json(
            {"n0": int(rec["n0"]), "n": int(rec["n"]), "alpha": float(rec["alpha"])}
        )

        def row(metric: str, group: str, value: Any, sigma: float = sigma, params: str = params):
            return {
                "perturbation": _CERTIFY,
                "version": _CERTIFY_VERSION,
                "params": params,
                "magnitude": sigma,
                "repeat": 0,
                "metric": metric,
                "group": group,
                "value": float(value),
            }

        rows = [row(m, "", rec[m]) for m in _CERT_METRICS]
        for c in acc_cols:
            k = c.removeprefix("certified_accuracy@").removesuffix("sigma")
            rows.append(row("certified_accuracy", f"radius={k}sigma", rec[c]))
        out.append((sigma, rows))
    return out


def save_curve(
    curve: RobustnessCurve,
    store: Any,
    *,
    name: str | None = None,
    certification: pd.DataFrame | None = None,
    meta: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    fingerprint: str | None = None,
    seconds: float | None = None,
) -> str:
    """Store a robustness curve as its own run and return the run id.

    One cell per level, each written in one transaction with its metric rows
    (:meth:`RobustnessCurve.to_tidy`); then one cell per certification when
    ``certification`` is given. A failure part-way marks the run ``failed``.

    Args:
        curve: the curve.
        store: a :class:`perturbkit.Store`, or a URL to open (and close).
        name: the run's name; default the curve's label, or ``"bounds"``.
        certification: :func:`certification_summary` rows to keep with the curve.
        meta: extra metadata (for example the command or the experiment), merged
            over the curve's meta.
        config: the run's configuration; default the curve's settings and levels.
        fingerprint: what identifies the computation (model, data, settings);
            default a digest of the curve's meta.
        seconds: how long the curve took; shared equally among its cells.
    """
    if not isinstance(curve, RobustnessCurve):
        raise ParameterError(
            "The 'curve' parameter of save_curve must be a RobustnessCurve. "
            f"Got {type(curve).__name__} instead."
        )
    st, owned = _open(store)
    try:
        return _save(st, curve, name, certification, meta, config, fingerprint, seconds or 0.0)
    finally:
        if owned:
            st.close()


def _save(
    st: Any,
    curve: RobustnessCurve,
    name: str | None,
    certification: pd.DataFrame | None,
    meta: Mapping[str, Any] | None,
    config: Mapping[str, Any] | None,
    fingerprint: str | None,
    seconds: float,
) -> str:
    from perturbkit.engine.sweep import environment

    run_id = uuid.uuid4().hex[:12]
    name = name or curve.label or "bounds"
    levels = [float(v) for v in curve.levels]
    cmeta = {k: v for k, v in curve.meta.items() if k not in ("run_id", "name", "status")}
    run_meta: dict[str, Any] = {
        **cmeta,
        "kind": KIND,
        "label": curve.label,
        "columns": [str(c) for c in curve.table.columns],
        "levels": levels,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
    }
    if certification is not None and len(certification):
        run_meta["certification_columns"] = [str(c) for c in certification.columns]
    run_meta.update(dict(meta or {}))
    run_meta.update(run_id=run_id, name=name)
    if config is None:
        config = {"levels": levels, **{k: curve.meta.get(k) for k in _CONFIG_KEYS}}
    fp = fingerprint or _digest(canonical_json({"kind": KIND, "meta": canonical(cmeta)}))
    root = int(curve.meta.get("root_seed") or 0)
    st.create_run(
        run_id=run_id,
        name=name,
        fingerprint=fp,
        root_seed=root,
        config=dict(config),
        meta=run_meta,
    )
    try:
        tidy = curve.to_tidy()
        per_level = seconds / max(1, len(levels))
        pert_id = f"{tidy['perturbation'].iloc[0]}@bounds" if len(tidy) else "bounds"
        for i, level in enumerate(curve.levels):
            part = tidy[tidy["magnitude"] == level]
            st.write_cell(
                run_id,
                pert_id=pert_id,
                magnitude_index=i,
                repeat=0,
                magnitude=float(level),
                seconds=per_level,
                rows=part.to_dict(orient="records"),
            )
        if certification is not None and len(certification):
            for i, (sigma, rows) in enumerate(_certification_rows(certification)):
                st.write_cell(
                    run_id,
                    pert_id=f"{_CERTIFY}@{_CERTIFY_VERSION}",
                    magnitude_index=i,
                    repeat=0,
                    magnitude=sigma,
                    seconds=0.0,
                    rows=rows,
                )
    except BaseException:
        with contextlib.suppress(Exception):  # keep the first error
            st.finish_run(run_id, status="failed")
        raise
    st.finish_run(run_id, status="complete")
    return run_id


# -- reading -------------------------------------------------------------------------------------
def _not_bounds(run_id: str, where: str) -> ParameterError:
    return ParameterError(
        f"Run {run_id!r} in {where} is not a robustness-curve run (meta kind "
        f"'{KIND}'); load a sweep with perturbkit.load_run."
    )


def curve_from_table(table: pd.DataFrame, meta: Mapping[str, Any]) -> RobustnessCurve:
    """The curve of a stored bounds run, from its tidy table and run meta (no store access).

    The certification rows are left out; see :func:`certification_from_table`.
    """
    if not is_bounds_run(meta):
        raise _not_bounds(str(meta.get("run_id")), "this table")
    rows = table[table["perturbation"] != _CERTIFY]
    wide = rows.pivot(index="magnitude", columns="metric", values="value").sort_index()
    columns = list(meta.get("columns") or ["level", *wide.columns])
    data: dict[str, Any] = {}
    for c in columns:
        if c == "level":
            data[c] = wide.index.to_numpy(dtype=np.float64)
        elif c == "tighter":
            direct = wide["mse_upper"].to_numpy(dtype=np.float64)
            mink = wide["mse_upper_minkowski"].to_numpy(dtype=np.float64)
            data[c] = np.where(direct <= mink * (1 + 1e-12), "direct", "minkowski")
        elif c in wide.columns:
            data[c] = wide[c].to_numpy(dtype=np.float64)
        else:
            data[c] = np.full(len(wide), np.nan)
    out_meta = {k: v for k, v in meta.items() if k not in _BOOKKEEPING}
    return RobustnessCurve(pd.DataFrame(data), out_meta, str(meta.get("label") or ""))


def certification_from_table(table: pd.DataFrame, meta: Mapping[str, Any]) -> pd.DataFrame:
    """The certification summary of a stored bounds run (empty when it has none)."""
    rows = table[table["perturbation"] == _CERTIFY]
    columns = list(meta.get("certification_columns") or [])
    if rows.empty:
        return pd.DataFrame(columns=columns or ["sigma"])
    out = []
    for sigma, g in rows.groupby("magnitude", sort=True):
        params = json.loads(g["params"].iloc[0])
        rec: dict[str, Any] = {
            "sigma": float(sigma),
            "n0": int(params["n0"]),
            "n": int(params["n"]),
            "alpha": float(params["alpha"]),
        }
        for metric, group, value in zip(g["metric"], g["group"], g["value"], strict=True):
            if metric == "certified_accuracy":
                k = group.removeprefix("radius=").removesuffix("sigma")
                rec[f"certified_accuracy@{k}sigma"] = float(value)
            else:
                rec[metric] = float(value)
        out.append(rec)
    frame = pd.DataFrame(out)
    order = [c for c in columns if c in frame.columns]
    return frame[order + [c for c in frame.columns if c not in order]]


def _load(run_id: str, store: Any) -> tuple[dict[str, Any], pd.DataFrame]:
    st, owned = _open(store)
    try:
        record, table = st.load_run(run_id)
        where = st.url
    finally:
        if owned:
            st.close()
    meta = dict(record.get("meta") or {})
    if not is_bounds_run(meta):
        raise _not_bounds(record["run_id"], where)
    meta["run_id"] = record["run_id"]
    meta["name"] = record.get("name", meta.get("name"))
    meta["status"] = record.get("status")
    return meta, table


def load_curve(run_id: str, store: Any) -> RobustnessCurve:
    """The robustness curve stored as run ``run_id`` (a unique prefix will do).

    Its meta is the stored meta: the curve's own, plus ``kind``, ``run_id``,
    ``name``, ``status`` and what was stored beside it (command, experiment).

    Raises:
        StoreError: no such run, or an ambiguous prefix.
        ParameterError: the run is a sweep, not a robustness curve.
    """
    meta, table = _load(run_id, store)
    return curve_from_table(table, meta)


def load_certification(run_id: str, store: Any) -> pd.DataFrame:
    """The certification summary stored with the curve of run ``run_id`` (may be empty)."""
    meta, table = _load(run_id, store)
    return certification_from_table(table, meta)
