"""Interaction effects: known answers on linear models, the table, the errors, the heatmap."""

from __future__ import annotations

import io
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

import perturbkit as pk
from perturbkit.analysis.interactions import COLUMNS, interaction_heatmap, interactions
from perturbkit.exceptions import ParameterError
from perturbkit.perturbations import GaussianNoise, SensorDrift


# -- known answers -----------------------------------------------------------------------
def test_a_linear_model_has_no_interaction_in_bias(diabetes: Any, diabetes_linear: Any) -> None:
    """bias = mean f(x + d) − f(x) is linear in d: additive perturbations add up, every repeat.

    (Perturbations that replace values, such as outliers, do interact: the
    replaced entries lose the other perturbation's change.)
    """
    X, y = diabetes
    table = interactions(
        diabetes_linear,
        X,
        y,
        perturbations=["gaussian_noise", "sensor_drift", "laplace_noise"],
        magnitude={"gaussian_noise": 0.5, "sensor_drift": 1.0, "laplace_noise": 0.3},
        metric="bias",
        repeats=4,
        seed=0,
    )
    pairs = table[table["kind"] == "pair"]
    assert len(pairs) == 3
    scale = np.abs(table["delta"]).max()
    np.testing.assert_allclose(pairs["interaction"], 0.0, atol=1e-9 * scale)
    np.testing.assert_allclose(pairs["delta"], pairs["additive"], rtol=1e-9, atol=1e-9 * scale)
    assert (pairs["interaction_high"] - pairs["interaction_low"]).max() < 1e-8 * scale


def test_two_drifts_interact_by_twice_their_product(diabetes: Any, diabetes_linear: Any) -> None:
    """deviation = mean (f(x + d) − f(x))²: drifts a and b give a², b² and (a + b)²."""
    X, _ = diabetes
    w, s = diabetes_linear.coef_, X.std(axis=0)
    A, B = SensorDrift(columns=[2]), SensorDrift(columns=[3, 8], direction="down")
    table = interactions(
        diabetes_linear,
        X,
        perturbations=[A, B],
        magnitude=[0.5, 2.0],
        metric="deviation",
        repeats=2,
        seed=1,
    )
    a = 0.5 * w[2] * s[2]
    b = -2.0 * (w[3] * s[3] + w[8] * s[8])
    single = table[table["kind"] == "single"].set_index("label")["delta"]
    pair = table[table["kind"] == "pair"].iloc[0]
    assert single.iloc[0] == pytest.approx(a * a, rel=1e-9)
    assert single.iloc[1] == pytest.approx(b * b, rel=1e-9)
    assert pair["delta"] == pytest.approx((a + b) ** 2, rel=1e-9)
    assert pair["interaction"] == pytest.approx(2 * a * b, rel=1e-9)
    assert pair["interaction_p"] == 0.0  # exact, with zero spread across repeats


def test_common_random_numbers_make_the_pair_see_the_singles_noise(
    diabetes: Any, diabetes_linear: Any
) -> None:
    """Two noises on the same columns: the pair's deviation is E(w·(z1 + z2))², draw for draw."""
    X, _ = diabetes
    p, q = GaussianNoise(columns=[2]), GaussianNoise(columns=[2], absolute=True)
    table = interactions(
        diabetes_linear,
        X,
        perturbations=[p, q],
        magnitude=[1.0, 0.01],
        repeats=6,
        seed=2,
        metric="bias",
    )
    pair = table[table["kind"] == "pair"].iloc[0]
    # Bias is linear, so with shared draws the interaction is zero in every repeat.
    assert abs(pair["interaction"]) < 1e-9 * abs(table["delta"]).max()


# -- the table on a real classifier -------------------------------------------------------
@pytest.fixture(scope="module")
def cancer_table(breast_cancer: Any, cancer_model: Any) -> pd.DataFrame:
    X, y = breast_cancer
    return interactions(
        cancer_model,
        X,
        y,
        perturbations=[
            "gaussian_noise",
            {"name": "missing_values", "params": {"fill": "mean"}},
            "outliers",
        ],
        magnitude={"gaussian_noise": 1.0, "missing_values": 0.3, "outliers": 0.05},
        repeats=5,
        seed=0,
        pairs=[("gaussian_noise", "outliers"), (1, 0), ("gaussian_noise", 1, "outliers")],
    )


def test_the_table_is_tidy(cancer_table: pd.DataFrame) -> None:
    t = cancer_table
    assert list(t.columns) == COLUMNS
    assert t["kind"].tolist() == ["single"] * 3 + ["pair", "pair", "stack"]
    assert t["label"].iloc[3] == "gaussian_noise + outliers"
    assert t["label"].iloc[4] == "missing_values(fill='mean') + gaussian_noise"
    assert t["members"].iloc[5] == ("gaussian_noise", "missing_values(fill='mean')", "outliers")
    assert t["magnitudes"].iloc[5] == (1.0, 0.3, 0.05)
    assert (t["metric"] == "accuracy_drop").all() and (t["clean"] == 0).all()
    assert (t["n_repeats"] == 5).all()
    singles, groups = t[t["kind"] == "single"], t[t["kind"] != "single"]
    assert singles[["additive", "interaction", "interaction_p"]].isna().all().all()
    assert groups[["interaction_low", "interaction_high", "interaction_p"]].notna().all().all()
    assert (groups["interaction_low"] <= groups["interaction"]).all()
    assert (groups["interaction"] <= groups["interaction_high"]).all()
    np.testing.assert_allclose(groups["delta"] - groups["additive"], groups["interaction"])
    assert t.attrs["meta"]["root_seed"] == 0


