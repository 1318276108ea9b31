"""``Store``: runs, cells and metric rows over SQLAlchemy Core.

One store is one database: ``sqlite:///perturbkit.db`` by default, or a
PostgreSQL URL for a team's shared store; both behave the same. What is
stored:

- a **run**: ``run_id``, ``name``, ``fingerprint`` (of model, data and grid:
  what :meth:`Store.find_resumable` matches), ``root_seed``, ``status``
  (``running``, ``complete``, ``interrupted``, ``failed``), ``config`` and
  ``meta`` (JSON: package and perturbation versions, fingerprints, timings,
  environment), the perturbkit version that created it, ``created_at`` and
  ``finished_at`` (ISO 8601, UTC);
- a **cell** per (``pert_id``, ``magnitude_index``, ``repeat``) with its
  magnitude and the seconds it took;
- its **metric rows**: perturbation, version, params, magnitude, repeat,
  metric, group and value.

A cell and its metric rows are written in one transaction, so a run killed
at any point leaves whole cells or none, and :meth:`Store.stored_cells`
tells a resumed sweep what to skip. A stored cell is immutable: writing it
again raises :class:`~perturbkit.exceptions.StoreError`.

Bit for bit: floats are IEEE doubles end to end (``-0.0``, subnormals and
infinities included); a NaN value is stored as NULL and read back as NaN
(its payload bits are not kept).
"""

from __future__ import annotations

import json
import math
import numbers
import operator
import os
import sqlite3
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timezone
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import StaticPool

from perturbkit.exceptions import StoreError
from perturbkit.store import migrations
from perturbkit.store._url import describe, missing_driver, parse_url, sqlite_path
from perturbkit.store.schema import cells, metrics, runs

__all__ = ["DEFAULT_URL", "FINAL_STATUSES", "TABLE_COLUMNS", "Store"]

DEFAULT_URL = "sqlite:///perturbkit.db"
TABLE_COLUMNS = (
    "perturbation",
    "version",
    "params",
    "magnitude",
    "repeat",
    "metric",
    "group",
    "value",
)
"""The columns of the tidy table :meth:`Store.load_run` returns, in order."""
FINAL_STATUSES = ("complete", "interrupted", "failed")

_BUSY_TIMEOUT_S = 60.0
_IMMEDIATE = "perturbkit_immediate"  # execution option: BEGIN IMMEDIATE on SQLite
_PG_LOCK_KEY = 0x7065727475726B  # "perturk": the advisory lock held while migrating
_STR_KEYS = ("perturbation", "params", "metric", "group")
_INT_KEYS = ("version", "repeat")
_ROW_KEYS = frozenset(TABLE_COLUMNS)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    line = text.splitlines()[0].strip() if text else type(exc).__name__
    return line.rstrip(".")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    raise TypeError(f"a value of type {type(obj).__name__} is not JSON: {obj!r}")


def _dumps(obj: Mapping[str, Any], what: str) -> str:
    if not isinstance(obj, Mapping):
        raise StoreError(f"The {what} must be a dict. Got {type(obj).__name__} instead.")
    try:
        return json.dumps(dict(obj), allow_nan=True, default=_json_default, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"The {what} cannot be stored as JSON ({exc}); "
            "use str, int, float, bool, None, lists and dicts."
        ) from exc


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise StoreError(f"{what} must be an int. Got {value!r} instead.")
    try:
        return operator.index(value)
    except TypeError:
        raise StoreError(
            f"{what} must be an int. Got {type(value).__name__} {value!r} instead."
        ) from None


def _as_float(value: Any, what: str, *, nan_ok: bool) -> float | None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise StoreError(f"{what} must be a float. Got {type(value).__name__} {value!r} instead.")
    f = float(value)
    if math.isnan(f):
        if nan_ok:
            return None
        raise StoreError(f"{what} must be a float that is not NaN. Got nan instead.")
    return f


def _as_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise StoreError(f"{what} must be a str. Got {type(value).__name__} {value!r} instead.")
    return str(value)


