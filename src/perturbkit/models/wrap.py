"""``wrap(obj, task=None)``: one Model contract over every kind of model."""

from __future__ import annotations

import inspect
import os
import sys
from typing import Any

from perturbkit.exceptions import ModelError, ParameterError
from perturbkit.models.base import Model, Task, check_task

__all__ = ["build", "wrap"]


def wrap(obj: Any, task: Task | None = None, **options: Any) -> Model:
    """Wrap a trained model so that ``model(X) -> ndarray`` with one contract.

    Classification returns class probabilities ``(n, k)``; regression returns
    ``(n,)`` or ``(n, m)``. The wrapped model has ``task``, ``n_outputs``,
    ``classes_`` (when known), ``fingerprint()`` and, for torch, ``grad(X, y)``.

    Args:
        obj: one of
            - a :class:`Model` (returned as is);
            - a scikit-learn estimator or pipeline (``predict_proba`` for
              classifiers, else the one-hot of ``predict``; ``predict`` for
              regressors), or any object with ``predict``;
            - a ``torch.nn.Module`` (needs ``task`` unless it can be inferred);
            - an ``onnxruntime.InferenceSession`` or ``onnx.ModelProto``;
            - a path or ``"module:attribute"`` string, loaded with
              :func:`perturbkit.models.load_model`;
            - a callable ``fn(X) -> array`` on numpy batches.
        task: ``"classification"`` or ``"regression"``; inferred when None
            where the model tells (see each adapter), else required (torch)
            or read from the first call (callables, unlabelled ONNX graphs).
        **options: adapter options, e.g. ``batch_size``, ``output`` (torch and
            ONNX: ``"logits"`` or ``"probabilities"``), ``classes``,
            ``input_dtype`` (torch), ``output_name``/``providers`` (ONNX).

    Raises:
        ParameterError: a bad ``task`` or option, or a torch module whose task
            cannot be inferred.
        ModelError: an object that cannot be wrapped, or an unfitted estimator.
    """
    task = check_task(task, owner="wrap")
    if isinstance(obj, Model):
        if options:
            raise ParameterError(
                f"wrap got option(s) {', '.join(map(repr, sorted(options)))} for an already "
                "wrapped model; options apply when wrapping the raw model."
            )
        if task is not None and obj.task is not None and task != obj.task:
            raise ParameterError(
                f"The 'task' parameter of wrap must match the wrapped model's task "
                f"{obj.task!r}. Got {task!r} instead."
            )
        if task is not None:
            obj.task = task
        return obj
    if isinstance(obj, (str, os.PathLike)):
        from perturbkit.models.loading import load_model

        return load_model(obj, task=task, **options)
    if isinstance(obj, type):
        raise ModelError(
            f"wrap got the class {obj.__qualname__}; pass a trained instance of it instead."
        )
    if _is_torch_module(obj):
        from perturbkit.models.torch import TorchModel

        return build(TorchModel, obj, task, options)
    if _is_onnx(obj):
        from perturbkit.models.onnx import OnnxModel

        return build(OnnxModel, obj, task, options)
    if _is_estimator(obj):
        from perturbkit.models.sklearn import SklearnModel

        return build(SklearnModel, obj, task, options)
    if callable(obj):
        from perturbkit.models.callable import CallableModel

        return build(CallableModel, obj, task, options)
    raise ModelError(
        f"wrap cannot wrap a {type(obj).__module__}.{type(obj).__qualname__}: expected a "
        "scikit-learn estimator, a torch.nn.Module, an ONNX session or path, or a callable "
        "fn(X) -> array."
    )


def build(adapter: type[Model], obj: Any, task: Task | None, options: dict[str, Any]) -> Model:
    """Construct ``adapter(obj, task=task, **options)``, naming unknown options in one line."""
    params = inspect.signature(adapter.__init__).parameters
    allowed = sorted(
        name for name, p in params.items() if p.kind is p.KEYWORD_ONLY and name != "task"
    )
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ParameterError(
            f"wrap got unknown option(s) {', '.join(map(repr, unknown))} for a {adapter.kind} "
            f"model; allowed: {', '.join(allowed) or 'none'}."
        )
    return adapter(obj, task=task, **options)  # type: ignore[call-arg]


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    nn = getattr(torch, "nn", None)
    return nn is not None and isinstance(obj, nn.Module)


def _is_onnx(obj: Any) -> bool:
    ort = sys.modules.get("onnxruntime")
    if ort is not None and isinstance(obj, getattr(ort, "InferenceSession", ())):
        return True
    onnx = sys.modules.get("onnx")
    return onnx is not None and isinstance(obj, getattr(onnx, "ModelProto", ()))


def _is_estimator(obj: Any) -> bool:
    from sklearn.base import BaseEstimator

    if isinstance(obj, BaseEstimator):
        return True
    return callable(getattr(obj, "predict", None)) or callable(getattr(obj, "predict_proba", None))
