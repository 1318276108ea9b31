"""Adapters: ``wrap(obj, task=None)`` turns any trained model into one :class:`Model`.

``model(X) -> ndarray``: class probabilities ``(n, k)`` for classification,
``(n,)`` or ``(n, m)`` for regression. scikit-learn, PyTorch, ONNX and plain
callables are supported; :func:`load_model` reads them from files and entry
points. torch, onnxruntime and skops are imported only when needed.
"""

from __future__ import annotations

from perturbkit.models.base import TASKS, Model, Task
from perturbkit.models.loading import load_model
from perturbkit.models.wrap import wrap

__all__ = ["TASKS", "Model", "Task", "load_model", "wrap"]
