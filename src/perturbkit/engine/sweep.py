"""Sweep: the grid perturbations × magnitudes × repeats over a data set.

The engine streams the data in chunks of whole logical blocks, calls the
model once per chunk, compares with the clean outputs, and hands each
finished cell to the store in one transaction. Seeding follows DESIGN.md:
one root per run; the stream of a block is keyed by (perturbation, repeat,
block), never by execution order, so any cell can be recomputed alone, in any
order, with any batch size, and give the same perturbed inputs bit for bit.
"""

from __future__ import annotations

import concurrent.futures
import copy
import hashlib
import platform
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from perturbkit._rng import BLOCK_ROWS, canonical, canonical_json, root_entropy
from perturbkit._types import SeedLike
from perturbkit._validation import (
    Interval,
    as_numeric_2d,
    as_text_batch,
    check_magnitude,
    check_magnitudes,
    check_param,
    check_same_length,
)
from perturbkit.engine.cells import Cell, CellResult, Group, Job, compute_group
from perturbkit.engine.result import TABLE_COLUMNS, SweepResult
from perturbkit.exceptions import DataError, ParameterError
from perturbkit.metrics import check_metrics, make_stats
from perturbkit.models.base import label_indices
from perturbkit.perturbations.base import Perturbation, Reference, _as_perturbation

__all__ = ["Sweep", "sweep"]


def _digest(*parts: bytes | str | memoryview) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
    return h.hexdigest()


def data_fingerprint(X: np.ndarray, y: np.ndarray | None) -> str:
    """blake2b of the data's bytes, shape and dtype (and the labels')."""
    x_bytes = (
        "\x1f".join(X.tolist()).encode()
        if X.dtype == object
        else memoryview(np.ascontiguousarray(X)).cast("B")
    )
    parts: list[bytes | str | memoryview] = [str(X.shape), str(X.dtype), x_bytes]
    if y is not None:
        y_bytes = (
            memoryview(np.ascontiguousarray(y)).cast("B")
            if y.dtype != object
            else "\x1f".join(map(str, y.tolist())).encode()
        )
        parts += [str(y.shape), str(y.dtype), y_bytes]
    return _digest(*parts)


def environment() -> dict[str, str]:
    import scipy
    import sklearn

    from perturbkit._version import __version__

    env = {
        "perturbkit": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
    }
    if "torch" in sys.modules:
        env["torch"] = sys.modules["torch"].__version__
    return env


_BLOCK_BYTES = 4 * 2**20
_BATCH_BYTES = 64 * 2**20


