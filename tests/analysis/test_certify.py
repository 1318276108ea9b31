"""certify: randomized smoothing certificates against the exact radius of a linear classifier.

For f(x) = 1[w·x + b > 0] under N(0, σ²I) noise, the smoothed classifier's
top-class probability is p_A = Φ(|w·x + b| / (σ‖w‖)), so its exact robust
radius σ Φ⁻¹(p_A) is the distance |w·x + b| / ‖w‖ to the hyperplane.
"""

from __future__ import annotations

import numpy as np
import pytest
from _bounds_helpers import P_FAIL, rng
from matplotlib.figure import Figure
from scipy import stats

from perturbkit.analysis.certify import CertifyResult, certify, plot_certified_accuracy

W = np.array([2.0, -1.0])
B0 = 0.3
SIGMA = 0.5


def linear_classifier(A: np.ndarray) -> np.ndarray:
    p = 1.0 / (1.0 + np.exp(-(A @ W + B0)))
    return np.stack([1.0 - p, p], axis=1)


def _points(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points within 2σ of the hyperplane (where certificates are informative)."""
    X = rng(20).normal(size=(4 * n, 2))
    dist = np.abs(X @ W + B0) / np.linalg.norm(W)
    keep = np.flatnonzero((dist > 0.02) & (dist < 2 * SIGMA))[:n]
    return X[keep], dist[keep]


def test_certified_radii_never_exceed_the_distance_beyond_alpha() -> None:
    X, dist = _points(400)
    alpha = 0.01
    res = certify(linear_classifier, X, sigma=SIGMA, n0=50, n=2000, alpha=alpha, seed=0)
    y = (X @ W + B0 > 0).astype(int)
    certified = ~res.abstain
    assert np.all(res.prediction[certified] == y[certified])
    over = int(np.sum(res.radius > dist + 1e-12))
    assert over <= stats.binom.isf(P_FAIL, len(X), alpha)
    assert np.all(res.radius[res.abstain] == 0) and np.all(res.prediction[res.abstain] == -1)


def test_certified_radii_approach_the_distance_as_n_grows() -> None:
    X, dist = _points(60)
    ratios = []
    for n in (200, 2_000, 50_000):
        res = certify(linear_classifier, X, sigma=SIGMA, n0=50, n=n, alpha=0.001, seed=1)
        ratios.append(float(np.mean(res.radius / dist)))
    assert ratios[0] < ratios[1] < ratios[2] <= 1.0
    assert ratios[2] > 0.9


def test_same_seed_same_certificates_any_batch_size() -> None:
    X, _ = _points(30)
    a = certify(linear_classifier, X, sigma=SIGMA, n0=20, n=700, seed=3, batch_size=10_000)
    b = certify(linear_classifier, X, sigma=SIGMA, n0=20, n=700, seed=3, batch_size=97)
    assert np.array_equal(a.count_A, b.count_A) and np.array_equal(a.radius, b.radius)
    assert a.meta["root_seed"] == 3


def test_result_table_labels_and_figure(cancer_model, breast_cancer) -> None:
    X, y = breast_cancer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Xs = StandardScaler().fit_transform(X[:40])
    model = make_pipeline(cancer_model[-1])  # the classifier on standardised inputs
    res = certify(model, Xs, sigma=0.25, n0=20, n=300, alpha=0.01, seed=0)
    assert isinstance(res, CertifyResult)
    t = res.to_pandas()
    assert list(t.columns) == ["prediction", "label", "radius", "abstain", "pA_lower", "count_A"]
    assert len(t) == 40 and t["label"].dropna().isin([0, 1]).all()
    acc = res.certified_accuracy(y[:40], [0.0, 0.1, 10.0])
    assert acc[0] >= acc[1] >= acc[2] == 0.0
    fig = plot_certified_accuracy({"σ = 0.25": res}, y[:40])
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) == 1
    assert "CertifyResult" in repr(res)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"sigma": 0.0},
            r"^The 'sigma' parameter of certify must be a float in the range \(0, inf\)\. "
            r"Got 0\.0 instead\.$",
        ),
        ({"sigma": -1.0}, r"'sigma' parameter of certify"),
        (
            {"sigma": 0.5, "n0": 200, "n": 100},
            r"^The 'n0' parameter of certify must be at most n \(100\)\. Got 200 instead\.$",
        ),
        ({"sigma": 0.5, "alpha": 1.5}, r"'alpha' parameter of certify"),
        ({"sigma": 0.5, "n": 0}, r"'n' parameter of certify"),
    ],
)
def test_bad_parameters_one_line(kwargs, match) -> None:
    from perturbkit.exceptions import ParameterError

    X, _ = _points(5)
    with pytest.raises(ParameterError, match=match) as info:
        certify(linear_classifier, X, **kwargs)
    assert "\n" not in str(info.value)


def test_regression_model_is_refused_in_one_line(diabetes_linear, diabetes) -> None:
    from perturbkit.exceptions import ModelError

    X, _ = diabetes
    with pytest.raises(ModelError, match=r"^certify needs a classifier") as info:
        certify(diabetes_linear, X[:5], sigma=0.1, n0=10, n=20)
    assert "\n" not in str(info.value) and "regression" in str(info.value)
