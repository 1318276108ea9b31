"""Tabular perturbations: realised magnitude matches the documented unit, and the plumbing.

Statistical checks use tolerances derived from the sample size (a few
standard errors), with fixed seeds, so they are exact to rerun.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from perturbkit import perturbations
from perturbkit.exceptions import ParameterError
from perturbkit.perturbations import (
    Combine,
    Compose,
    FeatureSwap,
    GaussianNoise,
    LaplaceNoise,
    MissingValues,
    MultiplicativeNoise,
    Outliers,
    Quantization,
    SensorDrift,
    UniformNoise,
)

ADDITIVE = [GaussianNoise, UniformNoise, LaplaceNoise]
DETERMINISTIC = ["sensor_drift", "quantization"]
FRACTIONS = ["missing_values", "outliers", "feature_swap"]
SCALES = np.array([1.0, 10.0, 0.1, 3.0])


@pytest.fixture(scope="module")
def big() -> np.ndarray:
    """50,000 x 4 = 200,000 entries with very different feature scales."""
    gen = np.random.default_rng(12345)
    return gen.normal(size=(50_000, 4)) * SCALES + np.array([0.0, 100.0, -5.0, 1.0])


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    gen = np.random.default_rng(7)
    return gen.normal(size=(40, 4)) * SCALES


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _slice_params(params: Any, rows: slice) -> Any:
    if params is None:
        return None
    if isinstance(params, tuple):
        return tuple(p[rows] for p in params)
    return params[rows]


# -- realised magnitude == documented unit ----------------------------------------------
@pytest.mark.parametrize("cls", ADDITIVE)
@pytest.mark.parametrize("m", [0.05, 0.3, 2.0])
def test_additive_noise_std_is_magnitude_times_feature_std(
    cls: type, m: float, big: np.ndarray
) -> None:
    p = cls().fit(big)
    delta = p(big, m, _rng(1)) - big
    n = big.shape[0]
    ratio = delta.std(axis=0) / (m * p.scale_)
    # The std estimate has relative SE sqrt((kurtosis - 1) / (4 n)); Laplace kurtosis 6.
    assert np.all(np.abs(ratio - 1) < 5 * math.sqrt(5 / (4 * n))), ratio
    assert np.all(np.abs(delta.mean(axis=0)) < 5 * m * p.scale_ / math.sqrt(n))
    np.testing.assert_allclose(p.scale_, big.std(axis=0))


def test_uniform_noise_is_bounded_by_sqrt3_m_s(big: np.ndarray) -> None:
    p = UniformNoise().fit(big)
    delta = np.abs(p(big, 0.2, _rng(2)) - big)
    bound = math.sqrt(3) * 0.2 * p.scale_
    assert np.all(delta <= bound * (1 + 1e-12))
    assert np.all(delta.max(axis=0) > 0.99 * bound)  # and reaches it


def test_laplace_noise_has_laplace_tails(big: np.ndarray) -> None:
    p = LaplaceNoise().fit(big)
    z = (p(big, 1.0, _rng(3)) - big) / p.scale_
    # P(|Z| > 3) for Laplace with unit variance is exp(-3 sqrt 2) = 0.0144; Gaussian 0.0027.
    frac = np.mean(np.abs(z) > 3)
    assert abs(frac - math.exp(-3 * math.sqrt(2))) < 5 * math.sqrt(0.0144 / z.size)


@pytest.mark.parametrize("cls", ADDITIVE)
def test_additive_noise_absolute_ignores_feature_scale(cls: type, big: np.ndarray) -> None:
    delta = cls(absolute=True).fit(big)(big, 0.5, _rng(4)) - big
    np.testing.assert_allclose(delta.std(axis=0), 0.5, rtol=0.02)


@pytest.mark.parametrize("cls", ADDITIVE)
def test_additive_noise_common_random_numbers(cls: type, small: np.ndarray) -> None:
    p = cls().fit(small)
    d1 = p(small, 0.1, _rng(5)) - small
    d2 = p(small, 0.7, _rng(5)) - small
    np.testing.assert_allclose(d2 / 0.7, d1 / 0.1, rtol=1e-9, atol=1e-12)


def test_multiplicative_noise_relative_change_std(big: np.ndarray) -> None:
    p = MultiplicativeNoise()
    rel = p(big, 0.2, _rng(6)) / big - 1
    n = big.shape[0]
    np.testing.assert_allclose(rel.std(axis=0), 0.2, rtol=5 / math.sqrt(2 * n))
    assert np.all(np.abs(rel.mean(axis=0)) < 5 * 0.2 / math.sqrt(n))
    X = np.array([[0.0, 2.0]])
    assert p(X, 1.0, _rng(0))[0, 0] == 0.0  # zeros stay zero


def test_sensor_drift_is_exactly_m_times_std(small: np.ndarray) -> None:
    p = SensorDrift().fit(small)
    np.testing.assert_allclose(p(small, 0.3) - small, np.broadcast_to(0.3 * p.scale_, small.shape))
    down = SensorDrift(direction="down").fit(small)
    np.testing.assert_allclose(down(small, 0.3) - small, -(p(small, 0.3) - small))
    w = [1.0, -1.0, 0.5, 0.0]
    weighted = SensorDrift(direction=w).fit(small)
    np.testing.assert_allclose(
        weighted(small, 2.0) - small, np.broadcast_to(2.0 * p.scale_ * w, small.shape)
    )
    absolute = SensorDrift(absolute=True)
    np.testing.assert_allclose(absolute(small, 0.25) - small, 0.25)
    assert p(small, 0.3, 1).tobytes() == p(small, 0.3, 2).tobytes()  # deterministic


def test_sensor_drift_direction_length_must_match_features(small: np.ndarray) -> None:
    with pytest.raises(ParameterError, match=r"one weight per feature \(4\)\. Got 2 weights"):
        SensorDrift(direction=[1, -1]).fit(small)
    with pytest.raises(ParameterError, match="one weight per feature"):
        SensorDrift(direction=[1, -1])(small, 0.1)


@pytest.mark.parametrize("m", [0.01, 0.3, 1.7])
def test_quantization_error_at_most_half_a_step_on_an_anchored_grid(
    m: float, big: np.ndarray
) -> None:
    p = Quantization().fit(big)
    out = p(big, m)
    step = m * p.scale_
    assert np.all(np.abs(out - big) <= step / 2 * (1 + 1e-9))
    k = (out - p.min_) / step
    np.testing.assert_allclose(k, np.round(k), atol=1e-6)
    np.testing.assert_allclose(p(out, m), out)  # idempotent
    # The error is close to uniform on [-step/2, step/2]: its std is step / sqrt(12).
    np.testing.assert_allclose((out - big).std(axis=0), step / math.sqrt(12), rtol=0.05)


def test_quantization_absolute_constant_and_nan() -> None:
    X = np.array([[0.26, 5.0, np.nan], [1.1, 5.0, 2.0], [-0.6, 5.0, 3.0]])
    out = Quantization(absolute=True).fit(X)(X, 0.5)
    # Grid anchored at the reference min: min + k * 0.5.
    np.testing.assert_allclose(out[:, 0], [-0.6 + 0.5 * 2, -0.6 + 0.5 * 3, -0.6])
    np.testing.assert_array_equal(out[:, 1], 5.0)
    assert np.isnan(out[0, 2])
    const = Quantization().fit(X)(X, 0.5)
    np.testing.assert_array_equal(const[:, 1], X[:, 1])  # zero spread: step 0, left as is


@pytest.mark.parametrize("m", [0.05, 0.5, 0.9])
def test_missing_fraction_is_magnitude(m: float, big: np.ndarray) -> None:
    out = MissingValues()(big, m, _rng(8))
    frac = np.isnan(out).mean(axis=0)
    se = math.sqrt(m * (1 - m) / big.shape[0])
    assert np.all(np.abs(frac - m) < 5 * se), frac
    keep = ~np.isnan(out)
    np.testing.assert_array_equal(out[keep], big[keep])


def test_missing_values_fill_modes(small: np.ndarray) -> None:
    for fill, expected in [
        ("mean", small.mean(axis=0)),
        ("median", np.median(small, axis=0)),
        (-1.5, np.full(4, -1.5)),
    ]:
        out = MissingValues(fill=fill).fit(small)(small, 1.0, _rng(0))
        np.testing.assert_allclose(out, np.broadcast_to(expected, small.shape))
    assert np.isnan(MissingValues()(small, 1.0, _rng(0))).all()


@pytest.mark.parametrize("mode", ["salt_pepper", "spike"])
@pytest.mark.parametrize("m", [0.02, 0.4])
def test_outlier_fraction_and_values(mode: str, m: float, big: np.ndarray) -> None:
    p = Outliers(mode=mode, k=4.0).fit(big)
    out = p(big, m, _rng(9))
    changed = out != big
    se = math.sqrt(m * (1 - m) / big.shape[0])
    assert np.all(np.abs(changed.mean(axis=0) - m) < 5 * se)
    if mode == "salt_pepper":
        at_max = out == p.max_
        at_min = out == p.min_
        assert np.all(at_max | at_min | ~changed)
        assert abs(at_max[changed].mean() - 0.5) < 5 * math.sqrt(0.25 / changed.sum())
    else:
        z = (out - big)[changed] / np.broadcast_to(p.scale_, big.shape)[changed]
        np.testing.assert_allclose(np.abs(z), 4.0)
        assert abs((z > 0).mean() - 0.5) < 5 * math.sqrt(0.25 / z.size)


@pytest.mark.parametrize("m", [0.1, 0.6, 1.0])
def test_feature_swap_fraction_and_marginals(m: float, big: np.ndarray) -> None:
    p = FeatureSwap()
    out, (u, perm) = p(big, m, _rng(10), return_params=True)
    n = big.shape[0]
    chosen = u < m
    assert np.all(np.abs(chosen.mean(axis=0) - m) < 5 * math.sqrt(max(m * (1 - m), 1e-12) / n))
    changed = out != big  # values are continuous: changed unless a row drew itself
    expected = m * (1 - 1 / n)
    assert np.all(
        np.abs(changed.mean(axis=0) - expected)
        < 5 * math.sqrt(max(expected * (1 - expected), 1e-12) / n) + 1e-12
    )
    assert not np.any(changed & ~chosen)
    # Every column's permutation is a permutation of the rows.
    np.testing.assert_array_equal(
        np.sort(perm, axis=0), np.broadcast_to(np.arange(n)[:, None], perm.shape)
    )
    if m == 1.0:  # the column's values are exactly a permutation of themselves
        np.testing.assert_array_equal(np.sort(out, axis=0), np.sort(big, axis=0))
    # Swapped values come from the same column: the marginal is kept (mean, std).
    np.testing.assert_allclose(
        out.mean(axis=0), big.mean(axis=0), atol=float(5 * SCALES.max() / math.sqrt(n))
    )
    np.testing.assert_allclose(out.std(axis=0), big.std(axis=0), rtol=0.02)


def test_feature_swap_breaks_the_link_to_the_row(big: np.ndarray) -> None:
    X = big[:, :2].copy()
    X[:, 1] = X[:, 0] * 2 + 0.01 * X[:, 1]  # strongly correlated columns
    out = FeatureSwap(columns=[1])(X, 1.0, _rng(11))
    assert np.corrcoef(X[:, 0], X[:, 1])[0, 1] > 0.99
    assert abs(np.corrcoef(out[:, 0], out[:, 1])[0, 1]) < 5 / math.sqrt(X.shape[0])


# -- common random numbers: masks nest across magnitudes --------------------------------
@pytest.mark.parametrize("name", FRACTIONS)
def test_masks_nest_across_magnitudes(name: str, small: np.ndarray) -> None:
    X = np.repeat(small, 25, axis=0)  # 1000 rows
    X = X + np.arange(X.shape[0])[:, None] * 1e-3  # distinct values
    p = perturbations.get(name).fit(X)
    changed = [~np.isclose(p(X, m, _rng(12)), X, equal_nan=False) for m in (0.05, 0.2, 0.5, 1.0)]
    for a, b in itertools.pairwise(changed):
        assert np.all(b[a]), f"{name}: an entry changed at a smaller magnitude but not a larger one"
        assert b.sum() > a.sum()
    if name != "missing_values":  # an entry's outlier / donor is the same at every magnitude
        o1, o2 = p(X, 0.2, _rng(12)), p(X, 0.5, _rng(12))
        np.testing.assert_array_equal(o1[changed[1]], o2[changed[1]])


# -- columns -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", perturbations.list("tabular"))
def test_columns_by_index_and_by_name_leave_others_bit_identical(
    name: str, small: np.ndarray
) -> None:
    df = pd.DataFrame(small, columns=["a", "b", "c", "d"], index=pd.RangeIndex(10, 50))
    by_index = perturbations.get(name, columns=[1, -1]).fit(small)(small, 0.5, _rng(13))
    by_name = perturbations.get(name, columns=["b", "d"]).fit(df)(df, 0.5, _rng(13))
    assert isinstance(by_name, pd.DataFrame)
    assert list(by_name.columns) == ["a", "b", "c", "d"] and by_name.index.equals(df.index)
    np.testing.assert_array_equal(by_name.to_numpy(), by_index)
    for out in (by_index, by_name.to_numpy()):
        assert out[:, [0, 2]].tobytes() == small[:, [0, 2]].tobytes()
        assert not np.array_equal(out[:, [1, 3]], small[:, [1, 3]], equal_nan=True)
    single = perturbations.get(name, columns="c").fit(df)(df, 0.5, _rng(13))
    assert single[["a", "b", "d"]].equals(df[["a", "b", "d"]])


def test_bad_columns_fail_with_one_line(small: np.ndarray) -> None:
    df = pd.DataFrame(small, columns=["a", "b", "c", "d"])
    cases = [
        (lambda: GaussianNoise(columns=["b"]).fit(small), "fit on a DataFrame to use names"),
        (lambda: GaussianNoise(columns=["zz"]).fit(df), "names column 'zz'.*allowed: one of 'a'"),
        (lambda: GaussianNoise(columns=[4]).fit(small), "one of 4 features. Got 4 instead"),
        (lambda: perturbations.get("gaussian_noise", columns=[]), "'columns' parameter"),
        (lambda: perturbations.get("gaussian_noise", columns=1.5), "'columns' parameter"),
    ]
    for make, message in cases:
        with pytest.raises(ParameterError, match=message) as info:
            make()
        assert "\n" not in str(info.value)


# -- DataFrames, dtypes, fitting ----------------------------------------------------------
@pytest.mark.parametrize("name", perturbations.list("tabular"))
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtype_kept_and_caller_untouched(name: str, dtype: type, small: np.ndarray) -> None:
    X = small.astype(dtype)
    before = X.tobytes()
    out = perturbations.get(name)(X, 0.5, _rng(14))
    assert out.dtype == dtype and out.shape == X.shape
    assert X.tobytes() == before
    assert perturbations.get(name)(X, 0, _rng(14)).tobytes() == X.tobytes()


@pytest.mark.parametrize("name", perturbations.list("tabular"))
def test_dataframe_in_dataframe_out(name: str, small: np.ndarray) -> None:
    df = pd.DataFrame(small, columns=list("wxyz"), index=list(range(100, 140)))
    out = perturbations.get(name)(df, 0.5, _rng(15))
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list("wxyz") and list(out.index) == list(range(100, 140))
    np.testing.assert_array_equal(out.to_numpy(), perturbations.get(name)(small, 0.5, _rng(15)))
    ints = pd.DataFrame({"a": np.arange(40), "b": np.arange(40) * 3})
    out = perturbations.get(name)(ints, 0.5, _rng(15))
    assert (out.dtypes == np.float64).all()


def test_fitted_statistics_are_used_not_the_batch(big: np.ndarray) -> None:
    ref = big[:, :1] * 0 + np.random.default_rng(16).normal(size=(big.shape[0], 1)) * 2.0
    batch = big[:, 1:2]  # std 10
    fitted = GaussianNoise().fit(ref)
    delta = fitted(batch, 0.5, _rng(17)) - batch
    np.testing.assert_allclose(delta.std(), 0.5 * 2.0, rtol=0.02)
    unfitted = GaussianNoise()
    delta = unfitted(batch, 0.5, _rng(17)) - batch
    np.testing.assert_allclose(delta.std(), 0.5 * batch.std(), rtol=0.02)
    assert not unfitted.fitted  # calling an unfitted instance does not fit it
    assert fitted.fitted and fitted.n_features_in_ == 1


def test_fit_ignores_nan_and_all_nan_columns_do_not_warn() -> None:
    ref = np.array([[1.0, np.nan], [3.0, np.nan], [np.nan, np.nan]])
    p = MissingValues(fill="median").fit(ref)
    np.testing.assert_allclose(p.scale_, [1.0, 0.0])
    np.testing.assert_allclose(p.mean_[0], 2.0)
    np.testing.assert_allclose(p.median_[0], 2.0)
    assert np.isnan(p.mean_[1])


def test_fitted_on_other_width_fails_clearly(small: np.ndarray) -> None:
    p = GaussianNoise().fit(small)
    with pytest.raises(ValueError, match="fitted on 4 features; the batch has 3"):
        p(small[:, :3], 0.1, _rng(0))


# -- batch independence -----------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n in perturbations.list("tabular") if n != "feature_swap"])
def test_rows_do_not_depend_on_their_batch_once_fitted(name: str, small: np.ndarray) -> None:
    p = perturbations.get(name).fit(small)
    rows = slice(0, 10)
    if p.stochastic:
        params = p.sample(small, _rng(18))
        full = p.apply(small, params, 0.4)
        part = p.apply(small[rows], _slice_params(params, rows), 0.4)
    else:
        full = p(small, 0.4)
        part = p(small[rows], 0.4)
    assert part.tobytes() == full[rows].tobytes()


def test_feature_swap_donors_come_from_the_batch(small: np.ndarray) -> None:
    out = FeatureSwap()(small[:3], 1.0, _rng(19))
    for j in range(small.shape[1]):
        assert set(out[:, j]) == set(small[:3, j])


# -- parameters -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: perturbations.get("missing_values", fill="banana"),
            "The 'fill' parameter of MissingValues must be one of 'nan', 'mean', 'median' or a "
            "float in the range (-inf, inf). Got 'banana' instead.",
        ),
        (lambda: perturbations.get("missing_values", fill=float("inf")), "'fill' parameter"),
        (lambda: perturbations.get("outliers", mode="spikes"), "'mode' parameter of Outliers"),
        (
            lambda: perturbations.get("outliers", k=0),
            "'k' parameter of Outliers must be a float in the range (0, inf). Got 0",
        ),
        (
            lambda: perturbations.get("sensor_drift", direction="sideways"),
            "'direction' parameter of SensorDrift",
        ),
        (
            lambda: perturbations.get("sensor_drift", direction=[1, float("nan")]),
            "'direction' parameter",
        ),
        (lambda: perturbations.get("sensor_drift", direction=[]), "'direction' parameter"),
        (
            lambda: perturbations.get("gaussian_noise", absolute="yes"),
            "'absolute' parameter of GaussianNoise",
        ),
        (
            lambda: perturbations.get("uniform_noise", sigma=1),
            "UniformNoise has no parameter 'sigma'",
        ),
        (lambda: perturbations.get("gausian_noise"), "Did you mean 'gaussian_noise'"),
    ],
)
def test_bad_parameters_fail_with_one_line(make: Any, message: str) -> None:
    with pytest.raises((ParameterError, KeyError)) as info:
        make()
    text = str(info.value)
    assert message in text and "\n" not in text


@pytest.mark.parametrize("name", FRACTIONS)
def test_fraction_magnitudes_stop_at_one(name: str, small: np.ndarray) -> None:
    p = perturbations.get(name)
    assert p.max_magnitude == 1.0
    p(small, 1.0, _rng(0))
    with pytest.raises(ParameterError, match=r"range \[0, 1\]\. Got 1\.5 instead"):
        p(small, 1.5, _rng(0))


def test_describe_states_units() -> None:
    assert (
        perturbations.describe("uniform_noise")["unit"]
        == perturbations.describe("gaussian_noise")["unit"]
    )
    assert perturbations.describe("missing_values")["unit"] == "fraction of entries missing"
    assert perturbations.describe("sensor_drift")["stochastic"] is False
    assert perturbations.get("gaussian_noise@1") == GaussianNoise()


# -- Compose / Combine --------------------------------------------------------------------------
def _pipelines() -> list[Any]:
    return [
        Compose(
            [SensorDrift(direction=[1, -1, 0, 2]), "gaussian_noise", MissingValues(fill="mean")]
        ),
        Compose(
            ["sensor_drift", {"name": "quantization", "params": {"absolute": True}}], weights=[1, 2]
        ),
        Combine([GaussianNoise(columns=[0]), Outliers(mode="spike", k=3)], weights=[0.5, 1]),
    ]


@pytest.mark.parametrize("pipe", _pipelines(), ids=lambda g: g.label)
def test_pipelines_serialise_to_dict_and_yaml_and_back(pipe: Any, small: np.ndarray) -> None:
    d = pipe.to_dict()
    assert d["perturbkit"] == 1 and d["kind"] == pipe.name and "seed" not in str(d)
    for again in (perturbations.from_dict(d), perturbations.from_yaml(pipe.to_yaml())):
        assert type(again) is type(pipe) and again == pipe
        assert again.key == pipe.key  # same streams after a round trip
        assert again.to_dict() == d
        np.testing.assert_array_equal(again(small, 0.3, 5), pipe(small, 0.3, 5))


def test_compose_applies_in_order(small: np.ndarray) -> None:
    drift = SensorDrift(absolute=True)
    quant = Quantization().fit(small)  # step 0.3·s_j: does not commute with a 0.3 shift
    drift.fit(small)
    pipe = Compose([drift, quant])
    expected = quant(drift(small, 0.3), 0.3)
    np.testing.assert_array_equal(pipe(small, 0.3), expected)
    reverse = Compose([quant, drift])(small, 0.3)
    np.testing.assert_array_equal(reverse, drift(quant(small, 0.3), 0.3))
    assert not np.allclose(reverse, expected)


def test_compose_weights_scale_each_step(small: np.ndarray) -> None:
    drift = SensorDrift(absolute=True)
    out = Compose([drift, drift], weights=[1.0, 0.5])(small, 0.2)
    np.testing.assert_allclose(out - small, 0.2 + 0.1)
    # A zero weight skips the step.
    np.testing.assert_array_equal(Compose([drift], weights=[0])(small, 0.2), small)


def test_compose_replays_from_params(small: np.ndarray) -> None:
    pipe = Compose(["gaussian_noise", "missing_values", "feature_swap"]).fit(small)
    out, params = pipe(small, 0.3, _rng(20), return_params=True)
    np.testing.assert_array_equal(pipe.apply(small, params, 0.3), out)
    assert len(params) == 3


def test_combine_children_draw_their_solo_streams(small: np.ndarray) -> None:
    a = GaussianNoise().fit(small)
    b = MissingValues(fill="mean").fit(small)
    c = Outliers(mode="spike").fit(small)
    combo = Combine([a, b, c])
    root, repeat, block = 2024, 3, 7
    draws = combo.sample_block(small, root=root, repeat=repeat, block=block)
    for child, drawn in zip([a, b, c], draws, strict=True):
        solo = child.sample_block(small, root=root, repeat=repeat, block=block)
        if isinstance(solo, tuple):
            for x, y in zip(solo, drawn, strict=True):
                np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_array_equal(solo, drawn)
    # Applying the joint draws equals applying each solo perturbation in turn.
    m = 0.4
    joint = combo.apply(small, draws, m)
    one_by_one = small
    for child, drawn in zip([a, b, c], draws, strict=True):
        one_by_one = child.apply(one_by_one, drawn, m)
    np.testing.assert_array_equal(joint, one_by_one)
    # Compose keys its children by position instead: not the solo stream.
    pos = Compose([a, b, c]).sample_block(small, root=root, repeat=repeat, block=block)
    assert not np.array_equal(pos[0], draws[0])


def test_combine_streams_differ_by_repeat_and_block(small: np.ndarray) -> None:
    p = GaussianNoise()
    d00 = p.sample_block(small, root=1, repeat=0, block=0)
    assert not np.array_equal(d00, p.sample_block(small, root=1, repeat=1, block=0))
    assert not np.array_equal(d00, p.sample_block(small, root=1, repeat=0, block=1))
    np.testing.assert_array_equal(d00, p.sample_block(small, root=1, repeat=0, block=0))
    # The stream key includes the parameters: other params, other noise.
    assert not np.array_equal(
        d00, GaussianNoise(absolute=True).sample_block(small, root=1, repeat=0, block=0)
    )


# -- a known answer on a real model -------------------------------------------------------------
@pytest.mark.parametrize("cls", ADDITIVE)
@pytest.mark.parametrize("m", [0.1, 0.5])
def test_linear_model_mean_squared_output_change(
    cls: type, m: float, diabetes: Any, diabetes_linear: Any
) -> None:
    """f(x) = w·x + b, independent noise of std m·s_j: E[(f(X+δ) − f(X))²] = Σ_j (m·s_j·w_j)²."""
    X, _ = diabetes
    model = diabetes_linear
    p = cls().fit(X)
    expected = float(np.sum((m * p.scale_ * model.coef_) ** 2))
    clean = model.predict(X)
    gen = _rng(21)
    sq = np.concatenate([(model.predict(p(X, m, gen)) - clean) ** 2 for _ in range(100)])
    se = sq.std(ddof=1) / math.sqrt(sq.size)
    assert abs(sq.mean() - expected) < 5 * se, (sq.mean(), expected, se)
    assert se < 0.05 * expected  # the test has power


def test_linear_model_single_feature_sensitivity(diabetes: Any, diabetes_linear: Any) -> None:
    X, _ = diabetes
    w = diabetes_linear.coef_
    j = int(np.argmax(np.abs(w)))
    p = SensorDrift(columns=[j]).fit(X)
    shift = diabetes_linear.predict(p(X, 1.0)) - diabetes_linear.predict(X)
    np.testing.assert_allclose(shift, w[j] * p.scale_[j], rtol=1e-9)
