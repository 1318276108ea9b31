"""The results store: runs, cells and metric rows in SQLite or PostgreSQL.

``Store(url)`` opens (and creates or migrates) a store; see
:mod:`perturbkit.store.store` for what is stored and
:mod:`perturbkit.store.migrations` for the schema versions.
"""

from __future__ import annotations

from perturbkit.store import migrations
from perturbkit.store.migrations import SCHEMA_VERSION
from perturbkit.store.store import DEFAULT_URL, FINAL_STATUSES, TABLE_COLUMNS, Store

__all__ = [
    "DEFAULT_URL",
    "FINAL_STATUSES",
    "SCHEMA_VERSION",
    "TABLE_COLUMNS",
    "Store",
    "migrations",
]
