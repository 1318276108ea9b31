"""The registry of perturbations: explicit registration, lookup with did-you-mean."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from typing import Any, TypeVar

from perturbkit.exceptions import ParameterError, UnknownPerturbationError
from perturbkit.perturbations.base import FORMAT_VERSION, Combine, Compose, Perturbation

__all__ = ["describe", "from_dict", "from_yaml", "get", "list", "register"]

_REGISTRY: dict[str, type[Perturbation]] = {}
_GROUPS: dict[str, type[Perturbation]] = {"compose": Compose, "combine": Combine}

P = TypeVar("P", bound=type[Perturbation])

_list = list


def register(cls: P) -> P:
    """Class decorator: add a Perturbation subclass under its ``name``."""
    if not cls.name or not cls.unit:
        raise RuntimeError(f"{cls.__name__} must set 'name' and 'unit' to be registered")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise RuntimeError(f"perturbation name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


_BUILTIN_MODULES = ("tabular", "image", "text", "audio", "weights")


def _ensure_loaded() -> None:
    """Import the built-in modules, which register their classes on import.

    They import nothing heavy at module level (torch, kornia … load on first use).
    """
    import importlib
    import importlib.util

    for mod in _BUILTIN_MODULES:
        full = f"perturbkit.perturbations.{mod}"
        if importlib.util.find_spec(full) is not None:
            importlib.import_module(full)


def list(modality: str | None = None) -> _list[str]:
    """Registered perturbation names, sorted; optionally of one modality."""
    _ensure_loaded()
    return sorted(n for n, c in _REGISTRY.items() if modality is None or c.modality == modality)


def get_class(name: str) -> type[Perturbation]:
    _ensure_loaded()
    if isinstance(name, str) and "@" in name:
        name, _, version = name.partition("@")
        cls = get_class(name)
        if str(cls.version) != version:
            raise UnknownPerturbationError(
                f"Perturbation '{name}' is at version {cls.version} in this perturbkit; "
                f"version {version} was asked for. Results stored under another version "
                "cannot be recomputed bit for bit."
            )
        return cls
    if name in _GROUPS:
        return _GROUPS[name]
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UnknownPerturbationError(
            f"Unknown perturbation '{name}'.{hint} See `perturbkit perturbations`."
        )
    return _REGISTRY[name]


def get(name: str, **params: Any) -> Perturbation:
    """A ready instance of the perturbation ``name`` with ``params``."""
    cls = get_class(name)
    allowed = cls._param_names()
    unknown = [k for k in params if k not in allowed]
    if unknown:
        close = difflib.get_close_matches(unknown[0], allowed, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ParameterError(
            f"{cls.__name__} has no parameter '{unknown[0]}'.{hint} "
            f"Allowed: {', '.join(allowed) or 'none'}."
        )
    p = cls(**params)
    p._validate_params()
    return p


def describe(name: str) -> dict[str, Any]:
    """Modality, version, unit of magnitude, stochasticity and parameters of ``name``."""
    cls = get_class(name)
    sig = inspect.signature(cls.__init__)
    params = {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in sig.parameters.values()
        if p.name != "self"
    }
    doc = inspect.getdoc(cls) or ""
    return {
        "name": cls.name,
        "version": cls.version,
        "id": f"{cls.name}@{cls.version}",
        "modality": cls.modality,
        "unit": cls.unit,
        "stochastic": cls.stochastic,
        "max_magnitude": cls.max_magnitude,
        "params": params,
        "summary": doc.split("\n\n")[0].replace("\n", " "),
        "class": f"{cls.__module__}.{cls.__qualname__}",
    }


def from_dict(d: Mapping[str, Any]) -> Perturbation:
    """Rebuild a perturbation or pipeline from :meth:`Perturbation.to_dict` output."""
    if not isinstance(d, Mapping):
        raise ParameterError(
            f"A perturbation spec must be a mapping. Got {type(d).__name__} instead."
        )
    if "steps" in d:
        fmt = d.get("perturbkit", FORMAT_VERSION)
        if fmt != FORMAT_VERSION:
            raise ParameterError(
                f"Pipeline format version must be {FORMAT_VERSION}. Got {fmt!r} instead."
            )
        kind = d.get("kind", "compose")
        if kind not in _GROUPS:
            raise ParameterError(
                f"The 'kind' of a pipeline must be 'compose' or 'combine'. Got {kind!r} instead."
            )
        group = _GROUPS[kind](_list(d["steps"]), weights=d.get("weights"))
        group._validate_params()
        return group
    if "name" not in d:
        raise ParameterError(f"A perturbation spec needs a 'name'. Got keys {sorted(d)} instead.")
    name = str(d["name"])
    if "version" in d:
        name = f"{name}@{d['version']}"
    return get(name, **dict(d.get("params") or {}))


def from_yaml(text: str) -> Perturbation:
    """Rebuild a perturbation or pipeline from YAML text."""
    import yaml

    return from_dict(yaml.safe_load(text))
