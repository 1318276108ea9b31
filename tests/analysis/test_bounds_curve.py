"""robustness_curve: known answers, common random numbers, reproducibility, tightness, figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _bounds_helpers import Linear, rng
from matplotlib.figure import Figure

from perturbkit.analysis.bounds import (
    RobustnessCurve,
    clopper_pearson,
    mean_upper_bound,
    plot_robustness_curves,
    robustness_curve,
)
from perturbkit.engine.result import TABLE_COLUMNS

LEVELS = [0.0, 0.05, 0.1, 0.2, 0.5]


@pytest.fixture(scope="module")
def linear_data() -> tuple[np.ndarray, np.ndarray]:
    return Linear.data(400, 0)


def test_columns_with_and_without_labels(linear_data) -> None:
    X, y = linear_data
    c = robustness_curve(Linear.f, X, y, levels=LEVELS, seed=0)
    t = c.to_pandas()
    for col in [
        "level",
        "deviation",
        "deviation_upper",
        "clean_mse",
        "clean_mse_upper",
        "mse",
        "mse_upper",
        "mse_upper_minkowski",
        "tighter",
        "mse_normalized",
        "mse_upper_normalized",
        "deviation_normalized",
        "deviation_upper_normalized",
    ]:
        assert col in t.columns, col
    assert list(t["level"]) == LEVELS
    assert (t["deviation_upper"] >= t["deviation"]).all()
    assert (t["mse_upper"] >= t["mse"]).all()
    assert set(t["tighter"]) <= {"direct", "minkowski"}
    assert t["deviation"][0] == 0.0 and t["mse"][0] == pytest.approx(t["clean_mse"][0])
    assert c.meta["normalizer_name"] == "var(y)"
    assert np.allclose(t["mse_normalized"], t["mse"] / np.var(y))
    unl = robustness_curve(Linear.f, X, levels=LEVELS, seed=0).to_pandas()
    assert "mse" not in unl.columns
    # The label-free deviation does not depend on the labels being there.
    assert np.array_equal(unl["deviation"], t["deviation"])


def test_linear_deviation_is_exact_in_expectation_and_scales_with_crn(linear_data) -> None:
    """Common random numbers: for a linear model deviation(ε)/ε² is the same at every level."""
    X, y = linear_data
    t = robustness_curve(
        Linear.f, X, y, levels=LEVELS, relative=False, sampler="mc", seed=3
    ).to_pandas()
    per_unit = t["deviation"][1:] / np.asarray(LEVELS[1:]) ** 2
    assert np.allclose(per_unit, per_unit.iloc[0], rtol=1e-10)
    assert per_unit.iloc[0] == pytest.approx(Linear.w @ Linear.w, rel=0.05)
    assert np.all(np.diff(t["mse"]) > 0)  # a smooth, increasing curve


@pytest.mark.parametrize("noise", ["gaussian", "uniform", "laplace"])
@pytest.mark.parametrize("sampler", ["qmc", "mc", "antithetic"])
def test_every_noise_shape_has_the_stated_variance(noise: str, sampler: str) -> None:
    """Per feature, the noise std is ε·s_j for every shape: linear deviation = ε² Σ w_j² s_j²."""
    X, _ = Linear.data(600, 1)
    X = X * np.array([1.0, 3.0, 0.5, 2.0])  # features of different spread
    t = robustness_curve(
        Linear.f,
        X,
        levels=[0.3],
        noise=noise,
        sampler=sampler,
        n_draws=32,
        target="dataset",
        confidence=0.999,
        seed=4,
    ).to_pandas()
    truth = 0.3**2 * float(np.sum(Linear.w**2 * X.std(axis=0) ** 2))
    # Within four standard errors (the 99.9% half-width is 3.09 of them) on both sides.
    half = t["deviation_upper"][0] - t["deviation"][0]
    assert abs(t["deviation"][0] - truth) <= 1.3 * half
    assert half < 0.1 * truth


def test_uniform_noise_is_bounded_and_zero_spread_features_get_none() -> None:
    X, _ = Linear.data(50, 2)
    X[:, 2] = 7.0  # a constant feature: no noise with relative=True
    seen = []

    def spy(A: np.ndarray) -> np.ndarray:
        seen.append(A.copy())
        return A @ Linear.w

    robustness_curve(spy, X, levels=[0.2], noise="uniform", n_draws=16, seed=0)
    A = seen[-1].reshape(50, 16, 4)
    delta = A - X[:, None, :]
    assert np.all(delta[..., 2] == 0)
    assert np.all(np.abs(delta) <= np.sqrt(3) * 0.2 * X.std(axis=0) + 1e-12)


@pytest.mark.parametrize(("target", "n_nets"), [("population", 1), ("dataset", 2)])
def test_qmc_rows_get_whole_nets(target: str, n_nets: int) -> None:
    """QMC gives each row one net of K points (population), or two of K/2 (dataset).

    A scrambled Sobol' net of 2^m points puts exactly one point in each of
    the 2^m equal cells of every coordinate; uniform noise shows the cells.
    """
    X, _ = Linear.data(40, 3)
    seen = []

    def spy(A: np.ndarray) -> np.ndarray:
        seen.append(A.copy())
        return A @ Linear.w

    K, eps = 16, 0.2
    c = robustness_curve(spy, X, levels=[eps], noise="uniform", n_draws=K, target=target, seed=1)
    assert c.meta["n_replicates"] == n_nets
    u = (seen[-1].reshape(40, K, 4) - X[:, None, :]) / (np.sqrt(3) * eps * X.std(axis=0))
    cells = np.floor((u + 1) / 2 * (K // n_nets)).astype(int)  # (rows, K, d)
    for net in cells.reshape(40, n_nets, K // n_nets, 4).transpose(0, 1, 3, 2):
        assert (np.sort(net, axis=-1) == np.arange(K // n_nets)).all()


def test_same_seed_same_bits_any_batch_size_and_block_crossing() -> None:
    g = rng(9)
    X = g.normal(size=(300, 200))  # 64 draws x 200 features: blocks of 81 rows
    w = g.normal(size=200) / 10
    y = X @ w + g.normal(size=300)

    def f(A: np.ndarray) -> np.ndarray:
        return np.tanh(A @ w)

    a = robustness_curve(f, X, y, levels=[0.1, 0.3], seed=5, batch_size=65536).to_pandas()
    b = robustness_curve(f, X, y, levels=[0.1, 0.3], seed=5, batch_size=700).to_pandas()
    c = robustness_curve(f, X, y, levels=[0.1, 0.3], seed=6).to_pandas()
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)
    assert not np.allclose(a["deviation"], c["deviation"])


def test_seed_none_is_recorded_and_replays(linear_data) -> None:
    X, y = linear_data
    a = robustness_curve(Linear.f, X, y, levels=[0.1], n_draws=8)
    b = robustness_curve(Linear.f, X, y, levels=[0.1], n_draws=8, seed=a.meta["root_seed"])
    pd.testing.assert_frame_equal(a.to_pandas(), b.to_pandas())


def test_multi_output_regression_averages_over_outputs() -> None:
    X, _ = Linear.data(300, 3)
    W = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.5, -1.0]])
    Y = X @ W + rng(10).normal(size=(300, 2))
    t = robustness_curve(
        lambda A: A @ W, X, Y, levels=[0.2], relative=False, target="dataset", seed=0
    ).to_pandas()
    assert t["deviation"][0] == pytest.approx(0.04 * float((W**2).sum(axis=0).mean()), rel=0.03)
    truth = float(((X @ W - Y) ** 2).mean()) + 0.04 * float((W**2).sum(axis=0).mean())
    assert t["mse"][0] == pytest.approx(truth, rel=0.03)


def test_classifier_brier_and_rates(cancer_model, breast_cancer) -> None:
    X, y = breast_cancer
    c = robustness_curve(cancer_model, X, y, levels=[0, 0.5, 1.0], n_draws=16, seed=0)
    t = c.to_pandas()
    assert c.meta["task"] == "classification" and c.meta["value_range"] == 2.0
    P = cancer_model.predict_proba(X)
    onehot = np.eye(2)[y]
    assert t["clean_mse"][0] == pytest.approx(float(((P - onehot) ** 2).sum(axis=1).mean()))
    assert t["clean_error_rate"][0] == pytest.approx(float((P.argmax(1) != y).mean()))
    assert t["flip_rate"][0] == 0 and t["error_rate"][0] == t["clean_error_rate"][0]
    assert (t["flip_rate_upper"] >= t["flip_rate"]).all() and (t["flip_rate_upper"] <= 1).all()
    assert t["flip_rate"][2] > t["flip_rate"][1] > 0
    ds = robustness_curve(
        cancer_model, X, y, levels=[1.0], n_draws=16, sampler="mc", target="dataset", seed=0
    )
    k = round(ds.table["flip_rate"][0] * len(X) * 16)
    assert ds.table["flip_rate_upper"][0] == pytest.approx(
        clopper_pearson(k, len(X) * 16, confidence=0.95)
    )


def test_tightness_dataset_and_population_on_3000_points() -> None:
    """The direct bound sits within a few percent of the truth on a few thousand points."""
    X, y = Linear.data(3000, 4)
    sigma = 0.5
    ds = robustness_curve(
        Linear.f, X, y, levels=[sigma], relative=False, target="dataset", seed=0
    ).table
    assert 1.0 <= ds.mse_upper[0] / Linear.dataset_mse(X, y, sigma) < 1.01
    assert 1.0 <= ds.deviation_upper[0] / Linear.deviation(sigma) < 1.01
    pop = robustness_curve(Linear.f, X, y, levels=[sigma], relative=False, seed=0).table
    assert pop.mse_upper[0] / Linear.population_mse(sigma) < 1.08
    assert ds.mse_upper[0] < ds.mse_upper_minkowski[0]  # the direct bound is the tighter


def test_simultaneous_bounds_are_wider(linear_data) -> None:
    X, y = linear_data
    a = robustness_curve(Linear.f, X, y, levels=LEVELS, seed=1).table
    b = robustness_curve(Linear.f, X, y, levels=LEVELS, seed=1, simultaneous=True)
    assert b.meta["alpha_per_bound"] == pytest.approx(0.05 / len(LEVELS))
    assert (b.table.mse_upper[1:] > a.mse_upper[1:]).all()


def test_auc_radius_and_tidy(linear_data) -> None:
    X, y = linear_data
    c = robustness_curve(Linear.f, X, y, levels=LEVELS, seed=0, label="linear")
    v = c.table["mse_upper_normalized"].to_numpy()
    assert c.auc() == pytest.approx(np.trapezoid(v, LEVELS))
    assert c.auc(normalize=True) == pytest.approx(np.trapezoid(v, LEVELS) / 0.5)
    tol = float(v[2]) + 1e-9
    assert c.radius(tol) == LEVELS[2]
    assert np.isnan(c.radius(float(v[0]) / 2))
    assert c.radius(1e9) == LEVELS[-1]
    tidy = c.to_tidy()
    assert list(tidy.columns) == TABLE_COLUMNS
    assert set(tidy["metric"]) >= {"mse_upper", "deviation_upper", "mse"}
    assert (tidy["perturbation"] == "gaussian_noise").all()
    assert "linear" in repr(c)
    back = RobustnessCurve.from_tidy(tidy, c.meta, "linear")
    pd.testing.assert_frame_equal(back.to_pandas(), c.to_pandas()[list(back.table.columns)])
    assert set(back.table.columns) == set(c.table.columns)


def test_mean_upper_bound_methods_agree_on_a_large_sample() -> None:
    g = rng(11).exponential(size=4000)
    bounds = {
        m: mean_upper_bound(g, method=m, value_range=float(g.max()), seed=0)
        for m in ("t", "bootstrap", "bernstein", "hoeffding")
    }
    assert bounds["t"] == pytest.approx(g.mean() + 1.6452 * g.std(ddof=1) / np.sqrt(4000), rel=1e-4)
    assert g.mean() < bounds["t"] < bounds["bernstein"] < bounds["hoeffding"]
    assert bounds["bootstrap"] == pytest.approx(bounds["t"], rel=0.01)
    two = mean_upper_bound(np.c_[g, 2 * g], seed=0)
    assert two[1] == pytest.approx(2 * two[0])


def test_clopper_pearson_matches_scipy() -> None:
    from scipy.stats import binomtest

    for k, n in [(0, 10), (3, 10), (10, 10), (37, 500)]:
        ci = binomtest(k, n, alternative="less").proportion_ci(0.95, method="exact")
        assert clopper_pearson(k, n) == pytest.approx(ci.high)
        ci = binomtest(k, n, alternative="greater").proportion_ci(0.95, method="exact")
        assert clopper_pearson(k, n, side="lower") == pytest.approx(ci.low, abs=1e-12)


def test_plot_robustness_curves_returns_a_figure(linear_data, cancer_model, breast_cancer) -> None:
    X, y = linear_data
    a = robustness_curve(Linear.f, X, y, levels=LEVELS, seed=0, label="a")
    b = robustness_curve(lambda A: 0.5 * Linear.f(A), X, y, levels=LEVELS, seed=0)
    fig = plot_robustness_curves({"model a": a, "model b": b})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 4 and [t.get_text() for t in ax.get_legend().get_texts()] == [
        "model a",
        "model b",
    ]
    assert isinstance(plot_robustness_curves([a], metric="deviation", normalized=False), Figure)
    Xc, yc = breast_cancer
    cl = robustness_curve(cancer_model, Xc, yc, levels=[0, 0.5], n_draws=4, seed=0)
    assert isinstance(plot_robustness_curves([cl], metric="error_rate"), Figure)
    assert isinstance(a, RobustnessCurve)
