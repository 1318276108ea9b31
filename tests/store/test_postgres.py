"""A PostgreSQL URL works the same for a team's shared store as SQLite does.

Every test gets a fresh database on the session's own throwaway PostgreSQL
server (``pg_server`` and ``pg_url`` in ``conftest.py``, which say what they
need and how they skip without it).
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from _store_helpers import make_rows, new_run, write
from sqlalchemy.pool import NullPool

import perturbkit as pk
from perturbkit.store import SCHEMA_VERSION, Store

KW: dict[str, Any] = dict(
    magnitudes=[0.0, 0.25, 0.5],
    repeats=2,
    seed=0,
    progress=False,
)
N_CELLS = 2 * 3 * 2  # perturbations × magnitudes × repeats


def perturbations() -> list[Any]:
    return ["gaussian_noise", pk.perturbations.get("missing_values", fill="mean")]


# -- helpers ----------------------------------------------------------------------------


def sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def assert_same_table(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal bit for bit: same columns, dtypes and order; floats as IEEE bits, NaN as NaN."""
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    for column in ("magnitude", "value"):
        x, y = a[column].to_numpy(np.float64), b[column].to_numpy(np.float64)
        np.testing.assert_array_equal(np.isnan(x), np.isnan(y))
        ok = ~np.isnan(x)
        np.testing.assert_array_equal(x[ok].view(np.uint64), y[ok].view(np.uint64))


def count(url: str, table: str) -> int:
    return int(sql(url, f"SELECT count(*) FROM {table}")[0][0])


@pytest.fixture(scope="module")
def computed(breast_cancer: Any, cancer_model: Any) -> pd.DataFrame:
    """The sweep's table computed without a store: what every stored copy must equal."""
    X, y = breast_cancer
    return pk.sweep(cancer_model, X, y, perturbations=perturbations(), **KW).to_pandas()


# -- the tests --------------------------------------------------------------------------


def test_a_sweep_round_trips_bit_for_bit(
    pg_url: str, breast_cancer: Any, cancer_model: Any, computed: pd.DataFrame
) -> None:
    X, y = breast_cancer
    result = pk.sweep(cancer_model, X, y, perturbations=perturbations(), store=pg_url, **KW)
    assert_same_table(result.to_pandas(), computed)
    reloaded = pk.load_run(result.run_id, pg_url)
    assert_same_table(reloaded.to_pandas(), computed)
    assert reloaded.run_id == result.run_id
    assert reloaded.meta["root_seed"] == 0
    assert reloaded.meta["status"] == "complete"
    assert reloaded.meta["config"] == result.meta["config"]
    assert reloaded.meta["baseline"] == result.meta["baseline"]
    assert_same_table(pk.load_run(result.run_id[:5], pg_url).to_pandas(), computed)
    assert count(pg_url, "cells") == N_CELLS
    assert count(pg_url, "metrics") == len(computed)


def test_nan_values_round_trip(pg_url: str, breast_cancer: Any, cancer_model: Any) -> None:
    X, y = breast_cancer
    one_class = y == 1  # recall of class 0 is 0/0: NaN
    result = pk.sweep(
        cancer_model,
        X[one_class],
        y[one_class],
        perturbations=perturbations(),
        store=pg_url,
        **KW,
    )
    table = result.to_pandas()
    assert table["value"].isna().sum() > 0
    assert_same_table(pk.load_run(result.run_id, pg_url).to_pandas(), table)
    assert sql(pg_url, "SELECT count(*) FROM metrics WHERE value IS NULL") == [
        (int(table["value"].isna().sum()),)
    ]

    # And the floats a sweep rarely makes, written directly.
    specials = [math.nan, None, -0.0, 0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308]
    with Store(pg_url) as store:
        run_id = new_run(store, "specials")
        values = {(f"m{i}", ""): v for i, v in enumerate(specials)}
        write(store, run_id, "p@1", 0, 0, rows=make_rows(magnitude=-0.0, values=values))
        _, got = store.load_run(run_id)
    want = np.array([np.nan if v is None else v for v in specials])
    assert_same_table(got.assign(value=want), got)
    assert np.signbit(got["magnitude"].to_numpy()).all()


