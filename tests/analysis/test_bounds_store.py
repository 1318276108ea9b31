"""Robustness curves in the results store: a run per curve, back bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import perturbkit as pk
from perturbkit.analysis.bounds_store import (
    CERTIFY_RADII,
    certification_from_table,
    certification_summary,
    curve_from_table,
    is_bounds_run,
    load_certification,
    load_curve,
    save_curve,
)
from perturbkit.store import TABLE_COLUMNS

LEVELS = [0, 0.05, 0.1, 0.5, 1.0]


def _bits(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64)).view(np.uint64)


def assert_same_curve(a: pk.RobustnessCurve, b: pk.RobustnessCurve) -> None:
    """Same columns in the same order, same dtypes, same float bits (NaN where NaN)."""
    assert list(a.table.columns) == list(b.table.columns)
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)
    for c in a.table.columns:
        if c == "tighter":
            assert a.table[c].tolist() == b.table[c].tolist()
            continue
        x, y = a.table[c].to_numpy(np.float64), b.table[c].to_numpy(np.float64)
        nan = np.isnan(x)
        assert np.array_equal(nan, np.isnan(y)), c
        assert np.array_equal(_bits(x[~nan]), _bits(y[~nan])), c
    assert a.label == b.label
    for k, v in a.meta.items():
        assert b.meta[k] == v, k


@pytest.fixture(scope="module")
def reg_curve(diabetes_linear, diabetes):
    X, y = diabetes
    return pk.robustness_curve(diabetes_linear, X, y, levels=LEVELS, seed=0, label="ridge")


@pytest.fixture(scope="module")
def cls_curve(cancer_model, breast_cancer):
    X, y = breast_cancer
    return pk.robustness_curve(
        cancer_model, X[:200], y[:200], levels=[0, 0.1, 0.5], n_draws=16, seed=1, label="logreg"
    )


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_round_trip_through_sqlite_bit_for_bit(reg_curve, url):
    with pk.Store(url) as st:
        run_id = save_curve(reg_curve, st)
        back = load_curve(run_id, st)
        record, table = st.load_run(run_id)
        cells = st.load_cells(run_id)
    assert_same_curve(reg_curve, back)
    assert back.meta["run_id"] == run_id and back.meta["status"] == "complete"
    assert back.meta["kind"] == "bounds" and is_bounds_run(record["meta"])
    # one cell per level, holding that level's tidy rows (the sweep table's columns)
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert len(cells) == len(LEVELS) and record["n_cells"] == len(LEVELS)
    assert cells["magnitude"].tolist() == [float(v) for v in LEVELS]
    pd.testing.assert_frame_equal(
        table.sort_values(["magnitude", "metric"]).reset_index(drop=True),
        reg_curve.to_tidy().sort_values(["magnitude", "metric"]).reset_index(drop=True),
        check_exact=True,
    )
    assert record["name"] == "ridge" and record["root_seed"] == 0
    assert record["config"]["levels"] == [float(v) for v in LEVELS]
    assert record["config"]["confidence"] == 0.95 and record["config"]["sampler"] == "qmc"


def test_a_url_opens_and_closes_its_own_store(reg_curve, url):
    run_id = save_curve(reg_curve, url, name="by url", meta={"command": "perturbkit bound x"})
    back = load_curve(run_id[:6], url)  # a unique prefix will do
    assert_same_curve(reg_curve, back)
    assert back.meta["command"] == "perturbkit bound x" and back.meta["name"] == "by url"
    runs = pk.Store(url).list_runs()
    assert runs["name"].tolist() == ["by url"] and runs["status"].tolist() == ["complete"]


def test_nan_columns_and_minus_zero_survive(url):
    """A constant model: no spread, so the normalised columns are NaN; -0.0 is a level."""
    X = np.random.default_rng(0).standard_normal((50, 3))
    curve = pk.robustness_curve(
        lambda A: np.zeros(len(A)), X, levels=[-0.0, 0.2], n_draws=4, seed=2, label="flat"
    )
    assert np.isnan(curve.table["deviation_upper_normalized"]).all()
    assert np.signbit(curve.table["level"].iloc[0])
    run_id = save_curve(curve, url)
    back = load_curve(run_id, url)
    assert_same_curve(curve, back)
    assert np.signbit(back.table["level"].iloc[0])


def test_classifier_with_certification(cls_curve, cancer_model, breast_cancer, url):
    X, y = breast_cancer
    Xs = (X[:60] - X.mean(axis=0)) / X.std(axis=0)
    results = [
        pk.certify(
            lambda A: cancer_model.predict_proba(A * X.std(axis=0) + X.mean(axis=0)),
            Xs,
            sigma=s,
            n0=20,
            n=200,
            seed=3,
        )
        for s in (0.25, 0.5)
    ]
    summary = certification_summary(results, y[:60])
    run_id = save_curve(cls_curve, url, certification=summary)
    assert_same_curve(cls_curve, load_curve(run_id, url))
    back = load_certification(run_id, url)
    pd.testing.assert_frame_equal(summary, back, check_exact=True)
    assert list(back.columns[:4]) == ["sigma", "n0", "n", "alpha"]
    assert back["sigma"].tolist() == [0.25, 0.5]
    with pk.Store(url) as st:
        record, table = st.load_run(run_id)
    assert record["n_cells"] == 3 + 2  # three levels, two sigmas
    cert_rows = table[table["perturbation"] == "certify"]
    assert set(cert_rows["group"]) == {""} | {f"radius={k:g}sigma" for k in CERTIFY_RADII}
    # the curve ignores the certification rows; certification_from_table reads them alone
    assert_same_curve(cls_curve, curve_from_table(table, record["meta"]))
    pd.testing.assert_frame_equal(certification_from_table(table, record["meta"]), summary)


def test_certification_summary_known_answer():
    """Four rows by hand: radius and correctness decide certified accuracy at k·sigma."""
    r = pk.CertifyResult(
        prediction=np.array([0, 1, -1, 1]),
        radius=np.array([0.5, 0.1, 0.0, 0.3]),
        abstain=np.array([False, False, True, False]),
        pA_lower=np.array([0.99, 0.7, 0.4, 0.9]),
        count_A=np.array([99, 70, 40, 90]),
        meta={"sigma": 0.2, "n0": 10, "n": 100, "alpha": 0.01},
    )
    s = certification_summary(r, np.array([0, 0, 1, 1]), radii=[0, 1, 2, 3])
    row = s.iloc[0]
    assert row["n_points"] == 4 and row["abstain_rate"] == 0.25
    assert row["mean_radius"] == pytest.approx(0.225) and row["median_radius"] == pytest.approx(0.2)
    # correct and certified: rows 0 (r = 0.5) and 3 (r = 0.3)
    assert [row[f"certified_accuracy@{k}sigma"] for k in (0, 1, 2, 3)] == [0.5, 0.5, 0.25, 0.0]
    no_labels = certification_summary([r])
    assert not [c for c in no_labels.columns if c.startswith("certified_accuracy")]


def test_load_curve_of_a_sweep_run_is_a_clear_error(diabetes_linear, diabetes, url):
    X, y = diabetes
    res = pk.sweep(
        diabetes_linear,
        X,
        y,
        perturbations=["gaussian_noise"],
        magnitudes=[0, 0.1],
        seed=0,
        store=url,
        progress=False,
    )
    with pytest.raises(pk.ParameterError, match=rf"Run '{res.run_id}' .* not a robustness-curve"):
        load_curve(res.run_id, url)
    with pytest.raises(pk.StoreError, match="No run 'nope'"):
        load_curve("nope", url)


def test_bad_arguments(reg_curve, url):
    with pytest.raises(pk.ParameterError, match="'curve' parameter of save_curve"):
        save_curve(reg_curve.to_pandas(), url)
    with pytest.raises(pk.ParameterError, match="'store' parameter"):
        save_curve(reg_curve, 3)
    with pytest.raises(pk.ParameterError, match="'results' parameter of certification_summary"):
        certification_summary([])
    with pytest.raises(pk.ParameterError, match="'radii' parameter"):
        certification_summary(
            pk.CertifyResult(
                np.zeros(1, int),
                np.zeros(1),
                np.zeros(1, bool),
                np.ones(1),
                np.ones(1, int),
                meta={"sigma": 1, "n0": 1, "n": 1, "alpha": 0.1},
            ),
            radii=[-1],
        )


def test_a_failure_part_way_marks_the_run_failed(reg_curve, url):
    class Flaky(pk.Store):
        writes = 0

        def write_cell(self, *args, **kwargs):
            Flaky.writes += 1
            if Flaky.writes == 3:
                raise pk.StoreError("disk full")
            super().write_cell(*args, **kwargs)

    with Flaky(url) as st:
        with pytest.raises(pk.StoreError, match="disk full"):
            save_curve(reg_curve, st)
        runs = st.list_runs()
    assert runs["status"].tolist() == ["failed"] and runs["n_cells"].tolist() == [2]


def test_stored_meta_is_json(reg_curve, url):
    run_id = save_curve(reg_curve, url)
    with pk.Store(url) as st:
        record, _ = st.load_run(run_id)
    meta = record["meta"]
    json.dumps(meta, allow_nan=True)
    assert meta["columns"] == list(reg_curve.table.columns) and meta["label"] == "ridge"
    assert meta["environment"]["numpy"] == np.__version__
    # perturbkit.load_run gives the same run as a SweepResult, tidy rows and all
    res = pk.load_run(run_id, url)
    assert is_bounds_run(res.meta) and len(res.table) == len(reg_curve.to_tidy())
