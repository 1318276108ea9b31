"""The same store on a real PostgreSQL server.

By default every test gets a fresh database on the session's own throwaway
PostgreSQL server (``pg_server`` in ``conftest.py``, which says what it needs
and how it skips without it). To run them against another server instead, set
``PERTURBKIT_TEST_POSTGRES_URL`` to a throwaway database there (for example
``postgresql+psycopg://user@127.0.0.1:5432/store_test``); the tests drop the
store's tables in that database.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from _store_helpers import make_rows, new_run, write
from sqlalchemy.pool import NullPool

from perturbkit.exceptions import StoreError
from perturbkit.store import SCHEMA_VERSION, TABLE_COLUMNS, Store, migrations
from perturbkit.store.migrations import Migration

ENV_URL = "PERTURBKIT_TEST_POSTGRES_URL"
TABLES = ("metrics", "cells", "runs", "perturbkit_schema")


def sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, psycopg_driver: Any) -> Iterator[str]:
    """``$PERTURBKIT_TEST_POSTGRES_URL`` with the store's tables dropped, if it is set;
    otherwise a fresh database on the session's server, dropped after the test."""
    url = os.environ.get(ENV_URL, "")
    if not url:
        server = request.getfixturevalue("pg_server")  # started only when needed
        with server.database() as fresh:
            yield fresh
        return
    drop = "; ".join(f"DROP TABLE IF EXISTS {t} CASCADE" for t in TABLES)
    sql(url, drop)
    yield url
    sql(url, drop)


@pytest.fixture
def pg(pg_url: str) -> Iterator[Store]:
    with Store(pg_url) as store:
        yield store


def test_special_floats_and_strings_round_trip_bit_for_bit(pg: Store) -> None:
    specials = [
        0.0,
        -0.0,
        5e-324,
        -5e-324,
        1.7976931348623157e308,
        math.inf,
        -math.inf,
        math.nan,
        0.1,
        1 / 3,
        2.0**63,
    ]
    run_id = new_run(pg)
    # Code-point order of metric and group, whatever the database's collation.
    names = ["b", "B", "a", "_x", "ä", "Z", "10", "9", " sp", "σ", "a-b"]
    values = {(f"m{n}", n): v for n, v in zip(names, specials, strict=True)}
    rows = make_rows(magnitude=-0.0, values=values)
    write(pg, run_id, "gaussian_noise@1", 0, 0, rows=rows, magnitude=-0.0)
    _, table = pg.load_run(run_id)
    expected = pd.DataFrame(
        sorted(rows, key=lambda r: (r["metric"], r["group"])), columns=list(TABLE_COLUMNS)
    ).astype({"version": np.int64, "repeat": np.int64, "value": np.float64})
    pd.testing.assert_frame_equal(table, expected)
    got, want = table["value"].to_numpy(), expected["value"].to_numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_array_equal(got[ok].view(np.uint64), want[ok].view(np.uint64))
    assert np.signbit(table["magnitude"].to_numpy()).all()
    assert np.signbit(pg.load_cells(run_id)["magnitude"].to_numpy()[0])


def test_runs_cells_and_lookups(pg: Store, pg_url: str) -> None:
    new_run(pg, "3f2a9c", fingerprint="fp")
    new_run(pg, "3F2", fingerprint="fp")
    write(pg, "3f2a9c", "p@1", 0, 0)
    write(pg, "3f2a9c", "p@1", 1, 0)
    assert pg.stored_cells("3f2a9c") == {("p@1", 0, 0), ("p@1", 1, 0)}
    assert pg.load_run("3f2")[0]["run_id"] == "3f2a9c"  # case-sensitive prefix
    found = pg.find_resumable("fp")
    assert found is not None and found["run_id"] == "3F2"
    pg.finish_run("3f2a9c", status="complete", meta_update={"seconds": 2.0})
    runs = pg.list_runs()
    assert runs["run_id"].tolist() == ["3F2", "3f2a9c"]
    assert runs["n_cells"].tolist() == [0, 2]
    record, _ = pg.load_run("3f2a9c")
    assert record["meta"] == {"numpy": "2.x", "seconds": 2.0}
    with pytest.raises(StoreError, match="already stored"):
        write(pg, "3f2a9c", "p@1", 0, 0)
    with pytest.raises(StoreError, match="No run 'nope'"):
        write(pg, "nope", "p@1", 0, 0)
    with pytest.raises(StoreError, match=r"No run 'zzz' in postgresql\+psycopg://"):
        pg.load_run("zzz")
    pg.delete_run("3f2a")
    assert pg.list_runs()["run_id"].tolist() == ["3F2"]
    assert sql(pg_url, "SELECT count(*) FROM metrics") == [(0,)]


