"""A reloaded run equals the computed one, bit for bit."""

from __future__ import annotations

import itertools
import math
import random
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _store_helpers import make_rows, new_run, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perturbkit.exceptions import StoreError
from perturbkit.store import TABLE_COLUMNS, Store

SPECIAL = [
    0.0,
    -0.0,
    5e-324,  # smallest subnormal
    -5e-324,
    2.2250738585072014e-308,  # smallest normal
    1.7976931348623157e308,  # largest finite
    -1.7976931348623157e308,
    math.inf,
    -math.inf,
    math.nan,
    0.1,
    1 / 3,
    2.0**63,
    -(2.0**53) - 2,
    1e-300,
]


def assert_bits_equal(a: np.ndarray, b: np.ndarray) -> None:
    """Equal as IEEE bit patterns, except that every NaN equals every NaN."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    np.testing.assert_array_equal(nan_a, nan_b)
    np.testing.assert_array_equal(a[~nan_a].view(np.uint64), b[~nan_b].view(np.uint64))


def expected_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS)).astype(
        {"version": np.int64, "repeat": np.int64, "magnitude": np.float64, "value": np.float64}
    )


def test_special_floats_round_trip_bit_for_bit(store: Store) -> None:
    run_id = new_run(store)
    values = {(f"m{i:02d}", ""): v for i, v in enumerate(SPECIAL)}
    rows = make_rows("gaussian_noise", magnitude=-0.0, values=values)
    for row, v in zip(rows, SPECIAL, strict=True):
        row["magnitude"] = v if not math.isnan(v) else 0.5
    write(store, run_id, "gaussian_noise@1", 0, 0, rows=rows, magnitude=-0.0)

    _, table = store.load_run(run_id)
    expected = expected_table(rows)
    pd.testing.assert_frame_equal(table, expected)
    assert_bits_equal(table["value"].to_numpy(), np.array(SPECIAL))
    assert_bits_equal(table["magnitude"].to_numpy(), expected["magnitude"].to_numpy())
    assert np.signbit(table["value"].to_numpy()[1])  # -0.0 kept its sign
    cells = store.load_cells(run_id)
    assert np.signbit(cells["magnitude"].to_numpy()[0])


def test_none_value_reads_back_as_nan(store: Store) -> None:
    run_id = new_run(store)
    rows = make_rows(values={("accuracy", ""): None, ("loss", ""): float("nan")})
    write(store, run_id, "gaussian_noise@1", 0, 0, rows=rows)
    _, table = store.load_run(run_id)
    assert table["value"].isna().all()


def test_numpy_scalars_are_accepted_and_stored_as_python_values(store: Store) -> None:
    run_id = new_run(store)
    rows = make_rows(values={("accuracy", ""): np.float32(0.75), ("loss", ""): np.float64(0.1)})
    for row in rows:
        row["version"] = np.int64(2)
        row["repeat"] = np.int32(0)
        row["magnitude"] = np.float64(0.3)
    write(store, run_id, "gaussian_noise@2", 0, 0, rows=rows)
    _, table = store.load_run(run_id)
    assert table["value"].tolist() == [float(np.float32(0.75)), 0.1]
    assert table["version"].tolist() == [2, 2]


finite_or_special = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.sampled_from(SPECIAL),
)
# PostgreSQL text cannot hold NUL, and surrogates are not UTF-8.
names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    values=st.lists(finite_or_special, min_size=1, max_size=12),
    magnitude=st.floats(allow_nan=False, allow_infinity=True),
    metric=names,
    params=names,
)
def test_random_rows_round_trip_bit_for_bit(
    store: Store, values: list[float], magnitude: float, metric: str, params: str
) -> None:
    run_id = uuid.uuid4().hex
    new_run(store, run_id)
    rows = [
        {
            "perturbation": "p",
            "version": 3,
            "params": params,
            "magnitude": magnitude,
            "repeat": 1,
            "metric": metric,
            "group": f"{i:03d}",
            "value": v,
        }
        for i, v in enumerate(values)
    ]
    write(store, run_id, "p@3", 0, 1, rows=rows, magnitude=magnitude)
    _, table = store.load_run(run_id)
    expected = expected_table(rows)
    pd.testing.assert_frame_equal(table, expected)
    assert_bits_equal(table["value"].to_numpy(), expected["value"].to_numpy())
    assert_bits_equal(table["magnitude"].to_numpy(), expected["magnitude"].to_numpy())


def test_a_whole_sweep_reloads_equal_to_the_computed_table(tmp_path: Path) -> None:
    """Cells written in a shuffled order reload in the documented order."""
    rng = np.random.default_rng(7)
    perts = ["gaussian_noise@1", "jpeg@2", "char_typos@1"]
    grid = list(itertools.product(perts, range(4), range(3)))
    order = random.Random(3).sample(grid, len(grid))
    # Perturbations rank by the position of their first stored cell.
    rank = {p: k for k, p in enumerate(dict.fromkeys(p for p, _, _ in order))}
    computed: dict[tuple[int, int, int], list[dict]] = {}
    with Store(tmp_path / "sweep.db") as store:
        run_id = new_run(store)
        for pert_id, mi, rep in order:
            name, version = pert_id.split("@")
            magnitude = mi / 3.0
            values = {
                (metric, group): float(rng.standard_normal())
                for metric in ("flip_rate", "accuracy", "mse")
                for group in ("", "1", "0", "10")
            }
            rows = make_rows(
                name, version=int(version), magnitude=magnitude, repeat=rep, values=values
            )
            write(store, run_id, pert_id, mi, rep, rows=rows, magnitude=magnitude)
            computed[(rank[pert_id], mi, rep)] = rows
    expected = expected_table(
        [
            row
            for key in sorted(computed)
            for row in sorted(computed[key], key=lambda r: (r["metric"], r["group"]))
        ]
    )
    with Store(tmp_path / "sweep.db") as store:  # a fresh process would see the same
        record, table = store.load_run(run_id)
    pd.testing.assert_frame_equal(table, expected)
    assert_bits_equal(table["value"].to_numpy(), expected["value"].to_numpy())
    assert record["n_cells"] == len(grid)


def test_run_record_round_trips(store: Store) -> None:
    config = {
        "seed": None,
        "magnitudes": [0.0, 0.5, float("inf")],
        "nested": {"a": [1, "x"]},
        "nan": float("nan"),
        "unicode": "σ-noise",
    }
    meta = {
        "versions": {"numpy": np.__version__},
        "fingerprints": {"model": "ab12"},
        "np_scalar": np.float64(0.25),
        "array": np.arange(3),
        "path": Path("/tmp/x"),
    }
    root = 2**128 - 1  # SeedSequence entropy is 128 bits
    store.create_run(
        run_id="r1", name="fragility", fingerprint="fp", root_seed=root, config=config, meta=meta
    )
    record, table = store.load_run("r1")
    assert record["root_seed"] == root
    assert record["config"]["magnitudes"] == [0.0, 0.5, float("inf")]
    assert math.isnan(record["config"]["nan"])
    assert record["config"]["nested"] == {"a": [1, "x"]}
    assert record["config"]["unicode"] == "σ-noise"
    assert record["meta"]["np_scalar"] == 0.25
    assert record["meta"]["array"] == [0, 1, 2]
    assert record["meta"]["path"] == "/tmp/x"
    assert list(record["config"]) == list(config)  # key order kept
    assert record["status"] == "running"
    assert record["finished_at"] is None
    assert record["created_at"].endswith("+00:00")
    assert record["n_cells"] == 0
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert len(table) == 0
    assert table["value"].dtype == np.float64
    assert table["version"].dtype == np.int64


def test_unjsonable_config_is_refused_in_one_line(store: Store) -> None:
    with pytest.raises(StoreError) as info:
        store.create_run(
            run_id="r1",
            name="x",
            fingerprint="fp",
            root_seed=1,
            config={"model": object()},
            meta={},
        )
    assert "config of run 'r1' cannot be stored as JSON" in str(info.value)
    assert "\n" not in str(info.value)
    assert store.list_runs().empty
