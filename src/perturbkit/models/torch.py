"""PyTorch modules (eager or TorchScript), batched, with input gradients.

Each call puts the module in eval mode, runs it under ``torch.no_grad()`` in
batches of ``batch_size`` rows on the module's own device, and restores every
submodule's training flag afterwards. Inputs become tensors of the module's
floating dtype (``float32`` usually); outputs come back as ``float64`` numpy.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

import numpy as np

from perturbkit._extras import require
from perturbkit._validation import Interval, check_param
from perturbkit.exceptions import DataError, ModelError, NotDifferentiableError, ParameterError
from perturbkit.models.base import Model, Task, _first_line, check_task, digest

__all__ = ["OUTPUTS", "TorchModel"]

Output = Literal["logits", "probabilities", "log_probabilities"]
OUTPUTS: tuple[str, ...] = ("logits", "probabilities", "log_probabilities")

_FEATURE = "The torch adapter"


def _torch() -> Any:
    return require("torch", feature=_FEATURE)


class TorchModel(Model):
    """A ``torch.nn.Module`` (eager or TorchScript).

    Args:
        module: the module; it is never moved, and its parameters never get a
            ``.grad`` from perturbkit.
        task: ``"classification"`` or ``"regression"``. Needed unless it can be
            inferred: a module given ``output=`` is a classifier, and an
            ``nn.Sequential`` ending in ``nn.Softmax`` / ``nn.LogSoftmax`` is a
            classifier returning probabilities / log-probabilities.
        output: what a classifier returns: ``"logits"`` (default; a softmax is
            applied, or a sigmoid to a single binary logit),
            ``"probabilities"`` or ``"log_probabilities"``.
        batch_size: rows per forward pass.
        classes: class labels in output-column order, if not ``0..k-1``.
        input_dtype: the dtype inputs are cast to (a ``torch.dtype`` or its
            name, e.g. ``"int64"`` for token ids); default: the module's
            floating dtype.
    """

    kind = "torch"
    differentiable = True

    def __init__(
        self,
        module: Any,
        *,
        task: Task | None = None,
        output: Output | None = None,
        batch_size: int = 4096,
        classes: Any = None,
        input_dtype: Any = None,
    ) -> None:
        torch = _torch()
        task = check_task(task, owner="wrap")
        check_param("wrap", "batch_size", batch_size, Interval(1, None, integer=True))
        if output is not None and output not in OUTPUTS:
            raise ParameterError(
                "The 'output' parameter of wrap must be one of 'logits', 'probabilities', "
                f"'log_probabilities' or None. Got {output!r} instead."
            )
        inferred = _output_from_last_layer(module, torch)
        if output is None and task != "regression":
            output = inferred
        if task is None and output is not None:
            task = "classification"
        if task is None:
            raise ParameterError(
                f"The 'task' parameter of wrap must be 'classification' or 'regression' for "
                f"the torch module {type(module).__name__}, whose task cannot be inferred. "
                "Got None instead; a classifier returns logits by default "
                "(output='probabilities' if it ends in a softmax)."
            )
        if task == "regression" and output is not None:
            raise ParameterError(
                f"The 'output' parameter of wrap applies to classifiers only. Got {output!r} "
                "with task='regression' instead."
            )
        self.output: Output | None = (output or "logits") if task == "classification" else None
        self.batch_size = int(batch_size)
        self.input_dtype = _as_torch_dtype(input_dtype, torch)
        self.module = module
        super().__init__(task=task, classes=classes, description=_describe(module))

    # -- plumbing ------------------------------------------------------------------
    def _device_dtype(self, torch: Any) -> tuple[Any, Any]:
        device = None
        for t in itertools.chain(self.module.parameters(), self.module.buffers()):
            device = t.device if device is None else device
            if t.is_floating_point():
                return t.device, self.input_dtype or t.dtype
        return device or torch.device("cpu"), self.input_dtype or torch.get_default_dtype()

    def _tensor(self, X: np.ndarray, device: Any, dtype: Any, torch: Any) -> Any:
        try:
            t = torch.from_numpy(np.ascontiguousarray(X))
        except TypeError as exc:
            raise DataError(
                f"X must be a numeric array for the torch adapter. Got dtype {X.dtype} instead."
            ) from exc
        # a copy always: the module may work in place, and the caller's X is never written
        return t.to(device=device, dtype=dtype, copy=True)

    def _forward(self, xb: Any) -> Any:
        out = self.module(xb)
        if hasattr(out, "logits"):  # Hugging Face style output objects
            out = out.logits
        elif isinstance(out, dict) and "logits" in out:
            out = out["logits"]
        torch = _torch()
        if not isinstance(out, torch.Tensor):
            raise ModelError(
                f"{self.description} returned a {type(out).__name__}; expected a tensor "
                "(wrap a module that returns one tensor)."
            )
        return out

    def _eval_mode(self) -> list[tuple[Any, bool]]:
        modes = [(m, bool(m.training)) for m in self.module.modules()]
        self.module.eval()
        return modes

    @staticmethod
    def _restore(modes: list[tuple[Any, bool]]) -> None:
        for m, flag in modes:
            m.training = flag

    def _probabilities(self, raw: Any, torch: Any) -> Any:
        """Class probabilities (float64, on the module's device) from the raw output."""
        z = raw.to(torch.float64)
        if z.ndim == 1:
            z = z.reshape(-1, 1)
        if z.ndim != 2:
            return z
        if self.output == "logits":
            if z.shape[1] == 1:
                p = torch.sigmoid(z)
                return torch.cat([1 - p, p], dim=1)
            return torch.softmax(z, dim=1)
        if self.output == "log_probabilities":
            z = torch.exp(z)
        if z.shape[1] == 1:
            return torch.cat([1 - z, z], dim=1)
        return z

    # -- the contract ----------------------------------------------------------------
    def _predict(self, X: np.ndarray) -> np.ndarray:
        torch = _torch()
        device, dtype = self._device_dtype(torch)
        outs = []
        modes = self._eval_mode()
        try:
            with torch.no_grad():
                for start in range(0, max(X.shape[0], 1), self.batch_size):
                    xb = self._tensor(X[start : start + self.batch_size], device, dtype, torch)
                    raw = self._forward(xb)
                    res = self._probabilities(raw, torch) if self.task == "classification" else raw
                    outs.append(res.detach().to(device="cpu", dtype=torch.float64).numpy())
        finally:
            self._restore(modes)
        return np.concatenate(outs, axis=0) if len(outs) > 1 else outs[0]

    def grad(self, X: Any, y: Any = None, *, rows: tuple[int, int] | None = None) -> np.ndarray:
        """Gradient w.r.t. ``X`` of a per-row objective, summed over rows; shape of ``X``.

        With labels ``y``: classification uses the cross-entropy of the class
        indices ``y`` (or labels in ``classes``); regression the squared
        error ``(output - y)**2`` summed over targets. With ``y=None``: the
        module's output for its predicted class (the logit by default; the
        margin ``|z|`` for a single binary logit), or the sum of the
        regression outputs. Rows are independent (eval mode), so each row of
        the result is the gradient of that row's objective, whatever the
        batch size. The module's parameters get no ``.grad``.
        """
        torch = _torch()
        X = np.asarray(X)
        where = self._where(X, rows).replace("Model call", "Gradient call")
        if X.ndim == 0 or X.shape[0] == 0:
            return np.zeros(X.shape, dtype=np.float64)
        device, dtype = self._device_dtype(torch)
        if not dtype.is_floating_point:
            raise NotDifferentiableError(
                f"{self.description} takes {dtype} inputs, which have no gradient."
            )
        y_arr = None if y is None else self._targets(y, X.shape[0])
        grads = []
        modes = self._eval_mode()
        try:
            with torch.enable_grad():
                for start in range(0, X.shape[0], self.batch_size):
                    stop = start + self.batch_size
                    xb = self._tensor(X[start:stop], device, dtype, torch).requires_grad_(True)
                    yb = None if y_arr is None else y_arr[start:stop]
                    try:
                        raw = self._forward(xb)
                        objective = self._objective(raw, yb, torch, device)
                        (g,) = torch.autograd.grad(objective, [xb], allow_unused=True)
                    except (ModelError, DataError):
                        raise
                    except Exception as exc:
                        raise ModelError(
                            f"{where} raised {type(exc).__name__}: {_first_line(exc)}"
                        ) from exc
                    g = torch.zeros_like(xb) if g is None else g
                    grads.append(g.detach().to(device="cpu", dtype=torch.float64).numpy())
        finally:
            self._restore(modes)
        out = np.concatenate(grads, axis=0).reshape(X.shape)
        if not np.isfinite(out).all():
            raise ModelError(
                f"{where} returned {int((~np.isfinite(out)).sum())} non-finite gradient value(s)."
            )
        return out

    def _targets(self, y: Any, n: int) -> np.ndarray:
        y_arr = np.asarray(y)
        if y_arr.ndim == 0 or y_arr.shape[0] != n:
            raise DataError(
                f"X and y of {type(self).__name__}.grad must have the same number of rows. "
                f"Got X with {n} rows and y with shape {y_arr.shape} instead."
            )
        if self.task == "regression":
            try:
                return y_arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise DataError(
                    f"y of {type(self).__name__}.grad must be numeric for regression. "
                    f"Got dtype {y_arr.dtype} instead."
                ) from exc
        if self.classes_ is not None:
            index = {c: i for i, c in enumerate(self.classes_.tolist())}
            missing = [v for v in np.unique(y_arr).tolist() if v not in index]
            if missing:
                raise DataError(
                    f"y of {type(self).__name__}.grad must hold labels from classes_ "
                    f"{self.classes_.tolist()}. Got {missing[0]!r} instead."
                )
            return np.array([index[v] for v in y_arr.tolist()], dtype=np.int64)
        y_arr = y_arr.reshape(-1)
        integral = np.issubdtype(y_arr.dtype, np.integer) or (
            np.issubdtype(y_arr.dtype, np.floating) and bool(np.all(np.mod(y_arr, 1) == 0))
        )
        if not integral or (y_arr.size and y_arr.min() < 0):
            raise DataError(
                f"y of {type(self).__name__}.grad must be integer class indices >= 0 for "
                f"classification. Got {y_arr[:5].tolist()} (dtype {y_arr.dtype}) instead."
            )
        return y_arr.astype(np.int64)

    def _objective(self, raw: Any, yb: np.ndarray | None, torch: Any, device: Any) -> Any:
        F = torch.nn.functional
        n = raw.shape[0]
        if self.task == "regression":
            out = raw.reshape(n, -1)
            if yb is None:
                return out.sum()
            target = torch.as_tensor(yb, device=device, dtype=out.dtype).reshape(n, -1)
            if target.shape != out.shape:
                raise DataError(
                    f"y of {type(self).__name__}.grad must have {out.shape[1]} target(s) per "
                    f"row. Got shape {tuple(yb.shape)} instead."
                )
            return ((out - target) ** 2).sum()
        z = raw.reshape(n, -1)
        k = z.shape[1]
        if yb is not None and yb.size and int(yb.max()) >= max(k, 2):
            raise DataError(
                f"y of {type(self).__name__}.grad must be class indices in [0, {max(k, 2)}). "
                f"Got {int(yb.max())} instead."
            )
        target = None if yb is None else torch.as_tensor(yb, device=device, dtype=torch.int64)
        if self.output == "logits" and k >= 2:
            if target is None:
                return z.gather(1, z.argmax(dim=1, keepdim=True)).sum()
            return F.cross_entropy(z, target, reduction="sum")
        if self.output == "logits":  # one binary logit
            if target is None:
                return z.abs().sum()
            return F.binary_cross_entropy_with_logits(z[:, 0], target.to(z.dtype), reduction="sum")
        if k == 1:  # one column: the positive class
            if self.output == "probabilities":
                z = torch.cat([1 - z, z], dim=1)
            else:
                z = torch.cat([torch.log1p(-torch.exp(z).clamp(max=1 - 1e-12)), z], dim=1)
        if target is None:
            return z.gather(1, z.argmax(dim=1, keepdim=True)).sum()
        log_p = torch.log(z.clamp_min(1e-30)) if self.output == "probabilities" else z
        return F.nll_loss(log_p, target, reduction="sum")

    def fingerprint(self) -> str:
        """Digest of the module's class, task, output mode and state-dict tensors."""
        parts: list[bytes | str] = [
            getattr(self.module, "original_name", type(self.module).__qualname__),
            str(self.task),
            str(self.output),
        ]
        for name, t in sorted(self.module.state_dict().items()):
            parts.append(f"{name}:{t.dtype}:{tuple(t.shape)}")
            try:
                flat = t.detach().cpu().contiguous().reshape(-1)
                parts.append(flat.view(_torch().uint8).numpy().tobytes())
            except Exception:  # quantized and other exotic tensors
                parts.append(repr(t))
        return digest(*parts)


def _output_from_last_layer(module: Any, torch: Any) -> Output | None:
    if isinstance(module, torch.nn.Sequential) and len(module) > 0:
        last = module[-1]
        if isinstance(last, torch.nn.Softmax):
            return "probabilities"
        if isinstance(last, torch.nn.LogSoftmax):
            return "log_probabilities"
    return None


def _as_torch_dtype(value: Any, torch: Any) -> Any:
    if value is None or isinstance(value, torch.dtype):
        return value
    dt = getattr(torch, str(value), None) if isinstance(value, str) else None
    if isinstance(dt, torch.dtype):
        return dt
    raise ParameterError(
        "The 'input_dtype' parameter of wrap must be a torch.dtype or its name (e.g. "
        f"'float32', 'int64') or None. Got {value!r} instead."
    )


def _describe(module: Any) -> str:
    name = getattr(module, "original_name", None) or type(module).__name__
    return f"torch {name}"