def _make_engine(url: sa.URL) -> sa.Engine:
    """The engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    shown = describe(url)
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {}
    path = None
    if backend == "sqlite":
        path = sqlite_path(url)
        connect_args: dict[str, Any] = {"timeout": _BUSY_TIMEOUT_S}
        if path is None:
            # One shared connection, or every pooled connection is a new empty database.
            kwargs["poolclass"] = StaticPool
            connect_args["check_same_thread"] = False
        else:
            folder = path.expanduser().absolute().parent
            if not folder.is_dir():
                raise StoreError(
                    f"The store URL {shown!r} points into the folder '{folder}', which "
                    "does not exist; create the folder or choose another path."
                )
            if path.is_dir():
                raise StoreError(
                    f"The store URL {shown!r} points to '{path}', which is a folder; "
                    "name a database file such as perturbkit.db inside it."
                )
        kwargs["connect_args"] = connect_args
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = sa.create_engine(url, **kwargs)
    except ImportError as exc:
        raise missing_driver(url, exc) from exc
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"The store URL {shown!r} is not valid: {_first_line(exc)}.") from exc
    if backend == "sqlite":
        _configure_sqlite(engine, wal=path is not None)
    return engine


def _configure_sqlite(engine: sa.Engine, *, wal: bool) -> None:
    # pysqlite's own transaction handling does not BEGIN before DDL or SELECT;
    # hand it to SQLAlchemy so that migrations and read-then-write are atomic
    # (the recipe in SQLAlchemy's SQLite dialect documentation).
    busy_ms = int(_BUSY_TIMEOUT_S * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if wal:
                _set_wal(cursor, busy_ms / 1000.0)
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _set_wal(cursor: Any, timeout_s: float) -> None:
    """Switch to WAL, retrying while another process holds the lock.

    Changing the journal mode can fail with "database is locked" at once,
    without SQLite's busy handler (several processes opening a new store
    together); retry with a short back-off until the busy timeout.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class Store:
    """The results store: runs, cells and metric rows in a SQL database.

    ``url`` is a SQLAlchemy URL (``sqlite:///perturbkit.db`` by default, or
    ``postgresql+psycopg://user:password@host/dbname``) or a file path ending
    in ``.db``, ``.sqlite`` or ``.sqlite3``. Opening creates the schema, or
    migrates an older one, and checks that the database can be reached;
    anything wrong is one line in a :class:`~perturbkit.exceptions.StoreError`.

    ``url`` (the attribute) is the URL with any password masked. Use the
    store as a context manager, or call :meth:`close`.

    Examples
    --------
    >>> with Store("sqlite:///results.db") as store:  # doctest: +SKIP
    ...     info, table = store.load_run("3f2a")
    """

    url: str

    def __init__(self, url: str | os.PathLike[str] = DEFAULT_URL) -> None:
        parsed = parse_url(url)
        self.url = describe(parsed)
        self._backend = parsed.get_backend_name()
        self._engine: sa.Engine | None = None
        engine = _make_engine(parsed)
        self._close_engine = weakref.finalize(self, engine.dispose)
        self._engine = engine
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # -- lifecycle -------------------------------------------------------

    def _open(self) -> None:
        try:
            with self._live().connect() as conn:
                version = migrations.current_version(conn)
            if version == migrations.SCHEMA_VERSION:
                return
            with self._transaction("set up the schema") as conn:
                if self._backend == "postgresql":
                    lock = sa.text("SELECT pg_advisory_xact_lock(:key)")
                    conn.execute(lock, {"key": _PG_LOCK_KEY})
                migrations.upgrade(conn, where=self.url)
        except StoreError:
            raise
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            raise StoreError(f"Cannot open the store at {self.url}: {_first_line(exc)}.") from exc

    def close(self) -> None:
        """Release the database connections; the store cannot be used after."""
        self._engine = None
        self._close_engine()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def _live(self) -> sa.Engine:
        if self._engine is None:
            raise StoreError(f"The store at {self.url} is closed; open a new Store.")
        return self._engine

    @contextmanager
    def _transaction(self, action: str, *, write: bool = True) -> Iterator[sa.Connection]:
        """One transaction; database errors become a one-line StoreError.

        ``IntegrityError`` is left to the caller, which knows what it means.
        """
        engine = self._live()
        try:
            with engine.connect() as conn:
                if write:
                    conn.execution_options(**{_IMMEDIATE: True})
                with conn.begin():
                    yield conn
        except (StoreError, sa.exc.IntegrityError):
            raise
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            raise StoreError(f"Could not {action} in {self.url}: {_first_line(exc)}.") from exc

    # -- runs ------------------------------------------------------------

    def create_run(
        self,
        *,
        run_id: str,
        name: str,
        fingerprint: str,
        root_seed: int,
        config: Mapping[str, Any],
        meta: Mapping[str, Any],
    ) -> None:
        """Store a new run with status ``running``."""
        run_id = _as_str(run_id, "The run_id of Store.create_run")
        if not run_id:
            raise StoreError("The run_id of Store.create_run must be a non-empty str. Got ''.")
        seed = _as_int(root_seed, "The root_seed of Store.create_run")
        if seed < 0:
            raise StoreError(
                f"The root_seed of Store.create_run must be an int >= 0. Got {seed} instead."
            )
        values = {
            "run_id": run_id,
            "name": _as_str(name, "The name of Store.create_run"),
            "fingerprint": _as_str(fingerprint, "The fingerprint of Store.create_run"),
            "root_seed": str(seed),
            "status": "running",
            "config": _dumps(config, f"config of run {run_id!r}"),
            "meta": _dumps(meta, f"meta of run {run_id!r}"),
            "perturbkit_version": migrations._package_version(),
            "created_at": _now(),
            "finished_at": None,
        }
        try:
            with self._transaction(f"create run {run_id!r}") as conn:
                conn.execute(sa.insert(runs).values(**values))
        except sa.exc.IntegrityError as exc:
            raise StoreError(
                f"A run {run_id!r} is already stored in {self.url}; "
                "choose another run_id, or resume that run."
            ) from exc

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        meta_update: Mapping[str, Any] | None = None,
    ) -> None:
        """Set the run's final ``status``, merge ``meta_update`` into its meta."""
        if status not in FINAL_STATUSES:
            raise StoreError(
                f"The status of Store.finish_run must be one of "
                f"{', '.join(repr(s) for s in FINAL_STATUSES)}. Got {status!r} instead."
            )
        self._set_status(run_id, status=status, finished_at=_now(), meta_update=meta_update)

    def reopen_run(self, run_id: str, *, meta_update: Mapping[str, Any] | None = None) -> None:
        """Mark a stored run ``running`` again (a resumed sweep); clears ``finished_at``."""
        self._set_status(run_id, status="running", finished_at=None, meta_update=meta_update)

    def _set_status(
        self,
        run_id: str,
        *,
        status: str,
        finished_at: str | None,
        meta_update: Mapping[str, Any] | None,
    ) -> None:
        update = {} if meta_update is None else meta_update
        _dumps(update, f"meta_update of run {run_id!r}")  # fail before the transaction
        with self._transaction(f"update run {run_id!r}") as conn:
            row = conn.execute(
                sa.select(runs.c.meta).where(runs.c.run_id == run_id).with_for_update()
            ).first()
            if row is None:
                raise self._no_run(run_id)
            meta = json.loads(row.meta)
            meta.update(update)
            conn.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id)
                .values(
                    status=status,
                    finished_at=finished_at,
                    meta=_dumps(meta, f"meta of run {run_id!r}"),
                )
            )

    def find_resumable(self, fingerprint: str) -> dict[str, Any] | None:
        """The newest run with this fingerprint, whatever its status, or ``None``.

        The dict is the run record of :meth:`load_run`.
        """
        with self._transaction("look up runs", write=False) as conn:
            row = conn.execute(
                self._runs_query().where(runs.c.fingerprint == fingerprint).limit(1)
            ).first()
        return None if row is None else self._record(row)

    def list_runs(self) -> pd.DataFrame:
        """One row per run, newest first.

        Columns: run_id, name, status, created_at, finished_at (UTC
        timestamps), n_cells, root_seed, fingerprint.
        """
        with self._transaction("list runs", write=False) as conn:
            rows = conn.execute(self._runs_query()).all()
        columns = ["run_id", "name", "status", "created_at", "finished_at"]
        columns += ["n_cells", "root_seed", "fingerprint"]
        return pd.DataFrame(
            {
                "run_id": pd.Series([r.run_id for r in rows], dtype="str"),
                "name": pd.Series([r.name for r in rows], dtype="str"),
                "status": pd.Series([r.status for r in rows], dtype="str"),
                "created_at": pd.to_datetime([r.created_at for r in rows], utc=True),
                "finished_at": pd.to_datetime([r.finished_at for r in rows], utc=True),
                "n_cells": np.array([r.n_cells for r in rows], dtype=np.int64),
                "root_seed": pd.Series([int(r.root_seed) for r in rows], dtype=object),
                "fingerprint": pd.Series([r.fingerprint for r in rows], dtype="str"),
            },
            columns=columns,
        )

    def load_run(self, run_id: str) -> tuple[dict[str, Any], pd.DataFrame]:
        """The run record and its tidy table; ``run_id`` may be a unique prefix.

        The record holds run_id, name, fingerprint, root_seed, status, config,
        meta, perturbkit_version, created_at, finished_at and n_cells. The
        table has :data:`TABLE_COLUMNS`, one row per cell × metric × group,
        ordered by perturbation (in the order their first cell was stored),
        magnitude_index, repeat, metric, group (code-point order on every
        backend). A NaN value is NaN; every other float is the stored bits.
        """
        with self._transaction("load a run", write=False) as conn:
            row = self._resolve(conn, run_id)
            query = (
                sa.select(
                    metrics.c.id,
                    cells.c.id.label("cell_id"),
                    cells.c.pert_id,
                    cells.c.magnitude_index,
                    *(metrics.c[name] for name in TABLE_COLUMNS),
                )
                .select_from(metrics.join(cells, metrics.c.cell_id == cells.c.id))
                .where(metrics.c.run_id == row.run_id)
                .order_by(metrics.c.id)
            )
            result = conn.execute(query).all()
        return self._record(row), _tidy(result)

    def load_cells(self, run_id: str) -> pd.DataFrame:
        """The run's cells in the order stored: pert_id, magnitude_index,
        repeat, magnitude, seconds, created_at; ``run_id`` may be a unique prefix."""
        with self._transaction("load cells", write=False) as conn:
            row = self._resolve(conn, run_id)
            result = conn.execute(
                sa.select(
                    cells.c.pert_id,
                    cells.c.magnitude_index,
                    cells.c.repeat,
                    cells.c.magnitude,
                    cells.c.seconds,
                    cells.c.created_at,
                )
                .where(cells.c.run_id == row.run_id)
                .order_by(cells.c.id)
            ).all()
        return pd.DataFrame(
            {
                "pert_id": pd.Series([r.pert_id for r in result], dtype="str"),
                "magnitude_index": np.array([r.magnitude_index for r in result], dtype=np.int64),
                "repeat": np.array([r.repeat for r in result], dtype=np.int64),
                "magnitude": np.array([r.magnitude for r in result], dtype=np.float64),
                "seconds": np.array([r.seconds for r in result], dtype=np.float64),
                "created_at": pd.to_datetime([r.created_at for r in result], utc=True),
            }
        )

    def delete_run(self, run_id: str) -> None:
        """Delete a run with its cells and metric rows; ``run_id`` may be a unique prefix."""
        with self._transaction(f"delete run {run_id!r}") as conn:
            full = self._resolve(conn, run_id).run_id
            conn.execute(sa.delete(metrics).where(metrics.c.run_id == full))
            conn.execute(sa.delete(cells).where(cells.c.run_id == full))
            conn.execute(sa.delete(runs).where(runs.c.run_id == full))

    # -- cells -----------------------------------------------------------

    def stored_cells(self, run_id: str) -> set[tuple[str, int, int]]:
        """``(pert_id, magnitude_index, repeat)`` of every cell stored for the run.

        ``run_id`` is exact; an unknown run has no cells.
        """
        with self._transaction("list stored cells", write=False) as conn:
            result = conn.execute(
                sa.select(cells.c.pert_id, cells.c.magnitude_index, cells.c.repeat).where(
                    cells.c.run_id == run_id
                )
            ).all()
        return {(str(p), int(m), int(r)) for p, m, r in result}

    def write_cell(
        self,
        run_id: str,
        *,
        pert_id: str,
        magnitude_index: int,
        repeat: int,
        magnitude: float,
        seconds: float,
        rows: Sequence[Mapping[str, Any]],
    ) -> None:
        """Store one cell and its metric rows in one transaction.

        Each row has exactly the keys of :data:`TABLE_COLUMNS`: perturbation
        (str), version (int), params (str, canonical JSON), magnitude
        (float), repeat (int), metric (str), group (str, ``""`` for none) and
        value (float; NaN or None is stored as NULL). The rows are checked
        before anything is written. Writing a cell that is already stored
        raises :class:`~perturbkit.exceptions.StoreError` and changes nothing.
        """
        run_id = _as_str(run_id, "The run_id of Store.write_cell")
        pert_id = _as_str(pert_id, "The pert_id of Store.write_cell")
        magnitude_index = _as_int(magnitude_index, "The magnitude_index of Store.write_cell")
        repeat = _as_int(repeat, "The repeat of Store.write_cell")
        cell = (pert_id, magnitude_index, repeat)
        params = [_metric_row(i, row, cell, run_id) for i, row in enumerate(rows)]
        values = {
            "run_id": run_id,
            "pert_id": pert_id,
            "magnitude_index": magnitude_index,
            "repeat": repeat,
            "magnitude": _as_float(magnitude, "The magnitude of Store.write_cell", nan_ok=False),
            "seconds": _as_float(seconds, "The seconds of Store.write_cell", nan_ok=False),
            "created_at": _now(),
        }
        try:
            with self._transaction(f"write cell {cell} of run {run_id!r}") as conn:
                cell_id = conn.execute(sa.insert(cells).values(**values)).inserted_primary_key[0]
                if params:
                    for p in params:
                        p["run_id"] = run_id
                        p["cell_id"] = cell_id
                    conn.execute(sa.insert(metrics), params)
        except sa.exc.IntegrityError as exc:
            raise self._cell_conflict(run_id, cell, exc) from exc

    def _cell_conflict(
        self, run_id: str, cell: tuple[str, int, int], exc: sa.exc.IntegrityError
    ) -> StoreError:
        with self._transaction("look up a cell", write=False) as conn:
            has_run = conn.execute(sa.select(runs.c.id).where(runs.c.run_id == run_id)).first()
            has_cell = conn.execute(
                sa.select(cells.c.id).where(
                    cells.c.run_id == run_id,
                    cells.c.pert_id == cell[0],
                    cells.c.magnitude_index == cell[1],
                    cells.c.repeat == cell[2],
                )
            ).first()
        if has_run is None:
            return StoreError(
                f"No run {run_id!r} in {self.url} to write cell {cell} to; "
                "create it first with Store.create_run."
            )
        if has_cell is not None:
            return StoreError(
                f"Cell {cell} of run {run_id!r} is already stored in {self.url}; "
                "stored cells are not rewritten (Store.stored_cells lists them)."
            )
        return StoreError(
            f"Could not write cell {cell} of run {run_id!r} in {self.url}: {_first_line(exc)}."
        )

    # -- helpers ---------------------------------------------------------

    def _no_run(self, run_id: str) -> StoreError:
        return StoreError(f"No run {run_id!r} in {self.url}; see `perturbkit runs`.")

    def _resolve(self, conn: sa.Connection, run_id: str) -> sa.Row[Any]:
        """The run whose id is ``run_id``, or the only one it is a prefix of."""
        if not isinstance(run_id, str) or not run_id:
            raise StoreError(f"A run id must be a non-empty str. Got {run_id!r} instead.")
        exact = conn.execute(self._runs_query().where(runs.c.run_id == run_id)).first()
        if exact is not None:
            return exact
        # substr, not LIKE: LIKE ignores ASCII case on SQLite and treats % and _ as wildcards.
        prefixed = conn.execute(
            self._runs_query()
            .where(sa.func.substr(runs.c.run_id, 1, len(run_id)) == run_id)
            .limit(4)
        ).all()
        if not prefixed:
            raise self._no_run(run_id)
        if len(prefixed) > 1:
            shown = ", ".join(repr(r.run_id) for r in prefixed[:3])
            more = ", …" if len(prefixed) > 3 else ""
            raise StoreError(
                f"The run id {run_id!r} is the start of several runs in {self.url} "
                f"({shown}{more}); give more of the run id."
            )
        return prefixed[0]

    @staticmethod
    def _runs_query() -> sa.Select[Any]:
        n_cells = (
            sa.select(sa.func.count())
            .where(cells.c.run_id == runs.c.run_id)
            .correlate(runs)
            .scalar_subquery()
        )
        return sa.select(runs, n_cells.label("n_cells")).order_by(runs.c.id.desc())

    @staticmethod
    def _record(row: sa.Row[Any]) -> dict[str, Any]:
        return {
            "run_id": row.run_id,
            "name": row.name,
            "fingerprint": row.fingerprint,
            "root_seed": int(row.root_seed),
            "status": row.status,
            "config": json.loads(row.config),
            "meta": json.loads(row.meta),
            "perturbkit_version": row.perturbkit_version,
            "created_at": row.created_at,
            "finished_at": row.finished_at,
            "n_cells": int(row.n_cells),
        }


