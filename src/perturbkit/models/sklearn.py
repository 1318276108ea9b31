"""scikit-learn estimators and pipelines (and objects with the same API).

Classifiers give ``predict_proba``; a classifier without ``predict_proba``
(``LinearSVC``, ``Perceptron``, ...) gives the one-hot encoding of ``predict``,
so its "probabilities" are 0 or 1. Regressors give ``predict``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from perturbkit.exceptions import ModelError, ParameterError
from perturbkit.models.base import Model, Task, check_task, digest

__all__ = ["SklearnModel", "estimator_digest"]


class SklearnModel(Model):
    """A fitted scikit-learn estimator or pipeline.

    Args:
        estimator: a fitted estimator with ``predict`` (and ``predict_proba``
            for probabilities).
        task: ``"classification"`` or ``"regression"``; inferred when None: a
            classifier (``sklearn.base.is_classifier``) or an estimator with
            ``predict_proba`` is a classifier, anything else a regressor.

    A classifier without ``predict_proba`` returns the one-hot encoding of its
    ``predict`` over ``classes_``. When the estimator was fitted on a
    DataFrame (it has ``feature_names_in_``), numpy batches are given those
    column names, so scikit-learn does not warn about missing feature names.
    """

    kind = "sklearn"

    def __init__(self, estimator: Any, *, task: Task | None = None) -> None:
        task = check_task(task, owner="wrap")
        _check_fitted(estimator)
        has_proba = _has_method(estimator, "predict_proba")
        if not _has_method(estimator, "predict") and not has_proba:
            raise ModelError(
                f"The estimator {type(estimator).__name__} passed to wrap has neither predict "
                "nor predict_proba; wrap(fn, task=...) a function instead."
            )
        if task is None:
            task = "classification" if (_is_classifier(estimator) or has_proba) else "regression"
        classes = getattr(estimator, "classes_", None)
        if task == "classification":
            if classes is None and not has_proba:
                raise ParameterError(
                    f"The 'task' parameter of wrap must be 'regression' for "
                    f"{type(estimator).__name__}, which has neither predict_proba nor classes_. "
                    "Got 'classification' instead."
                )
            if classes is not None:
                classes = np.asarray(classes)
                if classes.ndim != 1:
                    raise ModelError(
                        f"{type(estimator).__name__} has multi-output classes_ (shape "
                        f"{classes.shape}); wrap supports single-output classifiers only."
                    )
        else:
            classes = None
        super().__init__(
            task=task,
            classes=classes,
            description=_describe(estimator),
        )
        self.estimator = estimator
        self._use_proba = task == "classification" and has_proba
        names = getattr(estimator, "feature_names_in_", None)
        self._feature_names = None if names is None else list(names)

    def _frame(self, X: np.ndarray) -> Any:
        if self._feature_names is None or X.ndim != 2 or X.shape[1] != len(self._feature_names):
            return X
        import pandas as pd

        return pd.DataFrame(X, columns=self._feature_names, copy=False)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        Xf = self._frame(X)
        if self.task == "regression":
            return np.asarray(self.estimator.predict(Xf))
        if self._use_proba:
            proba = self.estimator.predict_proba(Xf)
            if isinstance(proba, list):
                raise ModelError(
                    f"{self.description}.predict_proba returned a list of {len(proba)} arrays "
                    "(a multi-output classifier); wrap supports single-output classifiers only."
                )
            return np.asarray(proba)
        labels = np.asarray(self.estimator.predict(Xf))
        return _one_hot(labels, self.classes_, self.description)

    def fingerprint(self) -> str:
        return estimator_digest(self.estimator)


def _has_method(obj: Any, name: str) -> bool:
    try:  # available_if raises AttributeError from hasattr on pipelines, which is fine
        return callable(getattr(obj, name, None))
    except Exception:
        return False


def _is_classifier(est: Any) -> bool:
    from sklearn.base import BaseEstimator, is_classifier

    if isinstance(est, BaseEstimator):
        return bool(is_classifier(est))
    return getattr(est, "_estimator_type", None) == "classifier"


def _check_fitted(est: Any) -> None:
    from sklearn.base import BaseEstimator
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(est, BaseEstimator):
        return
    try:
        check_is_fitted(est)
    except NotFittedError as exc:
        raise ModelError(
            f"The estimator {type(est).__name__} passed to wrap is not fitted; call fit first."
        ) from exc
    except TypeError:  # not an estimator after all (no fit); let predict speak
        return


def _describe(est: Any) -> str:
    steps = getattr(est, "steps", None)
    if isinstance(steps, list) and steps:
        return "Pipeline(" + ", ".join(type(s[1]).__name__ for s in steps) + ")"
    return type(est).__name__


def _one_hot(labels: np.ndarray, classes: np.ndarray | None, who: str) -> np.ndarray:
    if classes is None:  # pragma: no cover - __init__ ensures classifiers have classes
        raise RuntimeError("one-hot encoding needs classes_")
    labels = labels.reshape(-1)
    order = np.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    pos = np.searchsorted(sorted_classes, labels)
    pos_c = np.clip(pos, 0, len(classes) - 1)
    if not np.array_equal(sorted_classes[pos_c], labels):
        bad = labels[sorted_classes[pos_c] != labels][0]
        raise ModelError(f"{who}.predict returned label {bad!r}, which is not in classes_.")
    out = np.zeros((labels.shape[0], len(classes)), dtype=np.float64)
    out[np.arange(labels.shape[0]), order[pos_c]] = 1.0
    return out


# -- fingerprint ------------------------------------------------------------------------
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def estimator_digest(est: Any) -> str:
    """A digest of an estimator's hyper-parameters and fitted state, stable across runs.

    Walks ``get_params(deep=False)`` and the fitted attributes (public names
    ending in ``_``), recursing into nested estimators, lists, dicts and
    objects' ``__getstate__`` (e.g. a tree's node arrays). Arrays contribute
    their dtype, shape and bytes (structured arrays field by field, so padding
    never counts); other values their repr without memory addresses.
    """
    parts: list[bytes | str] = []
    _walk(est, parts, depth=0, seen=set())
    return digest(*parts)


def _walk(obj: Any, parts: list[bytes | str], *, depth: int, seen: set[int]) -> None:
    if depth > 30:
        parts.append("<deep>")
        return
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, np.generic)):
        parts.append(f"{type(obj).__name__}:{obj!r}")
        return
    if isinstance(obj, np.ndarray):
        parts.append(f"ndarray:{obj.dtype.str}:{obj.shape}")
        if obj.dtype.names:
            for name in obj.dtype.names:
                _walk(np.ascontiguousarray(obj[name]), parts, depth=depth + 1, seen=seen)
        elif obj.dtype == object:
            for item in obj.reshape(-1):
                _walk(item, parts, depth=depth + 1, seen=seen)
        else:
            parts.append(np.ascontiguousarray(obj).tobytes())
        return
    if id(obj) in seen:
        parts.append("<cycle>")
        return
    seen = seen | {id(obj)}
    if isinstance(obj, (list, tuple)):
        parts.append(f"{type(obj).__name__}:{len(obj)}")
        for item in obj:
            _walk(item, parts, depth=depth + 1, seen=seen)
        return
    if isinstance(obj, dict):
        parts.append(f"dict:{len(obj)}")
        for key in sorted(obj, key=repr):
            parts.append(repr(key))
            _walk(obj[key], parts, depth=depth + 1, seen=seen)
        return
    if callable(getattr(obj, "get_params", None)) and hasattr(obj, "fit"):
        parts.append(f"{type(obj).__module__}.{type(obj).__qualname__}")
        try:
            params = obj.get_params(deep=False)
        except Exception:
            params = {}
        _walk(dict(params), parts, depth=depth + 1, seen=seen)
        fitted = {k: v for k, v in vars(obj).items() if k.endswith("_") and not k.startswith("_")}
        _walk(fitted, parts, depth=depth + 1, seen=seen)
        return
    if callable(obj) and hasattr(obj, "__qualname__"):
        parts.append(f"{getattr(obj, '__module__', '')}.{obj.__qualname__}")
        return
    state = None
    getstate = getattr(obj, "__getstate__", None)
    if callable(getstate):
        try:
            state = getstate()
        except Exception:
            state = None
    if isinstance(state, (dict, tuple, list)) and state:
        parts.append(f"{type(obj).__module__}.{type(obj).__qualname__}")
        _walk(state, parts, depth=depth + 1, seen=seen)
        return
    parts.append(_ADDRESS.sub("", repr(obj)))
