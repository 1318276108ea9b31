"""Schema versions of the results store and the path between them.

The table ``perturbkit_schema`` holds one row per schema version the store
has been at (``version``, ``applied_at``, ``perturbkit_version``,
``description``); the store's version is the largest. At open,
:func:`upgrade` runs inside one transaction (an exclusive one: ``BEGIN
IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL, so that processes
opening the same store at once take turns):

- an empty database gets the current tables of :mod:`.schema` and is
  stamped :data:`SCHEMA_VERSION`;
- a store at an older version is walked up one :class:`Migration` at a time;
  if one fails, the whole walk is rolled back and the store is left as it
  was (DDL is transactional on SQLite and PostgreSQL);
- a store at a newer version than this code knows is refused: upgrade
  perturbkit.

To change the schema: bump :data:`SCHEMA_VERSION`, change the tables in
:mod:`.schema`, and append a ``Migration(from_version=SCHEMA_VERSION - 1,
...)`` whose ``apply(conn)`` makes that change with portable Core or DDL
(``ALTER TABLE ... ADD COLUMN``, ``CREATE INDEX``, a table copy). A
migration never imports the current tables: it must keep working after
later versions change them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from perturbkit.exceptions import StoreError
from perturbkit.store import schema

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "current_version", "upgrade"]

SCHEMA_VERSION = 1
"""The schema version this code writes and reads."""


@dataclass(frozen=True)
class Migration:
    """One step of the path: from ``from_version`` to ``from_version + 1``."""

    from_version: int
    description: str
    apply: Callable[[sa.Connection], None]


MIGRATIONS: list[Migration] = []
"""The path from version 1 up to :data:`SCHEMA_VERSION`, in order."""

_OUR_TABLES = ("runs", "cells", "metrics")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("perturbkit")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def current_version(conn: sa.Connection) -> int | None:
    """The store's schema version, or ``None`` when it has no version table."""
    if not sa.inspect(conn).has_table(schema.SCHEMA_TABLE):
        return None
    return conn.execute(sa.select(sa.func.max(schema.schema_table.c.version))).scalar_one_or_none()


def _stamp(conn: sa.Connection, version: int, description: str) -> None:
    conn.execute(
        sa.insert(schema.schema_table).values(
            version=version,
            applied_at=_now(),
            perturbkit_version=_package_version(),
            description=description,
        )
    )


def upgrade(
    conn: sa.Connection,
    *,
    where: str,
    target: int | None = None,
    migrations: Sequence[Migration] | None = None,
) -> int:
    """Create or migrate the store on ``conn`` to ``target``; return the version.

    Call inside a transaction, which the caller commits. ``where`` is the
    (password-masked) URL named in errors. ``target`` and ``migrations``
    default to this module's :data:`SCHEMA_VERSION` and :data:`MIGRATIONS`.
    """
    target = SCHEMA_VERSION if target is None else target
    migrations = MIGRATIONS if migrations is None else migrations
    version = current_version(conn)

    if version is None:
        inspector = sa.inspect(conn)
        clashing = [t for t in _OUR_TABLES if inspector.has_table(t)]
        if clashing:
            raise StoreError(
                f"The database at {where} has a '{clashing[0]}' table but no "
                f"'{schema.SCHEMA_TABLE}' table, so it is not a perturbkit store; "
                "use an empty database or another URL."
            )
        schema.metadata.create_all(conn)
        _stamp(conn, target, f"created at schema version {target}")
        return target

    if version > target:
        raise StoreError(
            f"The store at {where} has schema version {version}, but this perturbkit "
            f"({_package_version()}) reads versions up to {target}; "
            "upgrade perturbkit: pip install -U perturbkit."
        )

    steps = {m.from_version: m for m in migrations}
    while version < target:
        step = steps.get(version)
        if step is None:  # a gap in MIGRATIONS is a bug in perturbkit, not user input
            raise RuntimeError(
                f"No migration of the results store from schema version {version} "
                f"to {version + 1}; MIGRATIONS is incomplete."
            )
        try:
            step.apply(conn)
        except Exception as exc:
            text = str(getattr(exc, "orig", None) or exc).strip()
            detail = text.splitlines()[0] if text else type(exc).__name__
            raise StoreError(
                f"Migrating the store at {where} from schema version {version} to "
                f"{version + 1} ({step.description}) failed, and nothing was changed: {detail}"
            ) from exc
        version += 1
        _stamp(conn, version, step.description)
    return version
