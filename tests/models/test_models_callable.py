"""Callables, task inference from the first call, and the output checks every adapter shares."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from perturbkit.exceptions import ModelError, NotDifferentiableError, ParameterError
from perturbkit.models import Model, wrap
from perturbkit.models.base import infer_task
from perturbkit.models.callable import CallableModel


def softmax_model(X):
    Z = X[:, :3]
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def linear_model(X):
    return X @ np.array([1.0, -2.0, 0.5])


X = np.arange(12.0).reshape(4, 3) / 10


def test_task_inferred_at_first_call():
    clf = wrap(softmax_model)
    assert isinstance(clf, CallableModel)
    assert clf.task is None and clf.n_outputs is None
    out = clf(X)
    assert clf.task == "classification" and clf.n_outputs == 3
    np.testing.assert_allclose(out, softmax_model(X))
    reg = wrap(linear_model)
    np.testing.assert_allclose(reg(X), linear_model(X))
    assert reg.task == "regression" and reg.n_outputs == 1


def test_inference_rule():
    assert infer_task(np.array([[0.2, 0.8], [1.0, 0.0]])) == "classification"
    assert infer_task(np.array([[0.2, 0.8], [1.0, 0.1]])) == "regression"  # a row sums to 1.1
    assert infer_task(np.array([[1.5, -0.5]])) == "regression"  # a negative value
    assert infer_task(np.array([[1.0], [1.0]])) == "regression"  # one column
    assert infer_task(np.array([0.5, 0.5])) == "regression"  # 1-D
    # "sums to 1" allows the rounding of the model's own dtype, no more
    off = np.array([[0.25, 0.75 + 5e-5]])
    assert infer_task(off) == "regression"
    assert infer_task(off, dtype=np.float32) == "classification"
    assert infer_task(off + np.array([[0, 1e-3]]), dtype=np.float32) == "regression"
    float32_model = wrap(lambda X: np.tile(off.astype(np.float32), (len(X), 1)))
    assert float32_model(X).shape == (4, 2) and float32_model.task == "classification"


def test_given_task_and_single_target_columns():
    reg = wrap(lambda X: X[:, :1], task="regression")
    assert reg(X).shape == (4,)  # (n, 1) is flattened to (n,)
    two = wrap(lambda X: X[:, :2] * 0 + 0.5, task="regression")  # looks like probabilities
    assert two(X).shape == (4, 2) and two.task == "regression"


def test_batching_callable():
    calls = []

    def fn(X):
        calls.append(len(X))
        return linear_model(X)

    out = wrap(fn, batch_size=3)(np.tile(X, (3, 1)))
    assert calls == [3, 3, 3, 3] and out.shape == (12,)


def test_wrong_shape_is_named_with_rows():
    model = wrap(lambda X: np.ones((len(X) - 1, 2)) / 2, task="classification")
    with pytest.raises(
        ModelError,
        match=r"^Model call on rows 1024–1027 returned shape \(3, 2\); expected 4 rows\.$",
    ):
        model(X, rows=(1024, 1028))
    fixed = wrap(softmax_model, task="classification", n_outputs=5)
    with pytest.raises(
        ModelError, match=r"returned shape \(4, 3\); expected \(4, 5\) class probabilities"
    ):
        fixed(X)
    cube = wrap(lambda X: np.zeros((len(X), 2, 2)), task="regression")
    with pytest.raises(ModelError, match=r"returned shape \(4, 2, 2\)"):
        cube(X)
    with pytest.raises(ModelError, match=r"non-numeric output"):
        wrap(lambda X: np.array(["a"] * len(X)), task="regression")(X)


def test_outputs_change_shape_between_calls():
    model = wrap(lambda X: X[:, : int(X[0, 0]) + 1], task="regression")
    model(np.ones((2, 3)))  # two targets
    with pytest.raises(ModelError, match=r"returned 3 output\(s\) per row; expected 2"):
        model(np.full((2, 3), 2.0), rows=(2, 4))


def test_non_finite_outputs_are_named():
    def nan_in_row_2(X):
        out = linear_model(X)
        out[2] = np.nan
        return out

    with pytest.raises(
        ModelError,
        match=r"^Model call on rows 10–13 returned 1 non-finite value\(s\) \(NaN or inf\), "
        r"the first in row 2",
    ):
        wrap(nan_in_row_2)(X, rows=(10, 14))


def test_logits_for_a_classifier_are_refused():
    logits = wrap(lambda X: X * 10 - 3, task="classification")
    with pytest.raises(
        ModelError, match=r"returned rows that are not probabilities.*Apply a softmax"
    ):
        logits(X)


def test_raising_model_is_named():
    def boom(X):
        raise ValueError("the model exploded\nwith a traceback-ish second line")

    with pytest.raises(
        ModelError, match=r"^Model call on rows 0–3 raised ValueError: the model exploded$"
    ):
        wrap(boom, task="regression")(X)


def test_model_passes_through_and_task_is_checked():
    model = wrap(linear_model, task="regression")
    assert wrap(model) is model
    assert wrap(model, task="regression") is model
    with pytest.raises(ParameterError, match=r"must match the wrapped model's task 'regression'"):
        wrap(model, task="classification")
    with pytest.raises(ParameterError, match=r"options apply when wrapping the raw model"):
        wrap(model, batch_size=3)
    lazy = wrap(softmax_model)
    assert wrap(lazy, task="classification").task == "classification"


def test_not_differentiable_and_unwrappable():
    with pytest.raises(NotDifferentiableError, match=r"not differentiable"):
        wrap(linear_model).grad(X)
    with pytest.raises(ModelError, match=r"wrap cannot wrap a builtins.int"):
        wrap(3)
    with pytest.raises(ParameterError, match=r"'task' parameter of wrap must be one of"):
        wrap(linear_model, task="regresion")


def test_fingerprint_is_the_qualified_name():
    a = wrap(linear_model).fingerprint()
    assert a == wrap(linear_model, task="regression").fingerprint()
    assert a == wrap(functools.partial(linear_model)).fingerprint()
    assert a != wrap(softmax_model).fingerprint()
    assert wrap(linear_model).description.endswith("test_models_callable.linear_model")


def test_custom_model_subclass():
    class Doubler(Model):
        def _predict(self, X):
            return 2 * X[:, 0]

    m = Doubler(task="regression")
    np.testing.assert_array_equal(m(X), 2 * X[:, 0])
    assert wrap(m) is m
