"""Opening a store: URLs, clear one-line errors, SQLite settings."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

import pytest
from _store_helpers import new_run, write

from perturbkit.exceptions import StoreError
from perturbkit.store import Store
from perturbkit.store._url import parse_url

ALLOWED = (
    "sqlite:///path/to/file.db, a file path ending in .db, .sqlite or .sqlite3, "
    "or postgresql+psycopg://user:password@host:5432/dbname"
)


def one_line_error(url: object) -> str:
    with pytest.raises(StoreError) as info:
        Store(url)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_malformed_url_is_one_line_with_the_value_and_what_is_allowed(tmp_path: Path) -> None:
    assert one_line_error("notaurl") == (f"The store URL must be {ALLOWED}. Got 'notaurl' instead.")
    assert one_line_error("foo://x") == (
        f"The store URL must be {ALLOWED}. Got 'foo://x' instead, "
        "and perturbkit does not support the database 'foo'."
    )
    assert one_line_error(5) == f"The store URL must be {ALLOWED}. Got int 5 instead."
    assert "Got '' instead" in one_line_error("")
    assert "driver 'nonsense'" in one_line_error("sqlite+nonsense:///x.db")
    assert "asyncio driver 'aiosqlite'" in one_line_error("sqlite+aiosqlite:///x.db")
    assert "names a user or host" in one_line_error("sqlite://user@host/x.db")
    assert list(tmp_path.iterdir()) == []


def test_passwords_are_masked_in_errors() -> None:
    message = one_line_error("mysql://me:s3cret@db.example.com/runs")
    assert "s3cret" not in message
    assert "me:***@db.example.com" in message


def test_a_missing_postgres_driver_names_the_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def no_pg(name: str, *args: object) -> object:
        return None if name in ("psycopg", "psycopg2") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", no_pg)
    message = one_line_error("postgresql://me:s3cret@localhost/runs")
    assert message == (
        "The store URL 'postgresql://me:***@localhost/runs' needs a PostgreSQL driver, "
        "and none is installed: pip install 'psycopg[binary]'."
    )


@pytest.mark.parametrize(("driver", "pip"), [("pg8000", "pg8000"), ("psycopg2", "psycopg2-binary")])
def test_a_missing_named_driver_names_the_pip_package(driver: str, pip: str) -> None:
    if importlib.util.find_spec(driver) is not None:
        pytest.skip(f"{driver} is installed")
    message = one_line_error(f"postgresql+{driver}://me:s3cret@localhost/runs")
    assert message == (
        f"The store URL 'postgresql+{driver}://me:***@localhost/runs' needs the {driver} "
        f"driver, which is not installed: pip install '{pip}'."
    )


def test_postgres_spellings_resolve_to_postgresql() -> None:
    assert parse_url("postgresql+psycopg://u:p@h:5433/db").drivername == "postgresql+psycopg"
    if importlib.util.find_spec("psycopg") is not None:
        assert parse_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"


def test_a_missing_parent_folder_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/no/such/folder/runs.db"
    assert one_line_error(url) == (
        f"The store URL '{url}' points into the folder '{tmp_path}/no/such/folder', "
        "which does not exist; create the folder or choose another path."
    )
    assert list(tmp_path.iterdir()) == []


def test_a_folder_is_not_a_database_file(tmp_path: Path) -> None:
    (tmp_path / "runs.db").mkdir()
    assert "is a folder" in one_line_error(tmp_path / "runs.db")


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"my precious notes " * 200)
    message = one_line_error(path)
    assert message == f"Cannot open the store at sqlite:///{path}: file is not a database."
    assert path.read_bytes() == b"my precious notes " * 200


def test_plain_paths_and_the_default_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Store() as store:
        assert store.url == "sqlite:///perturbkit.db"
    assert (tmp_path / "perturbkit.db").is_file()
    for name in ("a.db", "b.sqlite", "c.sqlite3"):
        with Store(name) as store:
            assert store.url == f"sqlite:///{name}"
        assert (tmp_path / name).is_file()
    with Store(tmp_path / "d.db") as store:
        assert store.url == f"sqlite:///{tmp_path}/d.db"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(store: Store, tmp_path: Path) -> None:
    with store._engine.connect() as conn:  # type: ignore[union-attr]
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    raw = sqlite3.connect(tmp_path / "perturbkit.db")
    try:  # WAL is a property of the file: every client sees it
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_store_works(url: str) -> None:
    with Store(url) as store:
        run_id = new_run(store)
        write(store, run_id, "p@1", 0, 0)
        assert store.stored_cells(run_id) == {("p@1", 0, 0)}
        assert len(store.load_run(run_id)[1]) == 3
