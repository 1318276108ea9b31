"""The schema version table and the migration path."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from _store_helpers import new_run, write

from perturbkit.exceptions import StoreError
from perturbkit.store import SCHEMA_VERSION, Store, migrations
from perturbkit.store.migrations import Migration
from perturbkit.store.schema import metadata


def query(path: Path, sql: str) -> list[tuple]:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def columns(path: Path, table: str) -> list[str]:
    return [r[1] for r in query(path, f"PRAGMA table_info({table})")]


@pytest.fixture
def v1_store(tmp_path: Path) -> Path:
    """A store at the current version, holding one run with one cell."""
    path = tmp_path / "old.db"
    with Store(path) as store:
        new_run(store, "r1")
        write(store, "r1", "p@1", 0, 0)
    return path


def test_a_new_store_records_its_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store(path).close()
    rows = query(path, "SELECT version, perturbkit_version, description FROM perturbkit_schema")
    assert [r[0] for r in rows] == [SCHEMA_VERSION]
    assert rows[0][2] == f"created at schema version {SCHEMA_VERSION}"
    tables = {r[0] for r in query(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"perturbkit_schema", "runs", "cells", "metrics"} <= tables
    for table in metadata.sorted_tables:
        assert columns(path, table.name) == [c.name for c in table.columns]
    Store(path).close()  # reopening stamps nothing more
    assert len(query(path, "SELECT * FROM perturbkit_schema")) == 1


def test_the_migration_list_is_a_contiguous_path() -> None:
    assert [m.from_version for m in migrations.MIGRATIONS] == list(range(1, SCHEMA_VERSION))


def test_a_store_newer_than_the_code_is_refused_untouched(v1_store: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{v1_store}")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO perturbkit_schema VALUES (99, '2099-01-01', '9.0', 'from the future')"
            )
        )
    engine.dispose()
    before = v1_store.read_bytes()
    with pytest.raises(StoreError) as info:
        Store(v1_store)
    assert str(info.value) == (
        f"The store at sqlite:///{v1_store} has schema version 99, but this perturbkit "
        f"({migrations._package_version()}) reads versions up to {SCHEMA_VERSION}; "
        "upgrade perturbkit: pip install -U perturbkit."
    )
    assert v1_store.read_bytes() == before


def add_note(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT ''"))


def add_index(conn: sa.Connection) -> None:
    conn.execute(sa.text("CREATE INDEX ix_cells_seconds ON cells (seconds)"))


def test_an_old_store_is_migrated_step_by_step_at_open(
    v1_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 2)
    monkeypatch.setattr(
        migrations,
        "MIGRATIONS",
        [
            *migrations.MIGRATIONS,
            Migration(SCHEMA_VERSION, "add runs.note", add_note),
            Migration(SCHEMA_VERSION + 1, "index cells.seconds", add_index),
        ],
    )
    with Store(v1_store) as store:
        record, table = store.load_run("r1")  # the data came along
        assert record["n_cells"] == 1 and len(table) == 3
    versions = query(v1_store, "SELECT version, description FROM perturbkit_schema ORDER BY 1")
    assert versions[-2:] == [
        (SCHEMA_VERSION + 1, "add runs.note"),
        (SCHEMA_VERSION + 2, "index cells.seconds"),
    ]
    assert "note" in columns(v1_store, "runs")
    assert query(v1_store, "SELECT note FROM runs") == [("",)]
    indexes = query(v1_store, "SELECT name FROM sqlite_master WHERE type = 'index'")
    assert ("ix_cells_seconds",) in indexes
    Store(v1_store).close()  # at the target now: nothing more to do
    assert len(query(v1_store, "SELECT * FROM perturbkit_schema")) == SCHEMA_VERSION + 2


def test_a_failing_migration_changes_nothing(
    v1_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_then_fail(conn: sa.Connection) -> None:
        conn.execute(sa.text("ALTER TABLE runs ADD COLUMN owner TEXT"))
        conn.execute(sa.text("UPDATE runs SET name = 'clobbered'"))
        raise ValueError("boom")

    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 2)
    monkeypatch.setattr(
        migrations,
        "MIGRATIONS",
        [
            *migrations.MIGRATIONS,
            Migration(SCHEMA_VERSION, "add runs.note", add_note),
            Migration(SCHEMA_VERSION + 1, "rename things", half_then_fail),
        ],
    )
    with pytest.raises(StoreError) as info:
        Store(v1_store)
    assert str(info.value) == (
        f"Migrating the store at sqlite:///{v1_store} from schema version "
        f"{SCHEMA_VERSION + 1} to {SCHEMA_VERSION + 2} (rename things) failed, and nothing "
        "was changed: boom"
    )
    # The whole walk rolled back, the first (good) step and DDL included.
    assert query(v1_store, "SELECT max(version) FROM perturbkit_schema") == [(SCHEMA_VERSION,)]
    assert "note" not in columns(v1_store, "runs")
    assert "owner" not in columns(v1_store, "runs")
    assert query(v1_store, "SELECT name FROM runs") == [("demo",)]


def test_a_gap_in_the_migrations_is_a_bug(v1_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(RuntimeError, match="MIGRATIONS is incomplete"):
        Store(v1_store)


def test_a_database_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE runs (id INTEGER PRIMARY KEY, owner TEXT)"))
        conn.execute(sa.text("INSERT INTO runs (owner) VALUES ('someone else')"))
    engine.dispose()
    with pytest.raises(StoreError, match=r"has a 'runs' table but no 'perturbkit_schema'"):
        Store(path)
    tables = query(path, "SELECT name FROM sqlite_master WHERE type = 'table'")
    assert tables == [("runs",)]