def test_a_failure_mid_cell_leaves_no_half_cell(pg: Store, pg_url: str) -> None:
    run_id = new_run(pg)

    def before(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO METRICS"):
            raise RuntimeError("disk on fire")

    sa.event.listen(pg._engine, "before_cursor_execute", before)
    with pytest.raises(RuntimeError):
        write(pg, run_id, "p@1", 0, 0)
    sa.event.remove(pg._engine, "before_cursor_execute", before)
    assert pg.stored_cells(run_id) == set()
    assert sql(pg_url, "SELECT count(*) FROM cells") == [(0,)]
    write(pg, run_id, "p@1", 0, 0)
    assert len(pg.load_run(run_id)[1]) == 3


def test_schema_version_and_migrations(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    Store(pg_url).close()
    assert sql(pg_url, "SELECT version FROM perturbkit_schema") == [(SCHEMA_VERSION,)]
    path = list(migrations.MIGRATIONS)

    def half_then_fail(conn: sa.Connection) -> None:
        conn.execute(sa.text("ALTER TABLE runs ADD COLUMN owner TEXT"))
        raise ValueError("boom")

    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    failing = Migration(SCHEMA_VERSION, "x", half_then_fail)
    monkeypatch.setattr(migrations, "MIGRATIONS", [*path, failing])
    with pytest.raises(StoreError, match="failed, and nothing was changed: boom"):
        Store(pg_url)
    owner = (
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'runs' AND column_name = 'owner'"
    )
    assert sql(pg_url, owner) == [(0,)]  # the DDL rolled back

    def add_owner(conn: sa.Connection) -> None:
        conn.execute(sa.text("ALTER TABLE runs ADD COLUMN owner TEXT"))

    adding = Migration(SCHEMA_VERSION, "x", add_owner)
    monkeypatch.setattr(migrations, "MIGRATIONS", [*path, adding])
    Store(pg_url).close()
    assert sql(pg_url, owner) == [(1,)]
    assert sql(pg_url, "SELECT max(version) FROM perturbkit_schema") == [(SCHEMA_VERSION + 1,)]
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION)
    with pytest.raises(StoreError, match="upgrade perturbkit"):
        Store(pg_url)


def test_processes_creating_one_store_at_once(pg_url: str) -> None:
    script = textwrap.dedent(
        """
        import sys
        from perturbkit.store import Store
        with Store(sys.argv[1]) as store:
            store.create_run(run_id=sys.argv[2], name="x", fingerprint="fp", root_seed=1,
                             config={}, meta={})
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, pg_url, f"r{k}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for k in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert sql(pg_url, "SELECT count(*) FROM perturbkit_schema") == [(1,)]
    assert sql(pg_url, "SELECT count(*) FROM runs") == [(4,)]


@pytest.mark.usefixtures("psycopg_driver")
def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    with pytest.raises(StoreError) as info:
        Store("postgresql+psycopg://me:s3cret@127.0.0.1:1/nowhere?connect_timeout=2")
    message = str(info.value)
    assert message.startswith(
        "Cannot open the store at postgresql+psycopg://me:***@127.0.0.1:1/nowhere"
    )
    assert "s3cret" not in message and "\n" not in message
