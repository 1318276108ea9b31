"""Bad input: one clear line each, a PerturbkitError, nothing half-written in the store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import perturbkit as pk


@pytest.fixture
def store_url(tmp_path):
    return f"sqlite:///{tmp_path / 'runs.db'}"


def _run(model, X, y=None, **kw):
    base = dict(perturbations=["gaussian_noise"], magnitudes=[0.1], seed=0, progress=False)
    base.update(kw)
    return pk.sweep(model, X, y, **base)


def _assert_one_line(exc: pytest.ExceptionInfo, *needles: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, (n, msg)


def _assert_store_empty(url: str) -> None:
    with pk.Store(url) as st:
        assert st.list_runs().empty


def _X_with(value, X):
    X = X.copy()
    X[3, 2] = value
    return X


@pytest.mark.parametrize(
    ("make", "err", "needles"),
    [
        (lambda X, y: (_X_with(np.nan, X), y), pk.DataError, ["X must be finite", "(3, 2)"]),
        (lambda X, y: (_X_with(np.inf, X), y), pk.DataError, ["X must be finite", "inf"]),
        (lambda X, y: (X, y[:-1]), pk.DataError, ["same number of rows", "568"]),
        (lambda X, y: (X[:, 0], y), pk.DataError, ["2-D", "reshape"]),
        (lambda X, y: (X[:0], y[:0]), pk.DataError, ["at least one row"]),
        (
            lambda X, y: (pd.DataFrame({"a": ["x"] * len(y), "b": X[:, 0]}), y),
            pk.DataError,
            ["numeric", "'a'"],
        ),
    ],
)
def test_bad_data(breast_cancer, cancer_model, store_url, make, err, needles):
    X, y = breast_cancer
    Xb, yb = make(X, y)
    with pytest.raises(err) as exc:
        _run(cancer_model, Xb, yb, store=store_url)
    _assert_one_line(exc, *needles)
    _assert_store_empty(store_url)


@pytest.mark.parametrize(
    ("kw", "err", "needles"),
    [
        (
            {"perturbations": ["gausian_noise"]},
            pk.UnknownPerturbationError,
            ["Unknown perturbation 'gausian_noise'", "Did you mean 'gaussian_noise'"],
        ),
        ({"magnitudes": [-0.1]}, pk.ParameterError, ["'magnitude'", "-0.1"]),
        ({"magnitudes": [float("nan")]}, pk.ParameterError, ["'magnitude'", "nan"]),
        ({"magnitudes": [float("inf")]}, pk.ParameterError, ["'magnitude'", "inf"]),
        ({"magnitudes": []}, pk.ParameterError, ["must not be empty"]),
        (
            {"perturbations": ["missing_values"], "magnitudes": [1.5]},
            pk.ParameterError,
            ["[0, 1]", "1.5"],
        ),
        ({"repeats": 0}, pk.ParameterError, ["'repeats'", "Got 0"]),
        ({"metrics": ["acuracy"]}, pk.ParameterError, ["Did you mean 'accuracy'"]),
        ({"seed": -3}, pk.ParameterError, ["'seed'", "-3"]),
    ],
)
def test_bad_parameters(breast_cancer, cancer_model, store_url, kw, err, needles):
    X, y = breast_cancer
    with pytest.raises(err) as exc:
        _run(cancer_model, X, y, store=store_url, **kw)
    _assert_one_line(exc, *needles)
    _assert_store_empty(store_url)


def _raising(X):
    raise RuntimeError("weights not loaded")


def _wrong_shape(X):
    return np.zeros((len(X), 3))


def _nan_out(X):
    out = np.full(len(X), 1.0)
    out[-1] = np.nan
    return out


@pytest.mark.parametrize(
    ("fn", "task", "needles"),
    [
        (_raising, "regression", ["Model call on rows 0", "RuntimeError", "weights not loaded"]),
        (_wrong_shape, "regression", ["rows 0\u2013568", "3 output(s)"]),
        (_nan_out, "regression", ["non-finite"]),
    ],
)
def test_bad_model(breast_cancer, store_url, fn, task, needles):
    X, y = breast_cancer
    model = pk.wrap(fn, task=task)
    if fn is _wrong_shape:
        model.n_outputs = 1
    with pytest.raises(pk.ModelError) as exc:
        _run(model, X, y.astype(float), store=store_url)
    _assert_one_line(exc, *needles)
    _assert_store_empty(store_url)


def test_model_error_names_the_rows(breast_cancer):
    X, _ = breast_cancer

    def breaks_late(Xb):
        if np.all(Xb == X[300], axis=1).any():
            return np.full(len(Xb), np.nan)
        return Xb[:, 0]

    with pytest.raises(pk.ModelError) as exc:
        _run(pk.wrap(breaks_late, task="regression"), X, batch_size=128, block_rows=128)
    _assert_one_line(exc, "rows 256\u2013383", "non-finite")


@pytest.mark.parametrize("value", [1.5, np.nan])
def test_bad_pixels_late_in_swept_images_are_refused_before_the_store(store_url, value):
    """With a separate reference, the swept images' pixels are checked before any cell:
    a bad pixel far past the first chunk stores nothing."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    d = load_digits()
    X = (d.images / 16.0)[:, None].astype(np.float32)
    model = LogisticRegression(max_iter=300).fit(X.reshape(len(X), -1), d.target)

    def predict(A):
        return model.predict_proba(np.asarray(A).reshape(len(A), -1))

    Xb = X.copy()
    Xb[1700, 0, 4, 4] = value
    with pytest.raises(pk.DataError) as exc:
        pk.sweep(
            predict,
            Xb,
            perturbations=["brightness", pk.Combine(["image_gaussian_noise", "gaussian_blur"])],
            magnitudes=[0, 1, 2],
            reference=X[:50],
            store=store_url,
            seed=0,
            progress=False,
        )
    _assert_one_line(exc, "pixel values in [0, 1]" if value == 1.5 else "X must be finite")
    _assert_store_empty(store_url)


@pytest.mark.parametrize("url", ["notaurl://x", "sqlite:////nonexistent-dir/sub/x.db"])
def test_bad_store_url(breast_cancer, cancer_model, url):
    X, y = breast_cancer
    with pytest.raises(pk.StoreError) as exc:
        _run(cancer_model, X, y, store=url)
    _assert_one_line(exc)


def test_resume_without_store(breast_cancer, cancer_model):
    X, y = breast_cancer
    with pytest.raises(pk.ParameterError) as exc:
        _run(cancer_model, X, y, resume=True)
    _assert_one_line(exc, "needs a store")