def _metric_row(
    i: int, row: Mapping[str, Any], cell: tuple[str, int, int], run_id: str
) -> dict[str, Any]:
    where = f"Metric row {i} of cell {cell} of run {run_id!r}"
    if not isinstance(row, Mapping):
        raise StoreError(f"{where} must be a dict. Got {type(row).__name__} instead.")
    if row.keys() != _ROW_KEYS:
        missing = sorted(_ROW_KEYS - row.keys())
        extra = sorted(set(row.keys()) - _ROW_KEYS, key=str)
        raise StoreError(
            f"{where} must have the keys {', '.join(TABLE_COLUMNS)}. "
            f"Got {'missing ' + ', '.join(missing) if missing else ''}"
            f"{'; ' if missing and extra else ''}"
            f"{'extra ' + ', '.join(map(str, extra)) if extra else ''} instead."
        )
    out: dict[str, Any] = {}
    for key in _STR_KEYS:
        out[key] = _as_str(row[key], f"The '{key}' of {where}")
    for key in _INT_KEYS:
        out[key] = _as_int(row[key], f"The '{key}' of {where}")
    out["magnitude"] = _as_float(row["magnitude"], f"The 'magnitude' of {where}", nan_ok=False)
    value = row["value"]
    if value is not None:
        value = _as_float(value, f"The 'value' of {where}", nan_ok=True)
    out["value"] = value
    return out


