"""scikit-learn adapter: estimators, pipelines, classifiers without predict_proba."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Perceptron, Ridge
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from perturbkit.exceptions import ModelError, NotDifferentiableError, ParameterError
from perturbkit.models import wrap
from perturbkit.models.sklearn import SklearnModel


def test_pipeline_classifier_gives_predict_proba(cancer_data, cancer_pipeline):
    X, _ = cancer_data
    model = wrap(cancer_pipeline)
    assert isinstance(model, SklearnModel)
    assert model.task == "classification"
    assert model.n_outputs == 2
    np.testing.assert_array_equal(model.classes_, [0, 1])
    out = model(X[:50])
    assert out.dtype == np.float64 and out.shape == (50, 2)
    np.testing.assert_allclose(out, cancer_pipeline.predict_proba(X[:50]))


def test_multiclass_classifier(digits_data):
    X, y = digits_data[0][:600], digits_data[1][:600]
    clf = LogisticRegression(max_iter=300).fit(X, y)
    model = wrap(clf)
    out = model(X)
    assert out.shape == (len(X), 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    # the contract's probabilities classify like the estimator
    np.testing.assert_array_equal(model.classes_[model.predict_labels(X)], clf.predict(X))


def test_regressor_gives_predict(diabetes_data, diabetes_ridge):
    X, _ = diabetes_data
    model = wrap(diabetes_ridge)
    assert model.task == "regression"
    out = model(X[:7])
    assert out.shape == (7,)
    assert model.n_outputs == 1
    np.testing.assert_allclose(out, diabetes_ridge.predict(X[:7]))


def test_multi_target_regressor(diabetes_data):
    X, y = diabetes_data
    Y = np.column_stack([y, -y, 2 * y])
    model = wrap(Ridge().fit(X, Y))
    assert model(X[:5]).shape == (5, 3)
    assert model.n_outputs == 3


@pytest.mark.parametrize("estimator", [LinearSVC(random_state=0), Perceptron(random_state=0)])
def test_classifier_without_predict_proba_gives_one_hot(digits_data, estimator):
    X, y = digits_data
    clf = clone(estimator).fit(X, y)
    assert not hasattr(clf, "predict_proba")
    model = wrap(clf)
    assert model.task == "classification"
    out = model(X[:100])
    assert set(np.unique(out)) <= {0.0, 1.0}
    np.testing.assert_array_equal(out.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.classes_[out.argmax(axis=1)], clf.predict(X[:100]))


def test_string_labels_keep_class_order(cancer_data):
    X, y = cancer_data
    labels = np.array(["malignant", "benign"])[y]
    clf = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, labels)
    model = wrap(clf)
    np.testing.assert_array_equal(model.classes_, ["benign", "malignant"])
    np.testing.assert_array_equal(model.classes_[model.predict_labels(X)], clf.predict(X))


def test_dataframe_fitted_estimator_takes_numpy_without_warning(cancer_data):
    X, y = cancer_data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(frame, y)
    model = wrap(clf)  # filterwarnings=error: a feature-name warning would fail here
    np.testing.assert_allclose(model(X[:10]), clf.predict_proba(frame.iloc[:10]))


def test_unfitted_estimator_is_refused():
    with pytest.raises(ModelError, match=r"not fitted; call fit first"):
        wrap(LogisticRegression())


def test_estimator_class_is_refused():
    with pytest.raises(ModelError, match=r"pass a trained instance"):
        wrap(LogisticRegression)


def test_classification_task_on_regressor_is_refused(diabetes_ridge):
    with pytest.raises(
        ParameterError,
        match=r"must be 'regression' for Ridge, which has neither predict_proba nor classes_",
    ):
        wrap(diabetes_ridge, task="classification")


def test_not_differentiable(diabetes_data, diabetes_ridge):
    with pytest.raises(NotDifferentiableError, match=r"not differentiable"):
        wrap(diabetes_ridge).grad(diabetes_data[0][:3])


def test_unknown_option_is_named(diabetes_ridge):
    with pytest.raises(ParameterError, match=r"unknown option.*'batch_size'.*sklearn"):
        wrap(diabetes_ridge, batch_size=3)


def test_fingerprint_tracks_fitted_state(cancer_data):
    X, y = cancer_data
    a = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    b = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    c = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=1).fit(X, y)
    fa = wrap(a).fingerprint()
    assert fa == wrap(a).fingerprint() == wrap(b).fingerprint()
    assert fa != wrap(c).fingerprint()
    d = clone(a).set_params(max_depth=2).fit(X, y)
    assert wrap(d).fingerprint() != fa
    assert len(fa) == 32 and int(fa, 16) >= 0


def test_predict_proba_without_classes(digits_data):
    X, _ = digits_data
    mixture = GaussianMixture(n_components=3, random_state=0).fit(X[:300])
    model = wrap(mixture)
    assert model.task == "classification" and model.classes_ is None
    np.testing.assert_allclose(model(X[:5]), mixture.predict_proba(X[:5]))
    assert model.n_outputs == 3
