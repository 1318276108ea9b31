"""Metrics: hand-computed values on small arrays, and batch-size independence."""

from __future__ import annotations

import numpy as np
import pytest

from perturbkit import ParameterError
from perturbkit.metrics import ClassificationStats, RegressionStats, check_metrics


def _rows(stats, clean, classes=None):
    return {(r.metric, r.group): r.value for r in stats.result(clean, classes)}


def _cls(P0, P, y, starts=(0,)):
    k = P0.shape[1]
    clean = ClassificationStats(k, has_labels=y is not None, n_bins=10)
    clean.update(P0, P0, y, np.asarray(starts))
    pert = ClassificationStats(k, has_labels=y is not None, n_bins=10)
    pert.update(P0, P, y, np.asarray(starts))
    return _rows(pert, clean), clean, pert


def test_classification_hand_values():
    P0 = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    P = np.array([[0.6, 0.4], [0.7, 0.3], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 1, 1])
    r, _, _ = _cls(P0, P, y)
    assert r[("accuracy", "")] == pytest.approx(2 / 4)  # preds 0,0,0,1 vs 0,1,1,1
    assert r[("accuracy_drop", "")] == pytest.approx(3 / 4 - 2 / 4)
    assert r[("flip_rate", "")] == pytest.approx(1 / 4)
    assert r[("confidence_drop", "")] == pytest.approx((0.3 + 0.5 + 0 + 0) / 4)
    assert r[("tv_distance", "")] == pytest.approx((0.3 + 0.5) / 4)
    # predicted classes: clean [0,1,0,1] -> perturbed [0,0,0,1]: share of class 0 goes 0.5 -> 0.75
    assert r[("class_shift", "")] == pytest.approx(0.25)
    assert r[("predicted_share", "class=0")] == pytest.approx(0.75)
    assert r[("recall", "class=1")] == pytest.approx(1 / 3)
    assert r[("recall_drop", "class=1")] == pytest.approx(2 / 3 - 1 / 3)
    assert r[("transition_increase", "1->0")] == pytest.approx(1 / 4)
    assert r[("flip_rate_by_class", "class=1")] == pytest.approx(1 / 2)
    ent = -(P * np.log(P)).sum(axis=1).mean()
    assert r[("entropy", "")] == pytest.approx(ent)
    assert r[("log_loss", "")] == pytest.approx(-np.log(P[np.arange(4), y]).mean())
    onehot = np.eye(2)[y]
    assert r[("brier", "")] == pytest.approx(((P - onehot) ** 2).sum(axis=1).mean())


def test_js_distance_bounds():
    P0 = np.array([[1.0, 0.0], [0.5, 0.5]])
    P = np.array([[0.0, 1.0], [0.5, 0.5]])
    r, _, _ = _cls(P0, P, None)
    assert r[("js_distance", "")] == pytest.approx(
        0.5
    )  # 1 for the disjoint row, 0 for the equal row


def test_ece_matches_direct_computation():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 3))
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, 3, size=500)
    r, _, _ = _cls(P, P, y)
    conf, pred = P.max(axis=1), P.argmax(axis=1)
    bins = np.minimum((conf * 10).astype(int), 9)
    ece = sum(
        (bins == b).sum()
        / 500
        * abs((pred[bins == b] == y[bins == b]).mean() - conf[bins == b].mean())
        for b in range(10)
        if (bins == b).any()
    )
    assert r[("ece", "")] == pytest.approx(ece, rel=1e-12)


def test_block_sums_do_not_depend_on_batching():
    """Accumulating block by block in two calls gives the bits of one call."""
    rng = np.random.default_rng(1)
    F0, F, y = rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2))
    one = RegressionStats(2, has_labels=True)
    one.update(F0, F, y, np.arange(0, 3000, 500))
    two = RegressionStats(2, has_labels=True)
    two.update(F0[:1000], F[:1000], y[:1000], np.arange(0, 1000, 500))
    two.update(F0[1000:], F[1000:], y[1000:], np.arange(0, 2000, 500))
    np.testing.assert_array_equal(one.sums, two.sums)


def test_regression_hand_values_multi_output():
    F0 = np.array([[1.0, 2.0], [3.0, 4.0]])
    F = np.array([[2.0, 2.0], [3.0, 6.0]])
    y = np.array([[1.0, 1.0], [1.0, 1.0]])
    clean = RegressionStats(2, has_labels=True)
    clean.update(F0, F0, y, np.array([0]))
    pert = RegressionStats(2, has_labels=True)
    pert.update(F0, F, y, np.array([0]))
    r = _rows(pert, clean)
    assert r[("deviation", "")] == pytest.approx((1 + 0 + 0 + 4) / 4)
    assert r[("bias", "")] == pytest.approx((1 + 0 + 0 + 2) / 4)
    assert r[("mse", "")] == pytest.approx((1 + 1 + 4 + 25) / 4)
    assert r[("mse_increase", "")] == pytest.approx((1 + 1 + 4 + 25) / 4 - (0 + 1 + 4 + 9) / 4)
    assert r[("deviation", "output=1")] == pytest.approx(2.0)
    assert r[("rmse", "")] == pytest.approx(np.sqrt(31 / 4))


def test_check_metrics():
    assert "accuracy" not in check_metrics(None, "classification", has_labels=False)
    with pytest.raises(ParameterError, match="needs labels"):
        check_metrics(["accuracy"], "classification", has_labels=False)
    with pytest.raises(ParameterError, match="Did you mean 'mse'"):
        check_metrics(["mes"], "regression", has_labels=True)