def _tidy(result: Sequence[sa.Row[Any]]) -> pd.DataFrame:
    """The tidy table from (id, cell_id, pert_id, magnitude_index, *TABLE_COLUMNS) rows."""
    width = 4 + len(TABLE_COLUMNS)
    columns = [list(c) for c in zip(*result, strict=True)] if result else [[]] * width
    row_id, cell_id, pert_id, magnitude_index = columns[:4]
    data = dict(zip(TABLE_COLUMNS, columns[4:], strict=True))
    # Perturbations in the order of their first stored cell.
    first_cell: dict[str, int] = {}
    for p, c in zip(pert_id, cell_id, strict=True):
        if c < first_cell.get(p, c + 1):
            first_cell[p] = c
    rank = {p: k for k, p in enumerate(sorted(first_cell, key=first_cell.__getitem__))}
    order = pd.DataFrame(
        {
            "pert": np.array([rank[p] for p in pert_id], dtype=np.int64),
            "magnitude_index": np.array(magnitude_index, dtype=np.int64),
            "repeat": np.array(data["repeat"], dtype=np.int64),
            "metric": np.array(data["metric"], dtype=object),
            "group": np.array(data["group"], dtype=object),
            "id": np.array(row_id, dtype=np.int64),
        }
    )
    index = order.sort_values(list(order.columns)).index.to_numpy()
    table = pd.DataFrame(
        {
            "perturbation": pd.Series(data["perturbation"], dtype="str"),
            "version": np.array(data["version"], dtype=np.int64),
            "params": pd.Series(data["params"], dtype="str"),
            "magnitude": np.array(data["magnitude"], dtype=np.float64),
            "repeat": np.array(data["repeat"], dtype=np.int64),
            "metric": pd.Series(data["metric"], dtype="str"),
            "group": pd.Series(data["group"], dtype="str"),
            "value": np.array(data["value"], dtype=np.float64),
        },
        columns=list(TABLE_COLUMNS),
    )
    return table.take(index).reset_index(drop=True)
