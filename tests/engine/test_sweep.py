"""The sweep engine: known answers, reproducibility, resume, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import perturbkit as pk
from perturbkit import perturbations as P

DISCRETE = {
    "accuracy",
    "accuracy_drop",
    "flip_rate",
    "class_shift",
    "predicted_share",
    "recall",
    "recall_drop",
    "transition_increase",
    "flip_rate_by_class",
}


def assert_tables_equal(a: pd.DataFrame, b: pd.DataFrame, *, exact: bool = False) -> None:
    """Discrete metrics exactly; continuous ones exactly or to rounding (model arithmetic)."""
    a = a.sort_values(
        ["perturbation", "params", "magnitude", "repeat", "metric", "group"]
    ).reset_index(drop=True)
    b = b.sort_values(
        ["perturbation", "params", "magnitude", "repeat", "metric", "group"]
    ).reset_index(drop=True)
    cols = ["perturbation", "version", "params", "magnitude", "repeat", "metric", "group"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    disc = a["metric"].isin(DISCRETE)
    np.testing.assert_array_equal(a.loc[disc, "value"].to_numpy(), b.loc[disc, "value"].to_numpy())
    if exact:
        np.testing.assert_array_equal(a["value"].to_numpy(), b["value"].to_numpy())
    else:
        np.testing.assert_allclose(
            a["value"].to_numpy(), b["value"].to_numpy(), rtol=1e-10, atol=1e-13
        )


def test_linear_regressor_gaussian_noise_known_answer(diabetes, diabetes_linear):
    """E[(f(x+d) - f(x))^2] = sum_j (m s_j w_j)^2 and E[mse] = clean mse + that, for f = w.x + b."""
    X, y = diabetes
    m = 0.3
    res = pk.sweep(
        diabetes_linear,
        X,
        y,
        perturbations=[P.GaussianNoise()],
        magnitudes=[m],
        repeats=40,
        seed=7,
        progress=False,
    )
    t = res.to_pandas()
    w = diabetes_linear.coef_
    s = X.std(axis=0)
    expected_dev = float(np.sum((m * s * w) ** 2))
    dev = t.loc[t.metric == "deviation", "value"].to_numpy()
    se = dev.std(ddof=1) / np.sqrt(len(dev))
    assert abs(dev.mean() - expected_dev) < 4 * se, (dev.mean(), expected_dev, se)
    clean_mse = float(np.mean((diabetes_linear.predict(X) - y) ** 2))
    assert res.baseline["mse"] == pytest.approx(clean_mse, rel=1e-12)
    mse = t.loc[t.metric == "mse", "value"].to_numpy()
    se_mse = mse.std(ddof=1) / np.sqrt(len(mse))
    assert abs(mse.mean() - (clean_mse + expected_dev)) < 4 * se_mse + 1e-9


def test_classifier_sweep_has_the_metrics_and_a_sane_curve(breast_cancer, cancer_model):
    X, y = breast_cancer
    res = pk.sweep(
        cancer_model,
        X,
        y,
        perturbations=["gaussian_noise"],
        magnitudes=[0.0, 0.5, 2.0, 5.0],
        repeats=2,
        seed=1,
        progress=False,
    )
    t = res.to_pandas(groups=False)
    for metric in [
        "accuracy",
        "accuracy_drop",
        "flip_rate",
        "confidence_drop",
        "tv_distance",
        "js_distance",
        "class_shift",
        "entropy",
        "ece",
        "log_loss",
        "brier",
    ]:
        assert metric in set(t.metric), metric
    acc = res.curve("accuracy")["gaussian_noise"]
    assert acc.loc[0.0] == pytest.approx(res.baseline["accuracy"])
    assert acc.loc[0.0] > 0.95
    assert acc.loc[5.0] < acc.loc[0.5] <= acc.loc[0.0] + 1e-12
    flips = res.curve("flip_rate")["gaussian_noise"]
    assert flips.loc[0.0] == 0 and flips.is_monotonic_increasing
    # Per-class breakdown and error modes exist for the two classes.
    groups = set(res.to_pandas().query("metric == 'recall'")["group"])
    assert groups == {"class=0", "class=1"}
    # Error modes: the growth of the off-diagonal confusion cells adds up to the accuracy drop.
    t_all = res.to_pandas()
    for (mag, rep), cell in t_all[t_all.magnitude > 0].groupby(["magnitude", "repeat"]):
        growth = cell.loc[cell.metric == "transition_increase", "value"].sum()
        drop = cell.loc[cell.metric == "accuracy_drop", "value"].item()
        assert growth == pytest.approx(drop, abs=1e-12), (mag, rep)
    assert (t_all.metric == "transition_increase").any()


def test_label_free_sweep(breast_cancer, cancer_model):
    X, _ = breast_cancer
    res = pk.sweep(
        cancer_model, X, perturbations=["gaussian_noise"], magnitudes=[1.0], seed=0, progress=False
    )
    metrics = set(res.to_pandas()["metric"])
    assert "flip_rate" in metrics and "accuracy" not in metrics and "ece" not in metrics


@pytest.mark.parametrize("batch_size", [1, 100, 300, 5000])
def test_same_result_whatever_the_batch_size(breast_cancer, cancer_model, batch_size):
    X, y = breast_cancer
    kw = dict(
        perturbations=["gaussian_noise", P.get("missing_values", fill="mean")],
        magnitudes={"gaussian_noise": [0.5, 1.0], "missing_values": [0.1, 0.3]},
        repeats=2,
        seed=3,
        progress=False,
        block_rows=128,
    )
    ref = pk.sweep(cancer_model, X, y, batch_size=256, **kw)
    other = pk.sweep(cancer_model, X, y, batch_size=batch_size, **kw)
    assert_tables_equal(ref.to_pandas(), other.to_pandas())


def test_same_result_whatever_the_cell_order(diabetes, diabetes_linear):
    X, y = diabetes
    s = pk.Sweep(
        diabetes_linear,
        X,
        y,
        perturbations=["gaussian_noise", "uniform_noise"],
        magnitudes=[0.1, 0.2, 0.4],
        repeats=3,
        seed=11,
        progress=False,
        block_rows=100,
    )
    cells = s.plan()
    full = s.run().to_pandas()
    rng = np.random.default_rng(0)
    shuffled = [cells[i] for i in rng.permutation(len(cells))]
    # Compute cells one at a time, in a random order, each in a fresh Sweep.
    parts = []
    for c in shuffled:
        s2 = pk.Sweep(
            diabetes_linear,
            X,
            y,
            perturbations=["gaussian_noise", "uniform_noise"],
            magnitudes=[0.1, 0.2, 0.4],
            repeats=3,
            seed=11,
            progress=False,
            block_rows=100,
        )
        parts.append(s2.run(cells=[c]).to_pandas())
    assert_tables_equal(full, pd.concat(parts), exact=True)


def test_seed_recorded_and_reproducible(diabetes, diabetes_linear):
    X, y = diabetes
    kw = dict(perturbations=["gaussian_noise"], magnitudes=[0.5], progress=False)
    a = pk.sweep(diabetes_linear, X, y, **kw)
    root = a.meta["root_seed"]
    assert isinstance(root, int) and a.meta["seed_given"] is False
    b = pk.sweep(diabetes_linear, X, y, seed=root, **kw)
    assert_tables_equal(a.to_pandas(), b.to_pandas(), exact=True)
    c = pk.sweep(diabetes_linear, X, y, seed=root + 1, **kw)
    assert not np.array_equal(a.to_pandas()["value"], c.to_pandas()["value"])


def test_common_random_numbers_make_curves_smooth(diabetes, diabetes_linear):
    """With shared draws, deviation is exactly quadratic in m for a linear model."""
    X, _ = diabetes
    res = pk.sweep(
        diabetes_linear,
        X,
        perturbations=["gaussian_noise"],
        magnitudes=[0.1, 0.2, 0.4],
        seed=5,
        progress=False,
    )
    dev = res.curve("deviation")["gaussian_noise"]
    assert dev.loc[0.2] / dev.loc[0.1] == pytest.approx(4.0, rel=1e-9)
    assert dev.loc[0.4] / dev.loc[0.1] == pytest.approx(16.0, rel=1e-9)


def test_store_round_trip_and_resume(tmp_path, breast_cancer, cancer_model):
    X, y = breast_cancer
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    kw = dict(
        perturbations=["gaussian_noise", P.get("missing_values", fill="mean")],
        magnitudes={"gaussian_noise": [0, 0.5, 1.0], "missing_values": [0.2]},
        repeats=2,
        seed=21,
        progress=False,
    )
    full = pk.sweep(cancer_model, X, y, store=url, **kw)
    reloaded = pk.load_run(full.run_id, url)
    pd.testing.assert_frame_equal(
        full.to_pandas().reset_index(drop=True), reloaded.to_pandas().reset_index(drop=True)
    )
    assert reloaded.meta["root_seed"] == 21

    # An interrupted run: a model that is stopped (Ctrl-C) part-way.
    calls = {"n": 0}

    def stopping(Xb):
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt
        return cancer_model.predict_proba(Xb)

    url2 = f"sqlite:///{tmp_path / 'resume.db'}"
    model = pk.wrap(stopping, task="classification")
    model.classes_ = cancer_model.classes_
    with pytest.raises(KeyboardInterrupt):
        pk.sweep(model, X, y, store=url2, **kw)
    with pk.Store(url2) as st:
        runs = st.list_runs()
        assert list(runs["status"]) == ["interrupted"]
        n_done = len(st.stored_cells(runs["run_id"][0]))
    assert 0 < n_done < 8

    calls["n"] = -10_000
    resumed = pk.sweep(model, X, y, store=url2, resume=True, **kw)
    assert resumed.run_id == runs["run_id"][0]
    assert_tables_equal(full.to_pandas(), resumed.to_pandas(), exact=True)
    with pk.Store(url2) as st:
        assert list(st.list_runs()["status"]) == ["complete"]


def test_thresholds(breast_cancer, cancer_model):
    X, y = breast_cancer
    res = pk.sweep(
        cancer_model,
        X,
        y,
        perturbations=["gaussian_noise"],
        magnitudes=[0.0, 0.25, 0.5, 1.0, 2.0, 4.0],
        seed=2,
        progress=False,
    )
    th = res.thresholds("accuracy_drop", 0.05)
    t = float(th["threshold"].iloc[0])
    curve = res.curve("accuracy_drop")["gaussian_noise"]
    above = curve[curve >= 0.05].index.min()
    assert 0 < t <= above
    assert pk.find_threshold([0, 1, 2], [0.0, 0.02, 0.10], 0.06) == pytest.approx(1.5)
    assert np.isnan(pk.find_threshold([0, 1], [0.0, 0.01], 0.05))


def test_meta_records_environment_and_fingerprints(diabetes, diabetes_linear):
    X, y = diabetes
    res = pk.sweep(
        diabetes_linear,
        X,
        y,
        perturbations=["gaussian_noise"],
        magnitudes=[0.1],
        seed=0,
        progress=False,
    )
    m = res.meta
    assert m["environment"]["numpy"] == np.__version__
    assert len(m["data_fingerprint"]) == 32 and m["model"]["fingerprint"]
    assert m["perturbations"][0]["id"] == "gaussian_noise@1"
    assert m["n_rows"] == X.shape[0]


def test_dataframe_columns_by_name(diabetes, diabetes_linear):
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    X, y = frame.drop(columns="target"), frame["target"]
    from sklearn.linear_model import LinearRegression

    lin = LinearRegression().fit(X, y)
    res = pk.sweep(
        lin,
        X,
        y,
        perturbations=[P.get("gaussian_noise", columns=["bmi"])],
        magnitudes=[0.5],
        repeats=30,
        seed=4,
        progress=False,
    )
    dev = res.to_pandas().query("metric == 'deviation'")["value"]
    j = list(X.columns).index("bmi")
    expected = (0.5 * X["bmi"].std(ddof=0) * lin.coef_[j]) ** 2
    assert abs(dev.mean() - expected) < 4 * dev.std(ddof=1) / np.sqrt(len(dev))


def test_a_run_of_some_cells_stays_resumable(tmp_path, diabetes, diabetes_linear):
    X, y = diabetes
    url = f"sqlite:///{tmp_path / 'part.db'}"
    kw = dict(
        perturbations=["gaussian_noise"],
        magnitudes=[0.1, 0.5],
        repeats=2,
        seed=9,
        progress=False,
        store=url,
    )
    s = pk.Sweep(diabetes_linear, X, y, **kw)
    part = s.run(cells=s.plan()[:1])
    with pk.Store(url) as st:
        assert st.list_runs()["status"].tolist() == ["interrupted"]
    full = pk.sweep(diabetes_linear, X, y, resume=True, **kw)
    assert full.run_id == part.run_id
    alone = pk.sweep(diabetes_linear, X, y, **{**kw, "store": None})
    assert_tables_equal(alone.to_pandas(), full.to_pandas(), exact=True)
    with pk.Store(url) as st:
        assert st.list_runs()["status"].tolist() == ["complete"]