def test_singles_match_a_plain_sweep(
    cancer_table: pd.DataFrame, breast_cancer: Any, cancer_model: Any
) -> None:
    X, y = breast_cancer
    result = pk.sweep(
        cancer_model,
        X,
        y,
        perturbations=["outliers"],
        magnitudes=[0, 0.05],
        repeats=5,
        seed=0,
        progress=False,
    )
    s = result.summary()
    mean = s[(s["metric"] == "accuracy_drop") & (s["magnitude"] == 0.05)]["mean"].item()
    assert cancer_table.set_index("label").loc["outliers", "delta"] == pytest.approx(mean)


def test_a_different_seed_gives_other_draws(breast_cancer: Any, cancer_model: Any) -> None:
    X, y = breast_cancer
    kw = dict(perturbations=["gaussian_noise", "outliers"], magnitude=0.5, repeats=3)
    a = interactions(cancer_model, X, y, seed=1, **kw)
    b = interactions(cancer_model, X, y, seed=1, **kw)
    c = interactions(cancer_model, X, y, seed=2, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert not a["delta"].equals(c["delta"])


# -- audio through the engine ---------------------------------------------------------------
def test_gain_and_noise_do_not_interact_for_a_level_free_model() -> None:
    """Noise at an SNR is relative to the clip: after a gain it is the same noise, scaled."""
    gen = np.random.default_rng(0)
    sr, n = 8000, 120
    f0 = np.where(gen.random(n) < 0.5, 400.0, 1200.0)[:, None]
    t = np.arange(sr // 4) / sr
    x = (0.3 * np.sin(2 * np.pi * f0 * t + gen.uniform(0, 6, (n, 1)))).astype(np.float32)
    y = (f0[:, 0] > 800).astype(int)

    def model(batch: np.ndarray) -> np.ndarray:
        spec = np.abs(np.fft.rfft(batch, axis=1)) ** 2
        high = spec[:, 200:].sum(1) / spec.sum(1)  # level-free: a ratio of energies
        p = 1 / (1 + np.exp(-40 * (high - 0.5)))
        return np.stack([1 - p, p], axis=1)

    table = interactions(
        pk.wrap(model, task="classification"),
        x,
        y,
        perturbations=["gain", "white_noise", "low_pass"],
        magnitude={"gain": 12.0, "white_noise": 1.5, "low_pass": 2.0},
        repeats=3,
        seed=0,
    )
    t = table.set_index("label")
    assert t.loc["gain", "delta"] == 0
    assert t.loc["white_noise", "delta"] > 0.05
    assert abs(t.loc["gain + white_noise", "interaction"]) <= 2 / n


# -- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"perturbations": ["gaussian_noise"]}, "at least two perturbations"),
        ({"perturbations": "gaussian_noise"}, "list of at least two"),
        ({"pairs": [("gaussian_noise", "nope")]}, "names 'nope'"),
        ({"pairs": [("gaussian_noise",)]}, "two or more"),
        ({"pairs": [(0, 0)]}, "repeats a perturbation"),
        ({"pairs": []}, "non-empty list"),
        ({"magnitude": 0.0}, "must be > 0"),
        ({"magnitude": {"outliers": 0.1}}, "no entry for 'gaussian_noise'"),
        ({"magnitude": [0.1]}, "one float per perturbation"),
        ({"repeats": 0}, "'repeats' parameter of interactions"),
        ({"repeats": 1}, r"'repeats' parameter of interactions must be an int in the range \[2"),
        ({"metric": "acuracy"}, "Did you mean 'accuracy'"),
    ],
)
def test_bad_arguments_fail_in_one_line(
    kwargs: dict[str, Any], match: str, breast_cancer: Any, cancer_model: Any
) -> None:
    X, y = breast_cancer
    args: dict[str, Any] = {"perturbations": ["gaussian_noise", "outliers"], "magnitude": 0.1}
    args.update(kwargs)
    with pytest.raises(ParameterError, match=match) as info:
        interactions(cancer_model, X[:50], y[:50], repeats=args.pop("repeats", 2), **args)
    assert "\n" not in str(info.value)


# -- the heatmap ---------------------------------------------------------------------------
def test_heatmap_is_a_figure_without_pyplot_state(cancer_table: pd.DataFrame) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    plt = sys.modules.get("matplotlib.pyplot")
    before = plt.get_fignums() if plt is not None else []
    fig = interaction_heatmap(cancer_table)
    assert isinstance(fig, Figure) and isinstance(fig.canvas, FigureCanvasAgg)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"
    texts = [t.get_text() for t in fig.axes[0].texts]
    inter = cancer_table.set_index("label").loc["gaussian_noise + outliers", "interaction"]
    assert any(t.startswith(f"{inter:+.3g}") for t in texts)
    if plt is not None:
        assert plt.get_fignums() == before


def test_heatmap_refuses_other_tables() -> None:
    with pytest.raises(ParameterError, match="interactions\\(\\) returns"):
        interaction_heatmap(pd.DataFrame({"a": [1]}))
