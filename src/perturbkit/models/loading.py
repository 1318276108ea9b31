"""``load_model(spec)``: models from files and entry points, for the CLI and for Python.

Safe formats load by default: ONNX, scikit-learn models saved with skops
(types skops does not trust by default must be named in ``trusted``), and
PyTorch weights (a TorchScript archive, or a ``module:factory`` entry point
plus a state dict read with ``torch.load(..., weights_only=True)``). Pickle
and joblib files run code when loaded, so they load only with
``allow_pickle=True``. ``module:attribute`` imports Python code you name,
which runs it: that is your own code, as with any import.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from perturbkit._extras import require
from perturbkit.exceptions import ModelError, ParameterError
from perturbkit.models.base import Model, Task, _first_line, check_task, digest
from perturbkit.models.wrap import build, wrap

__all__ = ["KINDS", "SUFFIXES", "load_model"]

SUFFIXES: dict[str, str] = {
    ".onnx": "onnx",
    ".skops": "skops",
    ".pt": "torchscript",
    ".pth": "torchscript",
    ".ts": "torchscript",
    ".torchscript": "torchscript",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".joblib": "joblib",
}
KINDS: tuple[str, ...] = ("onnx", "skops", "torchscript", "pickle", "joblib", "python")


def load_model(
    spec: str | os.PathLike[str],
    *,
    kind: str | None = None,
    task: Task | None = None,
    allow_pickle: bool = False,
    state_dict: str | os.PathLike[str] | None = None,
    trusted: Sequence[str] = (),
    factory_kwargs: Mapping[str, Any] | None = None,
    device: str | None = None,
    **options: Any,
) -> Model:
    """Load a model from a file or an entry point and :func:`wrap` it.

    Args:
        spec: a file path, or ``"module:attribute"`` where ``module`` is an
            importable module or a path to a ``.py`` file and ``attribute`` a
            (dotted) name in it. By suffix: ``.onnx`` (onnxruntime),
            ``.skops`` (skops), ``.pt``/``.pth``/``.ts`` (TorchScript,
            ``torch.jit.load``), ``.pkl``/``.pickle``/``.joblib`` (only with
            ``allow_pickle=True``).
        kind: force a format instead of reading the suffix: one of
            ``"onnx"``, ``"skops"``, ``"torchscript"``, ``"pickle"``,
            ``"joblib"``, ``"python"``.
        task: passed to :func:`wrap`.
        allow_pickle: load pickle and joblib files, which run code when loaded.
            Only for files you trust.
        state_dict: a PyTorch state dict file; ``spec`` is then a
            ``"module:factory"`` whose factory (called with ``factory_kwargs``)
            builds the module, and the weights load with ``weights_only=True``.
        trusted: type names a ``.skops`` file may contain beyond skops's
            defaults (e.g. ``"sklearn.tree._tree.Tree"``); anything else is refused.
        factory_kwargs: keyword arguments for the factory.
        device: where torch weights are loaded (``map_location``); default CPU.
        **options: adapter options passed to :func:`wrap`.

    Raises:
        ModelError: a missing or unreadable file, a pickle without
            ``allow_pickle``, untrusted skops types, a failed import.
        ParameterError: an unknown ``kind`` or suffix, or a malformed spec.
    """
    task = check_task(task, owner="load_model")
    text = os.fspath(spec)
    if kind is not None and kind not in KINDS:
        raise ParameterError(
            f"The 'kind' parameter of load_model must be one of {', '.join(map(repr, KINDS))} "
            f"or None. Got {kind!r} instead."
        )
    if state_dict is not None:
        if kind not in (None, "python"):
            raise ParameterError(
                "The 'kind' parameter of load_model must be None or 'python' with a "
                f"state_dict (spec is then 'module:factory'). Got {kind!r} instead."
            )
        module = _load_factory(text, state_dict, factory_kwargs or {}, device)
        return wrap(module, task=task, **options)
    path = Path(text)
    kind = kind or _kind_of(text, path)
    if kind == "python":
        obj = import_attribute(text)
        return wrap(obj, task=task, **options)
    if not path.is_file():
        raise ModelError(f"Model file '{text}' does not exist.")
    if kind == "onnx":
        from perturbkit.models.onnx import OnnxModel

        return build(OnnxModel, str(path), task, options)
    if kind == "skops":
        obj = _load_skops(path, trusted)
    elif kind == "torchscript":
        obj = _load_torchscript(path, device)
    else:  # pickle, joblib
        if not allow_pickle:
            raise ModelError(
                f"Model file '{text}' is a {kind} file, which runs code when loaded; pass "
                "allow_pickle=True (CLI: --allow-pickle) if you trust it, or save it with skops."
            )
        obj = _load_pickle(path, kind)
    return wrap(obj, task=task, **options)


def _kind_of(text: str, path: Path) -> str:
    suffix = path.suffix.lower()
    if path.is_file():
        if suffix in SUFFIXES:
            return SUFFIXES[suffix]
        raise ParameterError(
            f"Model file '{text}' has an unknown suffix '{path.suffix}'; expected one of "
            f"{', '.join(SUFFIXES)}, or pass kind=."
        )
    if suffix in SUFFIXES:
        raise ModelError(f"Model file '{text}' does not exist.")
    if ":" in text:
        return "python"
    raise ModelError(
        f"Model '{text}' is neither an existing file nor a 'module:attribute' entry point."
    )


# -- loaders ----------------------------------------------------------------------------
def _load_skops(path: Path, trusted: Sequence[str]) -> Any:
    sio = require("skops.io", feature="Loading .skops files")
    try:
        untrusted = list(sio.get_untrusted_types(file=path))
    except Exception as exc:
        raise ModelError(f"skops could not read '{path}': {_first_line(exc)}") from exc
    allowed = set(trusted)
    refused = [t for t in untrusted if t not in allowed]
    if refused:
        raise ModelError(
            f"Model file '{path}' holds type(s) skops does not trust by default: "
            f"{', '.join(refused)}; check them and pass trusted=[...] "
            "(CLI: --trust TYPE) to load them."
        )
    try:
        return sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise ModelError(f"skops could not load '{path}': {_first_line(exc)}") from exc


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    # torch deprecates TorchScript in favour of torch.export, but loading an
    # existing archive is what the user asked for: do not turn it into a warning.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=Warning)
        yield


def _load_torchscript(path: Path, device: str | None) -> Any:
    torch = require("torch", feature="Loading TorchScript files")
    try:
        with _quiet_jit():
            return torch.jit.load(str(path), map_location=device or "cpu")
    except Exception as exc:
        raise ModelError(
            f"Model file '{path}' is not a TorchScript archive ({_first_line(exc)[:120]}); "
            "save it with torch.jit.save, or pass 'module:factory' with state_dict='"
            f"{path}' for a state dict."
        ) from exc


def _load_factory(
    spec: str, state_dict: str | os.PathLike[str], kwargs: Mapping[str, Any], device: str | None
) -> Any:
    torch = require("torch", feature="Loading a PyTorch state dict")
    if ":" not in spec:
        raise ParameterError(
            "The 'spec' parameter of load_model must be 'module:factory' when state_dict is "
            f"given. Got {spec!r} instead."
        )
    sd_path = Path(state_dict)
    if not sd_path.is_file():
        raise ModelError(f"State dict file '{state_dict}' does not exist.")
    factory = import_attribute(spec)
    if not callable(factory):
        raise ModelError(f"'{spec}' is a {type(factory).__name__}, not a factory to call.")
    try:
        # the factory's random init is thrown away: keep it off the caller's global RNG
        with torch.random.fork_rng(devices=[]):
            module = factory(**kwargs)
    except Exception as exc:
        raise ModelError(
            f"Factory '{spec}' raised {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    if not isinstance(module, torch.nn.Module):
        raise ModelError(
            f"Factory '{spec}' returned a {type(module).__name__}; expected a torch.nn.Module."
        )
    try:
        state = torch.load(str(sd_path), map_location=device or "cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(
            f"State dict file '{state_dict}' could not be loaded with weights_only=True: "
            f"{_first_line(exc)[:200]}"
        ) from exc
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]  # a training checkpoint that holds the weights
    if not isinstance(state, Mapping):
        raise ModelError(
            f"State dict file '{state_dict}' holds a {type(state).__name__}; expected a "
            "state dict (torch.save(model.state_dict(), path))."
        )
    try:
        module.load_state_dict(state)
    except Exception as exc:
        raise ModelError(
            f"State dict file '{state_dict}' does not fit the module built by '{spec}': "
            f"{' '.join(str(exc).split())[:300]}"
        ) from exc
    if device is not None:
        module.to(device)
    return module


def _load_pickle(path: Path, kind: str) -> Any:
    try:
        if kind == "joblib":
            import joblib

            return joblib.load(path)
        import pickle

        with open(path, "rb") as fh:
            return pickle.load(fh)
    except Exception as exc:
        raise ModelError(
            f"Model file '{path}' could not be unpickled: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc


def import_attribute(spec: str) -> Any:
    """The object named by ``"module:attribute"`` (``module`` may be a ``.py`` path)."""
    module_part, _, attr = spec.rpartition(":")
    if not module_part or not attr:
        raise ParameterError(
            f"The model spec must be 'module:attribute' (or 'path/to/file.py:attribute'). "
            f"Got {spec!r} instead."
        )
    if module_part.endswith(".py") or "/" in module_part or os.sep in module_part:
        module = _import_file(Path(module_part), spec)
    else:
        try:
            module = importlib.import_module(module_part)
        except ImportError as exc:
            raise ModelError(
                f"Could not import module '{module_part}' for model '{spec}': {_first_line(exc)}"
            ) from exc
        except Exception as exc:
            raise ModelError(
                f"Importing module '{module_part}' for model '{spec}' raised "
                f"{type(exc).__name__}: {_first_line(exc)}"
            ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ModelError(
                f"Module '{module_part}' has no attribute '{attr}' (model '{spec}')."
            ) from None
    return obj


def _import_file(path: Path, spec: str) -> Any:
    if not path.is_file():
        raise ModelError(f"Python file '{path}' for model '{spec}' does not exist.")
    resolved = path.resolve()
    name = f"_perturbkit_user_{resolved.stem}_{digest(str(resolved))[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    mod_spec = importlib.util.spec_from_file_location(name, resolved)
    if mod_spec is None or mod_spec.loader is None:  # pragma: no cover - .py always has one
        raise ModelError(f"Python file '{path}' for model '{spec}' cannot be imported.")
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules[name] = module  # so classes defined there resolve (pickling, dataclasses)
    parent = str(resolved.parent)
    added = parent not in sys.path
    if added:
        sys.path.insert(0, parent)  # its sibling modules import, as when run as a script
    try:
        mod_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ModelError(
            f"Importing '{path}' for model '{spec}' raised {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    finally:
        if added and parent in sys.path:
            sys.path.remove(parent)
    return module
