"""One transaction per cell: a failed or killed write leaves no half cell."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _store_helpers import make_rows, new_run, write

from perturbkit.exceptions import StoreError
from perturbkit.store import Store


def count(db_path: Path, table: str) -> int:
    engine = sa.create_engine(f"sqlite:///{db_path}")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


@contextmanager
def failing_metric_insert(store: Store, error: BaseException) -> Iterator[None]:
    """Raise ``error`` when the metric rows are sent, after the cell row went in."""
    engine = store._engine

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO METRICS"):
            raise error

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


@pytest.mark.parametrize("error", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_a_failure_mid_cell_leaves_neither_cell_nor_metrics(
    store: Store, tmp_path: Path, error: BaseException
) -> None:
    run_id = new_run(store)
    write(store, run_id, "gaussian_noise@1", 0, 0)
    with failing_metric_insert(store, error), pytest.raises(type(error)):
        write(store, run_id, "gaussian_noise@1", 1, 0)
    assert store.stored_cells(run_id) == {("gaussian_noise@1", 0, 0)}
    db = tmp_path / "perturbkit.db"
    assert count(db, "cells") == 1
    assert count(db, "metrics") == 3
    # The cell can be written afterwards, as a resumed sweep would.
    write(store, run_id, "gaussian_noise@1", 1, 0)
    assert len(store.load_run(run_id)[1]) == 6


def test_a_killed_process_leaves_no_half_cell(tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    with Store(db) as store:
        run_id = new_run(store)
    script = textwrap.dedent(
        f"""
        import os
        import sqlalchemy as sa
        from perturbkit.store import Store

        store = Store({str(db)!r})

        def die(conn, cursor, statement, *args):
            if statement.lstrip().upper().startswith("INSERT INTO METRICS"):
                os._exit(9)  # killed after the cell row, before its metrics

        sa.event.listen(store._engine, "before_cursor_execute", die)
        rows = [dict(perturbation="p", version=1, params="{{}}", magnitude=0.5, repeat=0,
                     metric="accuracy", group="", value=0.5)]
        store.write_cell({run_id!r}, pert_id="p@1", magnitude_index=0, repeat=0,
                         magnitude=0.5, seconds=1.0, rows=rows)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == 9, proc.stderr.decode()
    with Store(db) as store:
        assert store.stored_cells(run_id) == set()
        assert store.load_run(run_id)[0]["n_cells"] == 0
    assert count(db, "metrics") == 0


def test_a_bad_row_is_refused_before_anything_is_written(store: Store, tmp_path: Path) -> None:
    run_id = new_run(store)
    rows = make_rows()
    rows[2]["value"] = "0.9"
    with pytest.raises(StoreError, match=r"'value' of Metric row 2 .* must be a float"):
        write(store, run_id, "gaussian_noise@1", 0, 0, rows=rows)
    assert count(tmp_path / "perturbkit.db", "cells") == 0
    assert count(tmp_path / "perturbkit.db", "metrics") == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("group"), "missing group"),
        (lambda r: r.update(pert_id="x"), "extra pert_id"),
        (lambda r: r.update(version=True), "'version' .* must be an int"),
        (lambda r: r.update(version=1.5), "'version' .* must be an int"),
        (lambda r: r.update(metric=None), "'metric' .* must be a str"),
        (lambda r: r.update(magnitude=float("nan")), "'magnitude' .* not NaN"),
    ],
)
def test_malformed_rows_get_one_line(store: Store, change: Any, message: str) -> None:
    run_id = new_run(store)
    rows = make_rows()
    change(rows[0])
    with pytest.raises(StoreError, match=message) as info:
        write(store, run_id, "gaussian_noise@1", 0, 0, rows=rows)
    assert "\n" not in str(info.value)
    assert store.stored_cells(run_id) == set()


def test_writing_a_stored_cell_again_is_refused_and_changes_nothing(store: Store) -> None:
    run_id = new_run(store)
    write(store, run_id, "gaussian_noise@1", 0, 0)
    _, before = store.load_run(run_id)
    rows = make_rows(values={("accuracy", ""): 0.1})
    with pytest.raises(StoreError, match=r"already stored .* not rewritten"):
        write(store, run_id, "gaussian_noise@1", 0, 0, rows=rows)
    _, after = store.load_run(run_id)
    assert after.equals(before)


def test_writing_to_an_unknown_run_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match=r"No run 'nope' in sqlite:///.*create_run"):
        write(store, "nope", "gaussian_noise@1", 0, 0)


def test_a_cell_without_metric_rows_is_a_stored_cell(store: Store) -> None:
    run_id = new_run(store)
    write(store, run_id, "gaussian_noise@1", 0, 0, rows=[])
    assert store.stored_cells(run_id) == {("gaussian_noise@1", 0, 0)}


def test_thousands_of_cells_write_fast(store: Store) -> None:
    run_id = new_run(store)
    rows = make_rows(values={(f"m{i}", str(g)): 0.5 for i in range(10) for g in range(3)})
    start = time.perf_counter()
    for i in range(2000):
        write(store, run_id, f"p{i // 100}@1", (i // 10) % 10, i % 10, rows=rows)
    elapsed = time.perf_counter() - start
    assert len(store.stored_cells(run_id)) == 2000
    assert len(store.load_run(run_id)[1]) == 60_000
    assert elapsed < 30, f"2,000 cells of 30 rows took {elapsed:.1f} s"
