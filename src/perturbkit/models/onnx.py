"""ONNX models run by onnxruntime: an ``InferenceSession``, a ``.onnx`` path,
an ``onnx.ModelProto`` or the model's bytes.

The graph must have one input; batches are cast to its declared element type
(``float32`` usually). When the graph has several outputs, the probabilities
are taken: an output whose name contains ``prob`` (skl2onnx's
``output_probability``) or a sequence of maps (skl2onnx's ZipMap, converted
to an array; export with ``zipmap=False`` to skip that Python loop), else the
first floating tensor output. ``output_name=`` picks one by name.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from perturbkit._extras import require
from perturbkit._validation import Interval, check_param
from perturbkit.exceptions import ModelError, ParameterError
from perturbkit.models.base import Model, Task, check_task, digest

__all__ = ["OnnxModel"]

_FEATURE = "The ONNX adapter"

_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
    "tensor(string)": object,
}
_FLOAT_OUTPUTS = ("tensor(float)", "tensor(double)", "tensor(float16)")

OnnxOutput = Literal["logits", "probabilities"]


class OnnxModel(Model):
    """An ONNX graph run by onnxruntime.

    Args:
        model: an ``onnxruntime.InferenceSession``, a path to a ``.onnx`` file,
            an ``onnx.ModelProto`` or serialized model bytes.
        task: ``"classification"`` or ``"regression"``. When None, a graph
            with a probabilities output (see the module doc) is a classifier;
            otherwise the task is read from the first call like a callable's
            (rows >= 0 summing to 1 with >= 2 columns: classification).
        output: what a classifier's chosen output holds: ``"probabilities"``
            or ``"logits"`` (a softmax is applied; a sigmoid to one binary
            logit). When None, it is ``"probabilities"`` for a probabilities
            output, and otherwise decided by the first call: rows that are
            already probabilities are taken as such, others as logits.
        output_name: the graph output to use, by name.
        batch_size: rows per ``session.run``; default the graph's fixed batch
            size if it has one, else 4096.
        classes: class labels in probability-column order (a ZipMap output
            gives them itself).
        providers: onnxruntime execution providers for a session built here;
            default ``["CPUExecutionProvider"]``.
    """

    kind = "onnx"

    def __init__(
        self,
        model: Any,
        *,
        task: Task | None = None,
        output: OnnxOutput | None = None,
        output_name: str | None = None,
        batch_size: int | None = None,
        classes: Any = None,
        providers: list[str] | None = None,
    ) -> None:
        task = check_task(task, owner="wrap")
        if output is not None and output not in ("logits", "probabilities"):
            raise ParameterError(
                "The 'output' parameter of wrap must be one of 'logits', 'probabilities' or "
                f"None for an ONNX model. Got {output!r} instead."
            )
        if batch_size is not None:
            check_param("wrap", "batch_size", batch_size, Interval(1, None, integer=True))
        self.session, self._source = _session(model, providers)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise ModelError(
                f"The ONNX model passed to wrap has {len(inputs)} inputs ({names}); wrap "
                "supports one input. Wrap a function that feeds them instead."
            )
        self._input = inputs[0]
        self._in_dtype = _DTYPES.get(self._input.type)
        if self._in_dtype is None:
            raise ModelError(
                f"The ONNX model's input {self._input.name!r} has type {self._input.type}, "
                f"which wrap does not feed; supported: {', '.join(_DTYPES)}."
            )
        fixed = self._input.shape[0] if self._input.shape else None
        if batch_size is None:
            batch_size = fixed if isinstance(fixed, int) and fixed > 0 else 4096
        self.batch_size = int(batch_size)
        out, says_proba = _pick_output(self.session.get_outputs(), output_name)
        self._output = out
        self._seq_map = out.type.startswith("seq(map")
        if task is None and (says_proba or output is not None):
            task = "classification"
        if task == "regression" and output is not None:
            raise ParameterError(
                f"The 'output' parameter of wrap applies to classifiers only. Got {output!r} "
                "with task='regression' instead."
            )
        if output is None and says_proba:
            output = "probabilities"
        self.output: OnnxOutput | None = output
        name = Path(self._source).name if isinstance(self._source, (str, Path)) else "model"
        super().__init__(task=task, classes=classes, description=f"ONNX {name}")

    def _run(self, X: np.ndarray) -> np.ndarray:
        xb = np.ascontiguousarray(X, dtype=self._in_dtype)
        (res,) = self.session.run([self._output.name], {self._input.name: xb})
        if self._seq_map:
            return self._from_maps(res)
        return np.asarray(res)

    def _from_maps(self, maps: Any) -> np.ndarray:
        if not len(maps):
            return np.zeros((0, 0 if self.classes_ is None else len(self.classes_)))
        if self.classes_ is None:
            self.classes_ = np.asarray(list(maps[0].keys()))
            self.n_outputs = len(self.classes_)
        keys = self.classes_.tolist()
        return np.array([[row[c] for c in keys] for row in maps], dtype=np.float64)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        parts = [
            self._run(X[start : start + self.batch_size])
            for start in range(0, max(X.shape[0], 1), self.batch_size)
        ]
        out = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
        if self.task == "classification":
            out = self._probabilities(np.asarray(out, dtype=np.float64))
        return out

    def _probabilities(self, z: np.ndarray) -> np.ndarray:
        if z.ndim == 1:
            z = z.reshape(-1, 1)
        if z.ndim != 2:
            return z
        if self.output is None and z.shape[0]:
            looks = bool((z >= 0).all()) and bool(np.allclose(z.sum(axis=1), 1.0, atol=1e-4))
            self.output = "probabilities" if looks and z.shape[1] >= 2 else "logits"
        if self.output == "logits":
            if z.shape[1] == 1:
                p = 1.0 / (1.0 + np.exp(-z))
                return np.concatenate([1 - p, p], axis=1)
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)
        if z.shape[1] == 1:
            return np.concatenate([1 - z, z], axis=1)
        return z

    def fingerprint(self) -> str:
        """Digest of the model bytes (and the task and output mode)."""
        src = self._source
        if isinstance(src, bytes):
            body = hashlib.blake2b(src, digest_size=16).hexdigest()
        elif isinstance(src, (str, Path)) and os.path.isfile(src):
            h = hashlib.blake2b(digest_size=16)
            with open(src, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            body = h.hexdigest()
        else:  # a session whose model we cannot read back: describe its signature
            meta = self.session.get_modelmeta()
            ios = [(i.name, i.type, str(i.shape)) for i in self.session.get_inputs()]
            ios += [(o.name, o.type, str(o.shape)) for o in self.session.get_outputs()]
            body = repr((meta.producer_name, meta.graph_name, meta.version, ios))
        return digest("onnx", body, str(self.task), str(self.output), self._output.name)


def _session(model: Any, providers: list[str] | None) -> tuple[Any, Any]:
    ort = require("onnxruntime", feature=_FEATURE)
    providers = list(providers) if providers is not None else ["CPUExecutionProvider"]
    if isinstance(model, ort.InferenceSession):
        path = getattr(model, "_model_path", None)
        data = getattr(model, "_model_bytes", None)
        return model, (data if isinstance(data, bytes) else path)
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"Model file '{path}' does not exist.")
        source: Any = str(path)
    elif isinstance(model, (bytes, bytearray)):
        source = bytes(model)
    elif type(model).__name__ == "ModelProto" and hasattr(model, "SerializeToString"):
        source = model.SerializeToString()
    else:
        raise ModelError(
            "The ONNX adapter takes an onnxruntime.InferenceSession, a .onnx path, an "
            f"onnx.ModelProto or model bytes. Got {type(model).__name__} instead."
        )
    try:
        session = ort.InferenceSession(source, providers=providers)
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"'{source}'" if isinstance(source, str) else "the ONNX model"
        raise ModelError(f"onnxruntime could not load {where}: {text}") from exc
    return session, source


def _pick_output(outputs: list[Any], name: str | None) -> tuple[Any, bool]:
    """The output to read, and whether the graph says it holds probabilities."""
    if name is not None:
        for o in outputs:
            if o.name == name:
                return o, "prob" in o.name.lower() or o.type.startswith("seq(map")
        raise ParameterError(
            "The 'output_name' parameter of wrap must be one of "
            f"{', '.join(repr(o.name) for o in outputs)}. Got {name!r} instead."
        )
    for o in outputs:
        if "prob" in o.name.lower() and (o.type in _FLOAT_OUTPUTS or o.type.startswith("seq(map")):
            return o, True
    for o in outputs:
        if o.type.startswith("seq(map"):
            return o, True
    for o in outputs:
        if o.type in _FLOAT_OUTPUTS:
            return o, False
    return outputs[0], False