def _sizes(X: np.ndarray, block_rows: int | None, batch_size: int | None) -> tuple[int, int]:
    """Logical block and batch sizes: given, or derived from the bytes of one row."""
    row_bytes = max(1, int(np.prod(X.shape[1:])) * X.dtype.itemsize) if X.ndim > 1 else 64
    if block_rows is None:
        fit = max(1, _BLOCK_BYTES // row_bytes)
        block_rows = min(BLOCK_ROWS, 1 << (fit.bit_length() - 1))
    if batch_size is None:
        batch_size = max(block_rows, min(8192, _BATCH_BYTES // row_bytes))
    return int(block_rows), int(batch_size)


class Sweep:
    """A configured sweep; :meth:`run` computes it. See :func:`sweep` for the parameters."""

    def __init__(
        self,
        model: Any,
        X: Any,
        y: Any = None,
        *,
        perturbations: Sequence[Any],
        magnitudes: Sequence[float] | Mapping[str, Sequence[float]],
        repeats: int = 1,
        seed: SeedLike = None,
        batch_size: int | None = None,
        metrics: Iterable[str] | None = None,
        store: Any = None,
        progress: bool = True,
        resume: bool = False,
        reference: Any = None,
        task: str | None = None,
        name: str | None = None,
        block_rows: int | None = None,
        n_bins: int = 15,
    ) -> None:
        self.model = model
        self.X = X
        self.y = y
        self.perturbations = perturbations
        self.magnitudes = magnitudes
        self.repeats = repeats
        self.seed = seed
        self.batch_size = batch_size
        self.metrics = metrics
        self.store = store
        self.progress = progress
        self.resume = resume
        self.reference = reference
        self.task = task
        self.name = name
        self.block_rows = block_rows
        self.n_bins = n_bins
        self._prepared = False

    # -- validation and set-up ------------------------------------------------------------
    def _prepare(self) -> None:
        if self._prepared:
            return
        from perturbkit.models import wrap

        check_param("sweep", "repeats", self.repeats, Interval(1, None, integer=True))
        for pname in ("batch_size", "block_rows"):
            value = getattr(self, pname)
            if value is not None:
                check_param("sweep", pname, value, Interval(1, None, integer=True))
        check_param("sweep", "n_bins", self.n_bins, Interval(1, None, integer=True))
        self._root_given = root_entropy(self.seed) if self.seed is not None else None

        perts = self._parse_perturbations()
        modalities = {p.modality for p in perts}
        self.feature_names = None
        if "text" in modalities:
            if modalities != {"text"}:
                raise ParameterError(
                    "The 'perturbations' of one sweep must all be text perturbations or none; "
                    f"got modalities {sorted(modalities)}."
                )
            self.X_ = as_text_batch(self.X)
        else:
            X = as_numeric_2d(self.X)
            if not np.issubdtype(X.dtype, np.floating):
                X = X.astype(np.float64)
            if isinstance(self.X, pd.DataFrame):
                self.feature_names = [str(c) for c in self.X.columns]
            self.X_ = np.ascontiguousarray(X)
        self.y_ = None if self.y is None else check_same_length(self.X_, self.y)
        if self.y_ is not None and self.y_.ndim > 2:
            raise DataError(f"y must be 1-D or 2-D. Got shape {self.y_.shape} instead.")

        self.block_rows_, self.batch_size_ = _sizes(self.X_, self.block_rows, self.batch_size)
        self.perts_ = self._fit_perturbations(perts)
        self.mags_ = self._build_magnitudes()
        self.model_ = wrap(self.model, task=self.task)
        self._prepared = True

    def _parse_perturbations(self) -> list[Perturbation]:
        if isinstance(self.perturbations, (str, Perturbation, Mapping)) or not isinstance(
            self.perturbations, Sequence
        ):
            items = [self.perturbations]
        else:
            items = list(self.perturbations)
        if not items:
            raise ParameterError(
                "The 'perturbations' parameter of sweep must list at least one perturbation. "
                "Got [] instead."
            )
        perts = [copy.deepcopy(_as_perturbation(p)) for p in items]
        for p in perts:
            p._validate_params()
        return perts

    def _fit_perturbations(self, perts: list[Perturbation]) -> list[Perturbation]:
        ref: Any = self.reference
        if ref is None:
            ref = Reference(self.X_, self.feature_names)
        elif self.X_.dtype == object:
            ref = as_text_batch(ref, name="reference")
        else:
            ref_arr = as_numeric_2d(ref, name="reference")
            if ref_arr.shape[1:] != self.X_.shape[1:]:
                raise DataError(
                    f"reference must have the same features as X ({self.X_.shape[1:]}). "
                    f"Got shape {ref_arr.shape} instead."
                )
        seen: dict[int, str] = {}
        for p in perts:
            if p.key in seen:
                raise ParameterError(
                    f"The 'perturbations' parameter of sweep lists {p.label} twice; "
                    "give each entry different parameters."
                )
            seen[p.key] = p.label
            p.fit(ref)
            if self.reference is not None:  # fit checked X itself when it is the reference
                p.check(self.X_)
        return perts

    def _build_magnitudes(self) -> list[np.ndarray]:
        out = []
        if isinstance(self.magnitudes, Mapping):
            keys = {str(k) for k in self.magnitudes}
            for p in self.perts_:
                for k in (p.label, p.name):
                    if k in self.magnitudes:
                        mags = self.magnitudes[k]
                        break
                else:
                    raise ParameterError(
                        f"The 'magnitudes' mapping of sweep has no entry for {p.label!r}. "
                        f"Got keys {sorted(keys)} instead."
                    )
                out.append(check_magnitudes(mags))
        else:
            arr = check_magnitudes(self.magnitudes)
            out = [arr for _ in self.perts_]
        for p, mags in zip(self.perts_, out):
            for m in mags:
                check_magnitude(p.label, m, high=p.max_magnitude)
        return out

    # -- the grid ---------------------------------------------------------------------
    def plan(self) -> list[Cell]:
        """Every cell of the grid, in a canonical order (magnitude 0 included)."""
        self._prepare()
        return [
            Cell(pi, mi, r)
            for pi in range(len(self.perts_))
            for r in range(self.repeats)
            for mi in range(len(self.mags_[pi]))
        ]

    def pert_id(self, i: int) -> str:
        p = self.perts_[i]
        return f"{p.id}:{p.key:016x}"

    def fingerprint(self) -> str:
        """Identity of the run for resuming: model, data, grid and options, not the seed."""
        spec = {
            "perturbations": [p.to_dict() for p in self.perts_],
            "magnitudes": [m.tolist() for m in self.mags_],
            "repeats": self.repeats,
            "block_rows": self.block_rows_,
            "n_bins": self.n_bins,
            "metrics": None if self.metrics is None else sorted(self.metrics),
            "task": self.model_.task,
        }
        return _digest(self.model_.fingerprint(), self._data_fp, canonical_json(spec))

    # -- running ----------------------------------------------------------------------
    def _clean_pass(self, job: Job, first: np.ndarray) -> None:
        clean = [first]
        for start, stop in job.chunks():
            if start == 0:
                continue
            clean.append(job.predict(self.X_[start:stop], start))
        job.clean = np.concatenate(clean, axis=0)
        if job.task == "classification" and job.clean.ndim != 2:  # pragma: no cover
            raise RuntimeError("classification outputs must be 2-D")
        stats = make_stats(
            job.task, job.n_outputs, has_labels=job.y_index is not None, n_bins=job.n_bins
        )
        job.aux = {}
        for start, stop in job.chunks():
            P0 = job.clean[start:stop]
            yc = None if job.y_index is None else job.y_index[start:stop]
            starts = np.arange(0, stop - start, job.block_rows)
            if job.task == "classification":
                job.aux[start] = stats.clean_aux(P0, starts)  # type: ignore[union-attr]
                stats.update(P0, P0, yc, starts, job.aux[start])  # type: ignore[call-arg]
            else:
                stats.update(P0, P0, yc, starts)
        job.clean_stats = stats

    def _label_index(self, task: str) -> np.ndarray | None:
        if self.y_ is None:
            return None
        if task != "classification":
            y = self.y_
            if not np.issubdtype(y.dtype, np.number):
                raise DataError(
                    f"Regression labels y must be numeric. Got dtype {y.dtype} instead."
                )
            return y.astype(np.float64)
        y = self.y_.reshape(-1) if self.y_.ndim == 2 and self.y_.shape[1] == 1 else self.y_
        if y.ndim != 1:
            raise DataError(
                f"Classification labels y must be 1-D class labels. Got shape {y.shape} instead."
            )
        return label_indices(y, classes=self.model_.classes_, n_classes=self.model_.n_outputs)

    def _clean(self, store: Any) -> tuple[Job, float, list[str]]:
        """Validate the model on the data and compute the clean outputs; nothing is stored yet."""
        try:
            # The clean pass validates the model on the data before anything is stored.
            job = Job(
                model=self.model_,
                X=self.X_,
                y_index=None,
                clean=np.empty(0),
                task="",
                n_outputs=0,
                classes=None,
                perturbations=self.perts_,
                magnitudes=self.mags_,
                root=0,
                block_rows=self.block_rows_,
                batch_size=self.batch_size_,
                n_bins=self.n_bins,
            )
            t0 = time.perf_counter()
            first = job.predict(self.X_[: min(job.chunk_rows, self.X_.shape[0])], 0)
            job.task = self.model_.task
            job.n_outputs = self.model_.n_outputs or (1 if first.ndim == 1 else first.shape[1])
            job.classes = self.model_.classes_
            chosen = check_metrics(self.metrics, job.task, has_labels=self.y_ is not None)
            job.y_index = self._label_index(job.task)
            self._clean_pass(job, first)
            clean_seconds = time.perf_counter() - t0

        except BaseException:
            if store is not None and store is not self.store:
                store.close()
            raise
        return job, clean_seconds, chosen

    def _open_store(self) -> Any:
        if self.store is None:
            if self.resume:
                raise ParameterError(
                    "The 'resume' parameter of sweep needs a store (store='sqlite:///runs.db')."
                )
            return None
        from perturbkit.store import Store

        return self.store if isinstance(self.store, Store) else Store(self.store)

    def run(self, cells: Iterable[Cell] | None = None) -> SweepResult:
        """Compute the grid (or the given cells) and return the tidy result."""
        t_start = time.perf_counter()
        self._prepare()
        self.__dict__.pop("_stored_table", None)
        # Hashing the data releases the GIL: it runs beside the clean pass.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            data_fp = pool.submit(data_fingerprint, self.X_, self.y_)
            store = self._open_store()
            job, clean_seconds, chosen = self._clean(store)
            self._data_fp = data_fp.result()
        fp = self.fingerprint()

        run_id, root, done = None, self._root_given, set()
        if store is not None and self.resume:
            prev = store.find_resumable(fp)
            if prev is not None and (root is None or int(prev["root_seed"]) == root):
                run_id, root = prev["run_id"], int(prev["root_seed"])
                done = store.stored_cells(run_id)
                store.reopen_run(run_id)
        if root is None:
            root = root_entropy(None)
        job.root = root

        keep = set(chosen)
        clean_rows = [
            (r.metric, r.group, r.value)
            for r in job.clean_stats.result(job.clean_stats, job.classes)
        ]
        baseline = {
            m: v
            for m, g, v in clean_rows
            if g == "" and m in keep and not m.endswith(("_drop", "_increase"))
        }
        cells = self.plan() if cells is None else list(cells)
        meta = self._meta(run_id, root, fp, job, chosen)
        meta["baseline"] = baseline
        meta["baseline_by_class"] = {
            f"{m}[{g}]": v for m, g, v in clean_rows if g and m in ("recall", "predicted_share")
        }
        if store is not None and run_id is None:
            run_id = uuid.uuid4().hex[:12]
            meta["run_id"] = run_id
            store.create_run(
                run_id=run_id,
                name=meta["name"],
                fingerprint=fp,
                root_seed=root,
                config=meta["config"],
                meta=meta,
            )
        elif run_id is None:
            run_id = uuid.uuid4().hex[:12]
            meta["run_id"] = run_id

        results: list[tuple[Cell, float, list[tuple[str, str, float]]]] = []

        groups, zero_cells = self._groups(cells, done)
        n_work = sum(len(g.magnitude_indices) for g in groups) * job.n_chunks()
        status = "failed"
        try:
            for c in zero_cells:
                mag = float(self.mags_[c.perturbation_index][c.magnitude_index])
                res = CellResult(c, mag, clean_rows, 0.0)
                self._emit(store, run_id, res, keep, results)
            with _progress(self.progress, n_work) as tick:
                for g in groups:
                    for res in compute_group(job, g, on_chunk=tick):
                        self._emit(store, run_id, res, keep, results)
            if store is not None:
                for c in cells:
                    key = (self.pert_id(c.perturbation_index), c.magnitude_index, c.repeat)
                    if key in done:
                        results.extend(self._reload_cells(store, run_id, [c]))
            # A run of some of the grid's cells stays resumable: not "complete".
            whole = {(c.perturbation_index, c.magnitude_index, c.repeat) for c in self.plan()}
            given = {(c.perturbation_index, c.magnitude_index, c.repeat) for c in cells}
            status = "complete" if given >= whole else "interrupted"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            meta["timings"] = {
                "clean_seconds": clean_seconds,
                "total_seconds": time.perf_counter() - t_start,
            }
            meta["status"] = status
            if store is not None:
                store.finish_run(
                    run_id,
                    status=status,
                    meta_update={"timings": meta["timings"], "status": status},
                )
                if store is not self.store:
                    store.close()
        return SweepResult(self._table(results), meta)

    def _groups(
        self, cells: list[Cell], done: set[tuple[str, int, int]]
    ) -> tuple[list[Group], list[Cell]]:
        todo: dict[tuple[int, int], list[int]] = {}
        zero: list[Cell] = []
        for c in sorted(set(cells)):
            if (
                not (0 <= c.perturbation_index < len(self.perts_))
                or not (0 <= c.magnitude_index < len(self.mags_[c.perturbation_index]))
                or not (0 <= c.repeat < self.repeats)
            ):
                raise ParameterError(f"Cell {c} is not in this sweep's grid; see Sweep.plan().")
            if (self.pert_id(c.perturbation_index), c.magnitude_index, c.repeat) in done:
                continue
            if self.mags_[c.perturbation_index][c.magnitude_index] == 0:
                zero.append(c)
            else:
                todo.setdefault((c.perturbation_index, c.repeat), []).append(c.magnitude_index)
        groups = [Group(pi, r, tuple(mis)) for (pi, r), mis in todo.items()]
        return groups, zero

    def _emit(
        self,
        store: Any,
        run_id: str,
        res: CellResult,
        keep: set[str],
        results: list[tuple[Cell, float, list[tuple[str, str, float]]]],
    ) -> None:
        rows = [r for r in res.rows if r[0] in keep]
        if store is not None:
            p = self.perts_[res.cell.perturbation_index]
            params = canonical_json(p.get_params())
            store.write_cell(
                run_id,
                pert_id=self.pert_id(res.cell.perturbation_index),
                magnitude_index=res.cell.magnitude_index,
                repeat=res.cell.repeat,
                magnitude=res.magnitude,
                seconds=res.seconds,
                rows=[
                    {
                        "perturbation": p.name,
                        "version": p.version,
                        "params": params,
                        "magnitude": res.magnitude,
                        "repeat": res.cell.repeat,
                        "metric": m,
                        "group": g,
                        "value": v,
                    }
                    for m, g, v in rows
                ],
            )
        results.append((res.cell, res.magnitude, rows))

    def _reload_cells(
        self, store: Any, run_id: str, cells: list[Cell]
    ) -> list[tuple[Cell, float, list[tuple[str, str, float]]]]:
        if not hasattr(self, "_stored_table"):
            _, self._stored_table = store.load_run(run_id)
        t = self._stored_table
        out = []
        for c in cells:
            p = self.perts_[c.perturbation_index]
            mag = float(self.mags_[c.perturbation_index][c.magnitude_index])
            sel = t[
                (t["perturbation"] == p.name)
                & (t["params"] == canonical_json(p.get_params()))
                & (t["magnitude"] == mag)
                & (t["repeat"] == c.repeat)
            ]
            out.append((c, mag, list(zip(sel["metric"], sel["group"], sel["value"]))))
        return out

    def _table(
        self, results: list[tuple[Cell, float, list[tuple[str, str, float]]]]
    ) -> pd.DataFrame:
        records = []
        for cell, mag, rows in sorted(results, key=lambda r: r[0]):
            p = self.perts_[cell.perturbation_index]
            params = canonical_json(p.get_params())
            for m, g, v in sorted(rows, key=lambda r: (r[0], r[1])):
                records.append((p.name, p.version, params, mag, cell.repeat, m, g, float(v)))
        t = pd.DataFrame.from_records(records, columns=TABLE_COLUMNS)
        return t.astype(
            {
                "perturbation": "str",
                "version": "int64",
                "params": "str",
                "magnitude": "float64",
                "repeat": "int64",
                "metric": "str",
                "group": "str",
                "value": "float64",
            }
        )

    def _meta(
        self, run_id: str | None, root: int, fp: str, job: Job, chosen: list[str]
    ) -> dict[str, Any]:
        config = {
            "perturbations": [p.to_dict() for p in self.perts_],
            "magnitudes": [m.tolist() for m in self.mags_],
            "repeats": self.repeats,
            "metrics": chosen,
            "batch_size": self.batch_size_,
            "block_rows": self.block_rows_,
            "n_bins": self.n_bins,
            "task": job.task,
        }
        return {
            "run_id": run_id,
            "name": self.name or "sweep",
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "root_seed": root,
            "seed_given": self._root_given is not None,
            "seeding": "SeedSequence(root, spawn_key=(pert_key, repeat, block)); "
            "common random numbers across magnitudes",
            "fingerprint": fp,
            "config": config,
            "perturbations": [
                {
                    "id": p.id,
                    "label": p.label,
                    "key": f"{p.key:016x}",
                    "unit": p.unit,
                    **p.to_dict(),
                }
                for p in self.perts_
            ],
            "task": job.task,
            "n_outputs": job.n_outputs,
            "classes": None if job.classes is None else canonical(np.asarray(job.classes).tolist()),
            "n_rows": int(self.X_.shape[0]),
            "n_features": int(np.prod(self.X_.shape[1:])) if self.X_.ndim > 1 else 1,
            "feature_names": self.feature_names,
            "has_labels": self.y_ is not None,
            "model": {
                "description": self.model_.description,
                "fingerprint": self.model_.fingerprint(),
            },
            "data_fingerprint": self._data_fp,
            "environment": environment(),
        }


class _progress:
    """A rich progress bar with ETA over model calls, or nothing."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled and total > 0
        self.total = total

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("[bold]sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("batches"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            transient=False,
        )
        self._bar.__enter__()
        task = self._bar.add_task("sweep", total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self._bar.__exit__(*exc)


def sweep(
    model: Any,
    X: Any,
    y: Any = None,
    *,
    perturbations: Sequence[Any],
    magnitudes: Sequence[float] | Mapping[str, Sequence[float]],
    repeats: int = 1,
    seed: SeedLike = None,
    batch_size: int | None = None,
    metrics: Iterable[str] | None = None,
    store: Any = None,
    progress: bool = True,
    resume: bool = False,
    reference: Any = None,
    task: str | None = None,
    name: str | None = None,
    block_rows: int | None = None,
) -> SweepResult:
    """Sweep perturbations × magnitudes × repeats over ``(X, y)`` and measure what moves.

    Args:
        model: anything :func:`perturbkit.wrap` accepts (scikit-learn, torch,
            ONNX, a callable) or a wrapped Model.
        X: data, ``(n, d)`` array or DataFrame (numeric, finite).
        y: labels, optional; without them only label-free metrics are computed.
        perturbations: Perturbation instances, registry names or ``{name, params}`` dicts.
        magnitudes: one grid for all, or a mapping from perturbation label or
            name to its grid. Each perturbation documents its unit. Magnitude
            0 is the clean baseline, computed once.
        repeats: independent noise draws per (perturbation, magnitude).
        seed: root seed; None draws one and records it in ``meta["root_seed"]``.
        batch_size: rows per model call (rounded to whole logical blocks); default:
            8,192 rows, fewer for wide rows (about 64 MB of input per call).
        metrics: metric names to keep (see :mod:`perturbkit.metrics`); None keeps all.
        store: a :class:`perturbkit.Store` or URL; each finished cell is written
            in one transaction.
        progress: show a progress bar with ETA.
        resume: continue the newest stored run with the same model, data and grid.
        reference: data to learn feature statistics from (default: ``X``).
        task: ``"classification"`` or ``"regression"`` where it cannot be inferred.
        name: a name for the run.
        block_rows: rows per logical block, the unit that owns a random stream;
            default: 1,024 rows, fewer for wide rows such as images (a power of two
            keeping a block near 4 MB). It is a deterministic function of the row's
            shape and dtype, recorded in ``meta``; it is part of the streams' identity.

    Returns:
        A :class:`SweepResult` (tidy ``table``, ``meta``, ``summary()``).
    """
    return Sweep(
        model,
        X,
        y,
        perturbations=perturbations,
        magnitudes=magnitudes,
        repeats=repeats,
        seed=seed,
        batch_size=batch_size,
        metrics=metrics,
        store=store,
        progress=progress,
        resume=resume,
        reference=reference,
        task=task,
        name=name,
        block_rows=block_rows,
    ).run()
