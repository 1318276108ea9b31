"""Several stores and processes on one SQLite file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _store_helpers import new_run, write

from perturbkit.store import Store

WRITER = textwrap.dedent(
    """
    import sys, time
    from perturbkit.store import Store

    path, run_id, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
    while time.time() < start:  # open together, to race on creating the schema
        time.sleep(0.001)
    with Store(path) as store:
        store.create_run(run_id=run_id, name=run_id, fingerprint="fp", root_seed=1,
                         config={}, meta={})
        for i in range(40):
            rows = [dict(perturbation="p", version=1, params="{}", magnitude=0.1 * i,
                         repeat=0, metric="accuracy", group="", value=i / 40)]
            store.write_cell(run_id, pert_id="p@1", magnitude_index=i, repeat=0,
                             magnitude=0.1 * i, seconds=0.0, rows=rows)
        store.finish_run(run_id, status="complete")
    """
)


def test_processes_creating_and_writing_one_store_at_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"run-{k}", str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for k in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    with Store(path) as store:
        runs = store.list_runs()
        assert sorted(runs["run_id"]) == [f"run-{k}" for k in range(4)]
        assert runs["n_cells"].tolist() == [40] * 4
        assert set(runs["status"]) == {"complete"}
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT count(*) FROM perturbkit_schema").fetchone() == (1,)
        assert raw.execute("SELECT count(*) FROM metrics").fetchone() == (160,)
    finally:
        raw.close()


def test_two_stores_on_one_file_see_each_other(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with Store(path) as a, Store(path) as b:
        new_run(a, "r1")
        write(a, "r1", "p@1", 0, 0)
        write(b, "r1", "p@1", 1, 0)
        assert a.stored_cells("r1") == b.stored_cells("r1") == {("p@1", 0, 0), ("p@1", 1, 0)}
    with Store(path) as c:  # reopened
        assert c.load_run("r1")[0]["n_cells"] == 2


def test_reopen_and_read_while_another_client_is_writing(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    with Store(path) as store:
        new_run(store, "r1")
        write(store, "r1", "p@1", 0, 0)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # holds the write lock
        writer.execute("UPDATE runs SET name = 'in flight'")
        started = time.perf_counter()
        with Store(path) as store:  # opening a current store takes no write lock
            record, table = store.load_run("r1")  # WAL: readers are not blocked
        assert time.perf_counter() - started < 5
        assert record["name"] == "demo" and len(table) == 3
        writer.execute("COMMIT")
    finally:
        writer.close()
    with Store(path) as store:
        assert store.load_run("r1")[0]["name"] == "in flight"


def test_switching_to_wal_retries_while_locked() -> None:
    """PRAGMA journal_mode=WAL can fail with "database is locked" at once, without
    SQLite's busy handler (seen when several processes open a new store together):
    the switch is retried until the busy timeout, then the error is raised."""
    import sqlite3

    from perturbkit.store.store import _set_wal

    class Cursor:
        def __init__(self, failures: int) -> None:
            self.failures = failures
            self.calls = 0

        def execute(self, sql: str) -> None:
            self.calls += 1
            if self.calls <= self.failures:
                raise sqlite3.OperationalError("database is locked")

    ok = Cursor(failures=3)
    _set_wal(ok, timeout_s=5.0)
    assert ok.calls == 4
    stuck = Cursor(failures=10**9)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _set_wal(stuck, timeout_s=0.05)
    assert stuck.calls > 1
