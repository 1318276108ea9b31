"""Small real models for the example experiments, trained on the fly.

An experiment points at a factory with ``entry_point: models.py:<name>`` and
``call: true``; perturbkit calls it with no arguments (or the experiment's
``kwargs``) and sweeps the fitted model it returns. Training is seeded, so the
model, and with it the run's fingerprint, is the same every time: a run can
be resumed with ``perturbkit run ... --resume``.
"""

from __future__ import annotations

from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def breast_cancer_classifier(C: float = 1.0) -> Pipeline:
    """Standardise, then logistic regression, on the Wisconsin breast cancer data."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000)).fit(X, y)


def diabetes_regressor(alpha: float = 1.0) -> Pipeline:
    """Standardise, then ridge regression, on the diabetes progression data."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(X, y)
