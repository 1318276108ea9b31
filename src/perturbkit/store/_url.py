"""Turning what the user gave into a database URL, or one clear line."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from perturbkit.exceptions import StoreError

__all__ = ["ALLOWED", "describe", "missing_driver", "parse_url", "sqlite_path"]

ALLOWED = (
    "sqlite:///path/to/file.db, a file path ending in .db, .sqlite or .sqlite3, "
    "or postgresql+psycopg://user:password@host:5432/dbname"
)
_FILE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_BACKENDS = ("sqlite", "postgresql")
# The module a driver imports -> what to pip install.
_PIP_NAME = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
}


def describe(url: URL) -> str:
    """The URL as text, with any password masked."""
    return url.render_as_string(hide_password=True)


def _bad(shown: str) -> StoreError:
    return StoreError(f"The store URL must be {ALLOWED}. Got {shown} instead.")


def parse_url(value: object) -> URL:
    """The SQLAlchemy URL for ``value``, or a one-line :class:`StoreError`."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise _bad(f"{type(value).__name__} {value!r}")
    text = value.strip()
    if "://" not in text:
        if text.lower().endswith(_FILE_SUFFIXES):
            return URL.create("sqlite", database=os.path.expanduser(text))
        raise _bad(repr(value))
    if text.startswith("postgres://"):  # the spelling Heroku and others hand out
        text = "postgresql://" + text[len("postgres://") :]
    try:
        url = make_url(text)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise _bad(repr(value)) from exc
    backend = url.get_backend_name()
    if backend not in _BACKENDS:
        shown = describe(url)
        raise StoreError(
            f"The store URL must be {ALLOWED}. Got {shown!r} instead, "
            f"and perturbkit does not support the database '{backend}'."
        )
    if backend == "sqlite" and (url.username or url.password or url.host or url.port):
        raise StoreError(
            f"The store URL {describe(url)!r} names a user or host, which a SQLite URL "
            "cannot have; use sqlite:///relative/path.db or sqlite:////absolute/path.db."
        )
    if backend == "postgresql" and "+" not in url.drivername:
        url = url.set(drivername=f"postgresql+{_postgres_driver(url)}")
    try:
        dialect = url.get_dialect()
    except sa.exc.NoSuchModuleError as exc:
        raise StoreError(
            f"The store URL {describe(url)!r} names the driver '{url.get_driver_name()}', "
            f"which SQLAlchemy does not know for {backend}; use {ALLOWED}."
        ) from exc
    if getattr(dialect, "is_async", False):
        raise StoreError(
            f"The store URL {describe(url)!r} names the asyncio driver "
            f"'{url.get_driver_name()}'; use a synchronous one, such as {ALLOWED}."
        )
    return url


def _postgres_driver(url: URL) -> str:
    for module in ("psycopg", "psycopg2"):
        if importlib.util.find_spec(module) is not None:
            return module
    raise StoreError(
        f"The store URL {describe(url)!r} needs a PostgreSQL driver, and none is "
        "installed: pip install 'psycopg[binary]'."
    )


def missing_driver(url: URL, exc: ImportError) -> StoreError:
    module = (exc.name or str(exc)).split(".")[0]
    pip = _PIP_NAME.get(module, module)
    return StoreError(
        f"The store URL {describe(url)!r} needs the {module} driver, which is not "
        f"installed: pip install '{pip}'."
    )


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL, or ``None`` for an in-memory one."""
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        return None
    if database.startswith("file:"):  # a SQLite URI (uri=true); left to SQLite
        return None
    return Path(database)
