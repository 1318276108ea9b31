"""The tables of the results store, at the current schema version.

A fresh store is created from these tables and stamped with
:data:`perturbkit.store.migrations.SCHEMA_VERSION`; an older store is brought
here by the migrations. Change a table here only together with a new
migration.

Portable Core only (SQLite and PostgreSQL):

- floats are IEEE doubles (``DOUBLE PRECISION`` on PostgreSQL). On SQLite the
  float columns are declared ``FLOAT64_BLOB``: a column of REAL affinity
  stores a whole-valued float as an integer and so reads ``-0.0`` back as
  ``0.0``; a column of BLOB affinity keeps the stored REAL's 64 bits as
  given. The values are ordinary SQLite REALs, so SQL arithmetic works;
- JSON (run config and meta) is ``json.dumps`` text, so NaN survives;
- timestamps are ISO 8601 UTC text (``2024-05-01T12:00:00.123456+00:00``),
  which sorts in time order and reads the same on every backend;
- the root seed is decimal text: ``numpy.random.SeedSequence`` entropy is a
  128-bit integer, wider than any SQL integer type.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import UserDefinedType

__all__ = ["SCHEMA_TABLE", "cells", "metadata", "metrics", "runs", "schema_table"]


class _SQLiteFloat64(UserDefinedType[float]):
    """A double on SQLite in a BLOB-affinity column, which keeps ``-0.0``."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "FLOAT64_BLOB"


Float64 = sa.Double().with_variant(_SQLiteFloat64(), "sqlite")
# SQLite makes only ``INTEGER PRIMARY KEY`` an auto-incrementing rowid.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SCHEMA_TABLE = "perturbkit_schema"

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

schema_table = sa.Table(
    SCHEMA_TABLE,
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.Text, nullable=False),
    sa.Column("perturbkit_version", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.Text, nullable=False, index=True),
    sa.Column("root_seed", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("meta", sa.Text, nullable=False),
    sa.Column("perturbkit_version", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("finished_at", sa.Text, nullable=True),
)

cells = sa.Table(
    "cells",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id",
        sa.Text,
        sa.ForeignKey("runs.run_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("pert_id", sa.Text, nullable=False),
    sa.Column("magnitude_index", sa.Integer, nullable=False),
    sa.Column("repeat", sa.Integer, nullable=False),
    sa.Column("magnitude", Float64, nullable=False),
    sa.Column("seconds", Float64, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.UniqueConstraint("run_id", "pert_id", "magnitude_index", "repeat"),
)

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id",
        sa.Text,
        sa.ForeignKey("runs.run_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column(
        "cell_id",
        Id,
        sa.ForeignKey("cells.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("perturbation", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("magnitude", Float64, nullable=False),
    sa.Column("repeat", sa.Integer, nullable=False),
    sa.Column("metric", sa.Text, nullable=False),
    sa.Column("group", sa.Text, nullable=False),
    sa.Column("value", Float64, nullable=True),  # NULL is NaN
)