def test_list_runs_matches_sqlite(
    pg_url: str, tmp_path: Path, breast_cancer: Any, cancer_model: Any
) -> None:
    X, y = breast_cancer
    lists = []
    for url in (pg_url, f"sqlite:///{tmp_path / 'runs.db'}"):
        with Store(url) as store:
            assert store.list_runs().empty
        first = pk.sweep(cancer_model, X, y, perturbations=perturbations(), store=url, **KW)
        kw = {**KW, "seed": 1}
        second = pk.sweep(cancer_model, X, y, perturbations=perturbations(), store=url, **kw)
        with Store(url) as store:
            runs = store.list_runs()
        assert runs["run_id"].tolist() == [second.run_id, first.run_id]  # newest first
        assert runs["status"].tolist() == ["complete", "complete"]
        assert runs["n_cells"].tolist() == [N_CELLS, N_CELLS]
        assert runs["root_seed"].tolist() == [1, 0]
        assert runs["name"].tolist() == ["sweep", "sweep"]
        assert runs["fingerprint"].nunique() == 1  # the seed is not part of it
        assert runs["finished_at"].notna().all()
        assert (runs["created_at"] <= runs["finished_at"]).all()
        lists.append(runs)
    pg_runs, sqlite_runs = lists
    pd.testing.assert_series_equal(pg_runs.dtypes, sqlite_runs.dtypes)
    assert str(pg_runs["created_at"].dt.tz) == "UTC"
    cols = ["name", "status", "n_cells", "root_seed", "fingerprint"]
    pd.testing.assert_frame_equal(pg_runs[cols], sqlite_runs[cols])


def test_resume_returns_the_same_run_and_table(
    pg_url: str, breast_cancer: Any, cancer_model: Any, computed: pd.DataFrame
) -> None:
    X, y = breast_cancer
    full = pk.sweep(cancer_model, X, y, perturbations=perturbations(), store=pg_url, **KW)
    with Store(pg_url) as store:
        cells_before = store.load_cells(full.run_id)
    again = pk.sweep(
        cancer_model, X, y, perturbations=perturbations(), store=pg_url, resume=True, **KW
    )
    assert again.run_id == full.run_id
    assert_same_table(again.to_pandas(), computed)
    with Store(pg_url) as store:
        assert len(store.list_runs()) == 1
        pd.testing.assert_frame_equal(store.load_cells(full.run_id), cells_before)  # not redone
    assert_same_table(pk.load_run(full.run_id, pg_url).to_pandas(), computed)


def test_an_interrupted_sweep_resumes_to_the_same_table(
    pg_url: str, breast_cancer: Any, cancer_model: Any, computed: pd.DataFrame
) -> None:
    X, y = breast_cancer
    calls = {"n": 0}

    def stopping(Xb: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt  # Ctrl-C part-way
        return cancer_model.predict_proba(Xb)

    model = pk.wrap(stopping, task="classification")
    model.classes_ = cancer_model.classes_
    with pytest.raises(KeyboardInterrupt):
        pk.sweep(model, X, y, perturbations=perturbations(), store=pg_url, **KW)
    with Store(pg_url) as store:
        runs = store.list_runs()
        assert runs["status"].tolist() == ["interrupted"]
        run_id = runs["run_id"][0]
        n_done = len(store.stored_cells(run_id))
    assert 0 < n_done < N_CELLS

    calls["n"] = -10_000
    resumed = pk.sweep(model, X, y, perturbations=perturbations(), store=pg_url, resume=True, **KW)
    assert resumed.run_id == run_id
    assert_same_table(resumed.to_pandas(), computed)
    assert_same_table(pk.load_run(run_id, pg_url).to_pandas(), computed)
    with Store(pg_url) as store:
        assert store.list_runs()["status"].tolist() == ["complete"]


def test_the_schema_version_table(pg_url: str) -> None:
    assert sql(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    Store(pg_url).close()
    engine = sa.create_engine(pg_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert tables == {"perturbkit_schema", "runs", "cells", "metrics"}
    rows = sql(pg_url, "SELECT version, perturbkit_version, applied_at FROM perturbkit_schema")
    assert [r[:2] for r in rows] == [(SCHEMA_VERSION, pk.__version__)]
    assert rows[0][2].endswith("+00:00")
    Store(pg_url).close()  # opening again stamps nothing
    assert count(pg_url, "perturbkit_schema") == 1
    types = dict(
        sql(
            pg_url,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'metrics'",
        )
    )
    assert types["value"] == types["magnitude"] == "double precision"


class FailingMetricsInsert:
    """Raise ``error`` at the ``n``-th INSERT INTO metrics, after its cell row went in."""

    def __init__(self, store: Store, error: BaseException, n: int = 1) -> None:
        self.engine = store._engine
        self.error = error
        self.left = n

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO METRICS"):
            self.left -= 1
            if self.left == 0:
                raise self.error

    def __enter__(self) -> FailingMetricsInsert:
        sa.event.listen(self.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *exc: Any) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self)


@pytest.mark.parametrize("error", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_a_failing_write_leaves_no_half_cell(pg_url: str, error: BaseException) -> None:
    with Store(pg_url) as store:
        run_id = new_run(store)
        write(store, run_id, "p@1", 0, 0)
        with FailingMetricsInsert(store, error), pytest.raises(type(error)):
            write(store, run_id, "p@1", 1, 0)
        assert store.stored_cells(run_id) == {("p@1", 0, 0)}
        assert (count(pg_url, "cells"), count(pg_url, "metrics")) == (1, 3)
        write(store, run_id, "p@1", 1, 0)  # as a resumed sweep would
        assert len(store.load_run(run_id)[1]) == 6


def test_a_sweep_failing_mid_cell_stores_whole_cells_and_resumes(
    pg_url: str, breast_cancer: Any, cancer_model: Any, computed: pd.DataFrame
) -> None:
    X, y = breast_cancer
    with Store(pg_url) as store:
        with FailingMetricsInsert(store, RuntimeError("disk on fire"), n=5):
            with pytest.raises(RuntimeError, match="disk on fire"):
                pk.sweep(cancer_model, X, y, perturbations=perturbations(), store=store, **KW)
        runs = store.list_runs()
        assert runs["status"].tolist() == ["failed"]
        assert runs["n_cells"].tolist() == [4]  # the fifth cell's row was rolled back
        _, partial = store.load_run(runs["run_id"][0])
        # Every stored cell is whole: exactly its computed rows.
        keys = ["perturbation", "params", "magnitude", "repeat"]
        stored_cells = partial[keys].drop_duplicates()
        assert len(stored_cells) == 4
        assert_same_table(partial, computed.merge(stored_cells, on=keys))
        no_rows = "SELECT count(*) FROM cells WHERE id NOT IN (SELECT cell_id FROM metrics)"
        assert sql(pg_url, no_rows) == [(0,)]
        resumed = pk.sweep(
            cancer_model, X, y, perturbations=perturbations(), store=store, resume=True, **KW
        )
    assert resumed.run_id == runs["run_id"][0]
    assert_same_table(resumed.to_pandas(), computed)
    assert_same_table(pk.load_run(resumed.run_id, pg_url).to_pandas(), computed)


def test_a_killed_process_leaves_no_half_cell(pg_url: str) -> None:
    with Store(pg_url) as store:
        run_id = new_run(store)
    script = textwrap.dedent(
        f"""
        import os
        import sqlalchemy as sa
        from perturbkit.store import Store

        store = Store({pg_url!r})

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
    with Store(pg_url) as store:
        assert store.stored_cells(run_id) == set()
        assert store.load_run(run_id)[0]["n_cells"] == 0
    assert (count(pg_url, "cells"), count(pg_url, "metrics")) == (0, 0)


def test_sqlite_and_postgres_store_identical_tables(
    pg_url: str, tmp_path: Path, breast_cancer: Any, cancer_model: Any, computed: pd.DataFrame
) -> None:
    X, y = breast_cancer
    sqlite_url = f"sqlite:///{tmp_path / 'runs.db'}"
    stored = {}
    for url in (sqlite_url, pg_url):
        result = pk.sweep(cancer_model, X, y, perturbations=perturbations(), store=url, **KW)
        assert_same_table(result.to_pandas(), computed)
        with Store(url) as store:
            stored[url] = (*store.load_run(result.run_id), store.load_cells(result.run_id))
    (s_run, s_table, s_cells), (p_run, p_table, p_cells) = stored[sqlite_url], stored[pg_url]
    assert_same_table(p_table, s_table)
    assert_same_table(p_table, computed)
    same = ["pert_id", "magnitude_index", "repeat", "magnitude"]
    pd.testing.assert_frame_equal(p_cells[same], s_cells[same], check_exact=True)
    pd.testing.assert_series_equal(p_cells.dtypes, s_cells.dtypes)
    for key in ("name", "fingerprint", "root_seed", "status", "config", "n_cells"):
        assert p_run[key] == s_run[key], key
    assert set(p_run) == set(s_run)
    assert set(p_run["meta"]) == set(s_run["meta"])
    for key in ("baseline", "baseline_by_class", "perturbations", "fingerprint", "task"):
        assert p_run["meta"][key] == s_run["meta"][key], key
