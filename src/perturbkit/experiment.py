"""Experiment files: a sweep described in YAML, validated before anything runs.

An experiment names a model, the data, the perturbations with their
magnitude grids, and how to run and store the sweep::

    name: breast-cancer-logreg          # default: the file's stem
    description: Logistic regression on the Wisconsin breast cancer data.
    model:
      entry_point: models.py:breast_cancer_classifier   # or path: model.onnx / model.skops
      call: true                  # call the factory (no arguments, or `kwargs:`) for the model
      task: classification        # optional; inferred from the model
    data:
      dataset: breast_cancer      # or path: data.csv (+ target: label), .parquet, .npy, .npz
      limit: 400                  # optional: first rows only (or sample: N random rows)
    magnitudes: [0, 0.1, 0.25, 0.5, 1.0]   # default grid for perturbations without their own
    perturbations:
      - gaussian_noise            # a bare name uses the default grid
      - name: missing_values
        params: {fill: mean}
        magnitudes: [0, 0.05, 0.1, 0.2]
        columns: [mean radius, mean texture]
    repeats: 3
    seed: 0
    metrics: [accuracy, accuracy_drop, flip_rate]   # optional; default: every metric
    store: sqlite:///runs.db      # optional
    report: report.html           # optional: write the HTML report after the run
    bounds:                       # optional: robustness bounds (perturbkit.robustness_curve)
      levels: [0, 0.1, 0.25, 0.5]
      confidence: 0.95
      certify: {sigma: [0.25, 0.5], n: 10000}   # optional, classifiers only

Fields of ``model``: ``path`` (``.onnx``, ``.skops``, ``.pt``/``.pth``
TorchScript, ``.pkl``/``.joblib`` only with ``allow_pickle: true``) or
``entry_point`` (``file.py:attr`` or ``package.module:attr``); ``kind`` to
force the file format; ``call: true`` to call the entry point (with
``kwargs``) and sweep what it returns, so an experiment can train a small
model on the fly; ``state_dict`` (a PyTorch state dict for the module the
entry point builds); ``task``; ``allow_pickle``; ``trust`` (type names a
``.skops`` file may hold). Fields of ``data``: ``path`` or ``dataset``
(``breast_cancer``, ``digits``, ``diabetes``, ``iris``, ``wine``), ``target``,
``features``, ``limit`` or ``sample``. Each perturbation: ``name`` (see
``perturbkit perturbations``), ``params``, ``magnitudes`` (in the
perturbation's unit; include 0 to put the clean point on the curves) and
``columns``.

An experiment has ``perturbations`` (a sweep), ``bounds`` or both. The keys of
``bounds`` are the arguments of :func:`perturbkit.robustness_curve`:
``levels`` (required), ``noise``, ``relative``, ``confidence``, ``n_draws``,
``method``, ``sampler``, ``target``, ``value_range`` and ``simultaneous``;
``certify`` (``sigma``: one value or a list, ``n0``, ``n``, ``alpha``) adds
certified radii by randomized smoothing (:func:`perturbkit.certify`) for a
classifier. The curve uses the experiment's model, data and ``seed``, and is
stored as its own run named ``"<name> bounds"`` (see
:mod:`perturbkit.analysis.bounds_store`).

Paths written in the file (model, state dict, data, a relative SQLite store
or report) are relative to the file's folder, so an experiment folder can be
moved as a whole. What the file leaves out is relative to where the command
runs: without ``store:`` the runs go to ``sqlite:///perturbkit.db`` in the
current folder, as they do from Python.

Every problem is one line in an :class:`ExperimentError` naming the file,
the line, the field by its path in the file, the value and what is allowed,
e.g. ``exp.yaml:9: perturbations[1].magnitudes[0]: must be a finite float >=
0. Got -0.1 instead.``
"""

from __future__ import annotations

import difflib
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from perturbkit.engine.result import SweepResult
from perturbkit.exceptions import ParameterError, PerturbkitError

__all__ = [
    "DEFAULT_STORE",
    "BoundsSpec",
    "CertifySpec",
    "DataSpec",
    "Experiment",
    "ExperimentError",
    "ExperimentResult",
    "ModelSpec",
    "PerturbationSpec",
    "load_experiment",
    "run_experiment",
    "write_experiment_report",
]

DEFAULT_STORE = "sqlite:///perturbkit.db"


class ExperimentError(ParameterError):
    """An experiment file is malformed or invalid; the message names the file, line and field."""


# -- field types ------------------------------------------------------------------------
def _magnitude(value: Any) -> float:
    bad = ValueError(f"must be a finite float >= 0. Got {value!r} instead.")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise bad
    try:
        f = float(value)  # YAML 1.1 reads 1e-3 as a string
    except ValueError:
        raise bad from None
    if not math.isfinite(f) or f < 0:
        raise bad
    return f


Magnitude = Annotated[Any, AfterValidator(_magnitude)]


def _positive(value: Any) -> float:
    bad = ValueError(f"must be a finite float > 0. Got {value!r} instead.")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise bad
    try:
        f = float(value)
    except ValueError:
        raise bad from None
    if not math.isfinite(f) or f <= 0:
        raise bad
    return f


Positive = Annotated[Any, AfterValidator(_positive)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSpec(_Strict):
    """The ``model:`` section: a model file or a Python entry point."""

    path: str | None = None
    entry_point: str | None = None
    kind: Literal["onnx", "skops", "torchscript", "pickle", "joblib"] | None = None
    call: bool = False
    kwargs: dict[str, Any] = Field(default_factory=dict)
    task: Literal["classification", "regression"] | None = None
    state_dict: str | None = None
    allow_pickle: bool = False
    trust: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.path is None) == (self.entry_point is None):
            got = "both" if self.path is not None else "neither"
            raise ValueError(
                "needs exactly one of 'path' (a model file: .onnx, .skops, .pt, .pkl) or "
                f"'entry_point' ('file.py:attr' or 'module:attr'). Got {got} instead"
            )
        if self.path is not None:
            for name in ("call", "state_dict"):
                if getattr(self, name):
                    raise ValueError(f"'{name}' needs 'entry_point', not 'path'")
        if self.entry_point is not None and self.kind is not None:
            raise ValueError("'kind' is for model files ('path'); an entry point needs none")
        if self.call and self.state_dict is not None:
            raise ValueError(
                "'call' and 'state_dict' exclude each other: with 'state_dict' the entry point "
                "is the factory of the module whose weights are loaded"
            )
        if self.kwargs and not (self.call or self.state_dict is not None):
            raise ValueError("'kwargs' are passed to a factory: set 'call: true' or 'state_dict'")
        return self


class DataSpec(_Strict):
    """The ``data:`` section: a file or a bundled data set."""

    path: str | None = None
    dataset: str | None = None
    target: str | None = None
    features: list[str] | None = None
    limit: int | None = Field(default=None, ge=1)
    sample: int | None = Field(default=None, ge=1)

    @field_validator("dataset")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        from perturbkit.data import DATASETS

        if value is not None and value not in DATASETS:
            close = difflib.get_close_matches(value, list(DATASETS), n=1)
            hint = f"Did you mean '{close[0]}'? " if close else ""
            raise ValueError(
                f"unknown data set. {hint}Bundled: {', '.join(DATASETS)}, or give 'path' "
                f"to a .csv, .parquet, .npy or .npz file. Got {value!r} instead"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if (self.path is None) == (self.dataset is None):
            got = "both" if self.path is not None else "neither"
            raise ValueError(
                "needs exactly one of 'path' (.csv, .parquet, .npy, .npz) or 'dataset' "
                f"(breast_cancer, digits, diabetes, iris, wine). Got {got} instead"
            )
        if self.limit is not None and self.sample is not None:
            raise ValueError("takes 'limit' or 'sample', not both")
        return self


class PerturbationSpec(_Strict):
    """One entry of ``perturbations:``; a bare string is shorthand for ``{name: ...}``."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    magnitudes: list[Magnitude] | None = Field(default=None, min_length=1)
    columns: list[Any] | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data


class CertifySpec(_Strict):
    """``bounds.certify``: certified L2 radii by randomized smoothing (``perturbkit.certify``)."""

    sigma: list[Positive] = Field(min_length=1)
    n0: int = Field(default=100, ge=1)
    n: int = Field(default=10_000, ge=1)
    alpha: float = Field(default=0.001, gt=0, lt=1, allow_inf_nan=False)

    @field_validator("sigma", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, (int, float, str)) else value


class BoundsSpec(_Strict):
    """The ``bounds:`` section: the arguments of :func:`perturbkit.robustness_curve`."""

    levels: list[Magnitude] = Field(min_length=1)
    noise: Literal["gaussian", "uniform", "laplace"] = "gaussian"
    relative: bool = True
    confidence: float = Field(default=0.95, gt=0, lt=1, allow_inf_nan=False)
    n_draws: int = Field(default=64, ge=1)
    method: Literal["t", "bootstrap", "bernstein", "hoeffding"] = "t"
    sampler: Literal["qmc", "mc", "antithetic", "orthogonal"] = "qmc"
    target: Literal["population", "dataset"] = "population"
    value_range: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    simultaneous: bool = False
    certify: CertifySpec | None = None

    def curve_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`perturbkit.robustness_curve` (without seed)."""
        return self.model_dump(exclude={"certify"})


class Experiment(_Strict):
    """A validated experiment; build one with :func:`load_experiment` or :meth:`from_dict`."""

    name: str | None = None
    description: str | None = None
    model: ModelSpec
    data: DataSpec
    perturbations: list[PerturbationSpec] | None = Field(default=None, min_length=1)
    magnitudes: list[Magnitude] | None = Field(default=None, min_length=1)
    repeats: int = Field(default=1, ge=1)
    seed: int | None = Field(default=None, ge=0)
    metrics: list[str] | None = Field(default=None, min_length=1)
    store: str | None = None
    report: str | None = None
    batch_size: int = Field(default=8192, ge=1)
    bounds: BoundsSpec | None = None

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: Path | None = PrivateAttr(default=None)
    _lines: Any = PrivateAttr(default=None)

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_dict(
        cls,
        data: Any,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        source: str | os.PathLike[str] | None = None,
    ) -> Experiment:
        """Validate a mapping (as read from YAML) into an Experiment.

        Args:
            data: the experiment as plain data.
            base_dir: the folder relative paths are taken from (default: the current one).
            source: the file it came from, named in errors.

        Raises:
            ExperimentError: one line naming the field by its path, the value and
                what is allowed.
        """
        return _validate(data, base_dir=base_dir, source=source, lines=None)

    @property
    def base_dir(self) -> Path:
        """The folder that relative paths in the file are relative to."""
        return self._base_dir

    @property
    def source(self) -> Path | None:
        """The YAML file, when loaded from one."""
        return self._source

    @property
    def run_name(self) -> str:
        """``name``, or the file's stem, or ``"experiment"``."""
        if self.name:
            return self.name
        return self._source.stem if self._source is not None else "experiment"

    # -- resolution ---------------------------------------------------------------
    def resolve_path(self, path: str | os.PathLike[str]) -> Path:
        """``path`` relative to the experiment's folder (absolute paths stay)."""
        p = Path(os.path.expanduser(os.fspath(path)))
        return p if p.is_absolute() else self._base_dir / p

    def store_url(self, override: str | None = None) -> str:
        """The store URL: ``override`` (the CLI's ``--store``, relative to the current
        folder), else ``store`` from the file (relative to its folder), else
        :data:`DEFAULT_STORE` in the current folder."""
        if override is not None:
            return override
        if self.store is None:
            return DEFAULT_STORE
        return _resolve_store(self.store, self._base_dir)

    def report_path(self, override: str | os.PathLike[str] | None = None) -> Path | None:
        """Where the HTML report goes: ``override`` (relative to the current folder),
        else ``report`` from the file (relative to its folder), else None."""
        if override is not None:
            return Path(override)
        return None if self.report is None else self.resolve_path(self.report)

    def model_spec(self) -> str:
        """The model file path or entry point, with file paths made absolute."""
        if self.model.path is not None:
            return str(self.resolve_path(self.model.path))
        return _resolve_entry_point(str(self.model.entry_point), self._base_dir)

    # -- the pieces of the sweep --------------------------------------------------
    def _in_field(self, loc: tuple[Any, ...], err: PerturbkitError) -> PerturbkitError:
        """``err`` with the file, line and field path in front (same error class)."""
        shown = os.fspath(self._source) if self._source is not None else "experiment"
        line = None if self._lines is None else self._lines.line(loc)
        where = f"{shown}:{line}" if line is not None else shown
        try:
            return type(err)(f"{where}: {_path(loc)}: {err}")
        except Exception:  # pragma: no cover - an error class with another signature
            return err

    def load_data(self) -> tuple[Any, Any, Any]:
        """``(X, y, info)`` as :func:`perturbkit.data.load_data` returns them."""
        from perturbkit.data import load_data

        d = self.data
        spec = d.dataset if d.dataset is not None else str(self.resolve_path(str(d.path)))
        try:
            return load_data(
                spec,
                target=d.target,
                features=d.features,
                limit=d.limit,
                sample=d.sample,
                seed=0 if self.seed is None else self.seed,
            )
        except PerturbkitError as err:
            field = "dataset" if d.dataset is not None else "path"
            if "'target'" in str(err) or "Target column" in str(err):
                field = "target"
            elif "eature column" in str(err) or "'features'" in str(err):
                field = "features"
            raise self._in_field(("data", field), err) from err

    def load_model(self) -> Any:
        """The wrapped model (:func:`perturbkit.load_model`, or the factory's product)."""
        from perturbkit.models import load_model, wrap

        m = self.model
        spec = self.model_spec()
        field = "path" if m.path is not None else "entry_point"
        try:
            if m.call:
                return wrap(_call_factory(spec, str(m.entry_point), m.kwargs), task=m.task)
            return load_model(
                spec,
                kind=m.kind,
                task=m.task,
                allow_pickle=m.allow_pickle,
                state_dict=None if m.state_dict is None else self.resolve_path(m.state_dict),
                trusted=tuple(m.trust),
                factory_kwargs=m.kwargs or None,
            )
        except PerturbkitError as err:
            raise self._in_field(("model", field), err) from err

    def build_perturbations(self) -> tuple[list[Any], dict[str, list[float]]]:
        """The perturbation instances and the magnitude grid of each (keyed by label)."""
        perts, mags = [], {}
        for spec in self.perturbations or []:
            p = _build_one(spec)
            perts.append(p)
            grid = spec.magnitudes if spec.magnitudes is not None else self.magnitudes
            mags[p.label] = [float(m) for m in grid or []]
        return perts, mags

    def command(self, *, store: str | None = None) -> str:
        """The command that re-runs this experiment."""
        path = self._source if self._source is not None else Path("experiment.yaml")
        try:
            shown = os.path.relpath(path)
        except ValueError:  # another drive on Windows
            shown = str(path)
        cmd = f"perturbkit run {_quote(shown)}"
        if store is not None:
            cmd += f" --store {_quote(store)}"
        return cmd

    def to_dict(self) -> dict[str, Any]:
        """The experiment as plain data (what a YAML file would hold), defaults included."""
        return self.model_dump(mode="json")


# -- loading ------------------------------------------------------------------------------
def load_experiment(path: str | os.PathLike[str]) -> Experiment:
    """Read and validate an experiment YAML file.

    Raises:
        ExperimentError: a missing or unreadable file, malformed YAML (with its
            line), or an invalid field (with its path in the file, its value and
            what is allowed).
    """
    import yaml

    p = Path(path)
    shown = os.fspath(path)
    if not p.exists():
        raise ExperimentError(f"Experiment file '{shown}' does not exist.")
    if p.is_dir():
        raise ExperimentError(f"Experiment path '{shown}' is a folder; expected a YAML file.")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExperimentError(
            f"Experiment file '{shown}' could not be read: {_first_line(exc)}"
        ) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{shown}:{mark.line + 1}" if mark is not None else shown
        what = " ".join(str(exc.problem or exc.context or "malformed").split())
        col = f", column {mark.column + 1}" if mark is not None else ""
        raise ExperimentError(f"{where}: malformed YAML{col}: {what}.") from None
    except yaml.YAMLError as exc:
        raise ExperimentError(f"{shown}: malformed YAML: {_first_line(exc)}.") from None
    lines = _Lines(node)
    dup = lines.duplicate
    if dup is not None:
        raise ExperimentError(
            f"{shown}:{dup[1]}: duplicate key '{dup[0]}'; each field may appear once."
        )
    return _validate(data, base_dir=p.resolve().parent, source=p, lines=lines)


class _Lines:
    """Line numbers of the YAML nodes, found by a pydantic location."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.duplicate: tuple[str, int] | None = None
        if root is not None:
            self._check_duplicates(root)

    def _check_duplicates(self, node: Any) -> None:
        import yaml

        if self.duplicate is not None:
            return
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in node.value:
                key = str(getattr(k, "value", k))
                if key in seen:
                    self.duplicate = (key, k.start_mark.line + 1)
                    return
                seen.add(key)
                self._check_duplicates(v)
        elif isinstance(node, yaml.SequenceNode):
            for v in node.value:
                self._check_duplicates(v)

    def line(self, loc: Sequence[Any]) -> int | None:
        import yaml

        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                for k, v in node.value:
                    if getattr(k, "value", None) == part:
                        line, node = k.start_mark.line + 1, v
                        break
                else:
                    return line
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    return line
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line


def _validate(
    data: Any,
    *,
    base_dir: str | os.PathLike[str] | None,
    source: str | os.PathLike[str] | None,
    lines: _Lines | None,
) -> Experiment:
    shown = os.fspath(source) if source is not None else "experiment"

    def where(loc: Sequence[Any]) -> str:
        n = None if lines is None else lines.line(loc)
        return f"{shown}:{n}" if n is not None else shown

    if not isinstance(data, Mapping):
        kind = "nothing" if data is None else f"a {type(data).__name__}"
        raise ExperimentError(
            f"{where(())}: an experiment must be a mapping of fields "
            f"({', '.join(Experiment.model_fields)}). Got {kind} instead."
        )
    try:
        exp = Experiment.model_validate(dict(data))
    except ValidationError as exc:
        raise ExperimentError(_one_line(exc, where)) from None
    exp._base_dir = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    exp._source = Path(source) if source is not None else None
    exp._lines = lines
    _check(exp, where)
    return exp


def _path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


_SECTIONS: dict[tuple[str, ...], type[BaseModel]] = {
    (): Experiment,
    ("model",): ModelSpec,
    ("data",): DataSpec,
    ("perturbations",): PerturbationSpec,
    ("bounds",): BoundsSpec,
    ("bounds", "certify"): CertifySpec,
}


def _short(value: Any, limit: int = 60) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(exc: ValidationError, where: Any) -> str:
    errors = exc.errors()
    e = errors[0]
    loc = tuple(e["loc"])
    kind = e["type"]
    value = e.get("input")
    if kind == "extra_forbidden":
        section = _SECTIONS.get(tuple(p for p in loc[:-1] if isinstance(p, str)))
        allowed = ", ".join(section.model_fields) if section is not None else ""
        close = difflib.get_close_matches(
            str(loc[-1]), list(section.model_fields) if section else [], n=1
        )
        hint = f" Did you mean '{close[0]}'?" if close else ""
        msg = f"unknown field.{hint} Allowed: {allowed}."
    elif kind == "missing":
        msg = "required field is missing."
    elif kind == "value_error":
        text = str(e["msg"]).removeprefix("Value error, ")
        msg = text if text.endswith(".") else text + "."
        if "Got " not in msg and not isinstance(value, Mapping):
            msg += f" Got {_short(value)} instead."
    else:
        text = str(e["msg"]).replace("Input should be", "must be")
        text = text.replace("List should have", "must have").replace("Dictionary", "a mapping")
        msg = f"{text}. Got {_short(value)} instead."
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where(loc)}: {_path(loc)}: {msg}{more}"


def _check(exp: Experiment, where: Any) -> None:
    """Checks that need the registry: names, parameters, magnitude ranges, duplicates."""
    from perturbkit import perturbations as registry

    def fail(loc: tuple[Any, ...], msg: str) -> ExperimentError:
        return ExperimentError(f"{where(loc)}: {_path(loc)}: {msg}")

    if exp.perturbations is None and exp.bounds is None:
        raise fail(
            ("perturbations",),
            "required: an experiment needs 'perturbations' (a sweep), 'bounds' (robustness "
            "bounds) or both.",
        )
    if exp.bounds is not None:
        _check_bounds(exp.bounds, fail)
    seen: dict[int, int] = {}
    for i, spec in enumerate(exp.perturbations or []):
        loc: tuple[Any, ...] = ("perturbations", i)
        try:
            cls = registry.get_class(spec.name)
        except PerturbkitError as err:
            raise fail((*loc, "name"), str(err)) from None
        try:
            p = _build_one(spec)
        except PerturbkitError as err:
            sub = "columns" if "'columns'" in str(err) and spec.columns is not None else "params"
            raise fail((*loc, sub), str(err)) from None
        grid_loc: tuple[Any, ...] = (*loc, "magnitudes")
        grid = spec.magnitudes
        if grid is None:
            grid, grid_loc = exp.magnitudes, ("magnitudes",)
        if grid is None:
            raise fail(
                (*loc, "magnitudes"),
                f"required: give {spec.name} its own 'magnitudes' (in {cls.unit}), "
                "or a top-level 'magnitudes' list for every perturbation.",
            )
        high = cls.max_magnitude
        firsts: dict[float, int] = {}
        for j, m in enumerate(grid):
            if high is not None and m > high:
                raise fail(
                    (*grid_loc, j),
                    f"must be a finite float in [0, {high:g}] for {spec.name} ({cls.unit}). "
                    f"Got {m!r} instead.",
                )
            if m in firsts:
                raise fail(
                    (*grid_loc, j),
                    f"repeats the magnitude {m!r} of {_path((*grid_loc, firsts[m]))}; "
                    "each magnitude may appear once.",
                )
            firsts[m] = j
        if p.key in seen:
            raise fail(
                loc,
                f"is the same perturbation as perturbations[{seen[p.key]}] ({p.label}); "
                "give each entry different params.",
            )
        seen[p.key] = i


def _check_bounds(b: BoundsSpec, fail: Any) -> None:
    """Checks across the fields of ``bounds`` (the rest is :func:`robustness_curve`'s)."""
    loc: tuple[Any, ...] = ("bounds",)
    firsts: dict[float, int] = {}
    for j, lev in enumerate(b.levels):
        if lev in firsts:
            raise fail(
                (*loc, "levels", j),
                f"repeats the level {lev!r} of bounds.levels[{firsts[lev]}]; each level may "
                "appear once.",
            )
        firsts[lev] = j
    if b.sampler in ("qmc", "antithetic") and b.n_draws % 2:
        raise fail(
            (*loc, "n_draws"),
            f"must be even with sampler {b.sampler!r} (draws come in pairs or two "
            f"replicates). Got {b.n_draws} instead.",
        )
    if b.sampler == "orthogonal" and b.noise != "gaussian":
        raise fail(
            (*loc, "sampler"),
            f"must be 'qmc', 'mc' or 'antithetic' with noise {b.noise!r}; 'orthogonal' works "
            "only with noise 'gaussian'. Got 'orthogonal' instead.",
        )
    if b.target == "dataset":
        if b.method not in ("t", "hoeffding"):
            raise fail(
                (*loc, "method"),
                f"must be 't' or 'hoeffding' with target 'dataset'. Got {b.method!r} instead.",
            )
        reps = {
            "mc": b.n_draws,
            "antithetic": b.n_draws // 2,
            "qmc": 2,
            "orthogonal": 2 - b.n_draws % 2,
        }[b.sampler]
        if b.method == "t" and reps < 2:
            raise fail(
                (*loc, "n_draws"),
                "must give at least 2 independent replicates per row with target 'dataset' "
                f"(mc: >= 2, antithetic: >= 4, orthogonal: even). Got {b.n_draws} instead.",
            )
    c = b.certify
    if c is not None:
        if c.n0 > c.n:
            raise fail(
                (*loc, "certify", "n0"),
                f"must be at most bounds.certify.n ({c.n}). Got {c.n0} instead.",
            )
        seen: dict[float, int] = {}
        for j, s in enumerate(c.sigma):
            if s in seen:
                raise fail(
                    (*loc, "certify", "sigma", j),
                    f"repeats the sigma {s!r} of bounds.certify.sigma[{seen[s]}]; each sigma "
                    "may appear once.",
                )
            seen[s] = j


def _build_one(spec: PerturbationSpec) -> Any:
    from perturbkit import perturbations as registry

    params = dict(spec.params)
    if spec.columns is not None:
        if "columns" in params:
            raise ParameterError("'columns' is given both beside 'params' and inside it; keep one.")
        params["columns"] = list(spec.columns)
    return registry.get(spec.name, **params)


# -- paths ---------------------------------------------------------------------------------
def _resolve_store(url: str, base: Path) -> str:
    if "://" not in url:  # a file path such as runs.db
        p = Path(os.path.expanduser(url))
        return str(p if p.is_absolute() else base / p)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rest, sep, query = url[len("sqlite:///") :].partition("?")
        if rest and rest != ":memory:" and not Path(rest).is_absolute():
            return f"sqlite:///{(base / rest).as_posix()}{sep}{query}"
    return url


def _resolve_entry_point(spec: str, base: Path) -> str:
    module, sep, attr = spec.rpartition(":")
    if not sep or not module:
        return spec
    looks_like_file = module.endswith(".py") or "/" in module or os.sep in module
    if looks_like_file:
        p = Path(os.path.expanduser(module))
        return f"{p if p.is_absolute() else base / p}:{attr}"
    sibling = base / (module.replace(".", os.sep) + ".py")
    if sibling.is_file():  # a module next to the experiment file
        return f"{sibling}:{attr}"
    return spec


def _call_factory(spec: str, shown: str, kwargs: Mapping[str, Any]) -> Any:
    from perturbkit.exceptions import ModelError
    from perturbkit.models.loading import import_attribute

    factory = import_attribute(spec)
    if not callable(factory):
        raise ModelError(
            f"Model entry point '{shown}' is a {type(factory).__name__}, not a factory to call; "
            "drop 'call: true' to sweep it as it is."
        )
    try:
        return factory(**kwargs)
    except PerturbkitError:
        raise
    except Exception as exc:
        raise ModelError(
            f"Model factory '{shown}' raised {type(exc).__name__}: {_first_line(exc)}"
        ) from exc


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return " ".join(lines[0].split()) if lines else type(exc).__name__


# -- running -------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False, eq=False)
class ExperimentResult(SweepResult):
    """What :func:`run_experiment` returns: the sweep's :class:`perturbkit.SweepResult`
    (``table``, ``meta``, ``run_id``, ``summary()`` … as before) plus the bounds.

    Without ``perturbations`` the table and meta are the stored bounds run's, as
    :func:`perturbkit.load_run` returns them (``meta["kind"] == "bounds"``).

    Attributes:
        bounds: the :class:`perturbkit.RobustnessCurve` as stored (its ``meta``
            has the ``run_id``), or None without a ``bounds:`` section.
        certification: one row per sigma
            (:func:`perturbkit.analysis.bounds_store.certification_summary`), or None.
        certified: the :class:`perturbkit.CertifyResult` of each sigma (per-row
            radii); empty when the bounds were reused by ``resume``.
        bounds_run: the stored bounds run as a :class:`perturbkit.SweepResult`
            (what :func:`perturbkit.write_report` draws the bounds section from).
    """

    bounds: Any = None
    certification: Any = None
    certified: tuple[Any, ...] = ()
    bounds_run: SweepResult | None = None

    @property
    def bounds_run_id(self) -> str | None:
        """The run id of the stored curve, or None."""
        return None if self.bounds_run is None else self.bounds_run.run_id

    @property
    def sweep(self) -> SweepResult | None:
        """The sweep alone, or None when the experiment has no perturbations."""
        if self.meta.get("kind") == "bounds":
            return None
        return SweepResult(self.table, self.meta)

    def __repr__(self) -> str:
        parts = []
        if self.sweep is not None:
            parts.append(f"sweep={self.run_id}")
        if self.bounds_run is not None:
            parts.append(f"bounds={self.bounds_run_id} levels={len(self.bounds.table)}")
        return f"<ExperimentResult {' '.join(parts)} task={self.meta.get('task')}>"


def run_experiment(
    exp: Experiment,
    *,
    store: Any = None,
    resume: bool = False,
    progress: bool = True,
) -> ExperimentResult:
    """Run an experiment's sweep and bounds, store them; returns an :class:`ExperimentResult`.

    The result is the sweep's :class:`perturbkit.SweepResult` (an
    ExperimentResult is one), with the robustness curve in ``bounds`` when the
    experiment has a ``bounds:`` section.

    The store is opened first (an unreachable store fails before any work),
    then the data and the model are loaded; the bounds (and certification)
    are computed before the sweep, and the sweep validates everything and
    computes the clean pass before it creates its run: bad input leaves no run
    behind. The curve is stored after the sweep as its own run, named
    ``"<name> bounds"``; each run's metadata links to the other
    (``bounds_run_id``, ``sweep_run_id``) and records the experiment and the
    command that re-runs it.

    Args:
        exp: a validated experiment (:func:`load_experiment`).
        store: a :class:`perturbkit.Store` or URL; default :meth:`Experiment.store_url`.
        resume: continue the newest stored run of the same model, data and grid;
            reuse a complete stored curve of the same model, data, bounds and seed.
        progress: show a progress bar with ETA (the sweep's).
    """
    from perturbkit.engine import sweep
    from perturbkit.store import Store

    if isinstance(store, Store):
        own, st, given = None, store, store.url
    else:
        given = None if store is None else os.fspath(store)
        own = st = Store(exp.store_url(given))
    try:
        X, y, _info = exp.load_data()
        model = exp.load_model()
        extra: dict[str, Any] = {
            "command": exp.command(store=given),
            "experiment": exp.to_dict(),
        }
        bounds = None if exp.bounds is None else _Bounds.compute(exp, model, X, y, st, resume)
        result = None
        if exp.perturbations:
            perts, mags = exp.build_perturbations()
            result = sweep(
                model,
                X,
                y,
                perturbations=perts,
                magnitudes=mags,
                repeats=exp.repeats,
                seed=exp.seed,
                batch_size=exp.batch_size,
                metrics=exp.metrics,
                store=st,
                progress=progress,
                resume=resume,
                task=exp.model.task,
                name=exp.run_name,
            )
        if bounds is not None:
            sweep_id = None if result is None else result.run_id
            bounds.store(exp, st, {**extra, "sweep_run_id": sweep_id})
            if sweep_id is not None:
                extra["bounds_run_id"] = bounds.run.run_id
        if result is None:
            assert bounds is not None and bounds.run is not None  # checked by _check
            run = bounds.run
            return ExperimentResult(
                run.table,
                run.meta,
                bounds=bounds.curve,
                certification=bounds.certification,
                certified=bounds.certified,
                bounds_run=run,
            )
        result.meta.update(extra)
        if result.run_id is not None:
            status = result.meta.get("status", "complete")
            st.finish_run(result.run_id, status=status, meta_update=extra)
        return ExperimentResult(
            result.table,
            result.meta,
            bounds=None if bounds is None else bounds.curve,
            certification=None if bounds is None else bounds.certification,
            certified=() if bounds is None else bounds.certified,
            bounds_run=None if bounds is None else bounds.run,
        )
    finally:
        if own is not None:
            own.close()


_PARAM = re.compile(r"'(\w+)' parameter of (?:robustness_curve|certify)")


class _Bounds:
    """The bounds of one experiment: computed (or reused), then stored."""

    def __init__(self) -> None:
        self.curve: Any = None
        self.certification: Any = None
        self.certified: tuple[Any, ...] = ()
        self.run: SweepResult | None = None
        self.fingerprint = ""
        self.seconds = 0.0
        self.extra: dict[str, Any] = {}

    @classmethod
    def compute(cls, exp: Experiment, model: Any, X: Any, y: Any, st: Any, resume: bool) -> Any:
        from perturbkit._rng import canonical_json
        from perturbkit._validation import as_numeric_2d
        from perturbkit.analysis import bounds_store
        from perturbkit.analysis.bounds import robustness_curve
        from perturbkit.analysis.certify import certify
        from perturbkit.engine.sweep import data_fingerprint
        from perturbkit.exceptions import DataError, ModelError

        b = exp.bounds
        assert b is not None
        self = cls()
        task = model.task or "regression"
        if b.certify is not None and task != "classification":
            raise exp._in_field(
                ("bounds", "certify"),
                ModelError(
                    "certify needs a classifier that returns class probabilities; "
                    f"{getattr(model, 'description', 'the model')} is a {task} model. Remove "
                    "'certify', or set model.task: classification if its outputs are "
                    "probabilities."
                ),
            )
        if b.method in ("bernstein", "hoeffding") and b.value_range is None:
            if task != "classification":
                raise exp._in_field(
                    ("bounds", "value_range"),
                    ParameterError(
                        f"required with method {b.method!r} for a {task} model: an upper bound "
                        "B on every per-point squared error and deviation. Got None instead."
                    ),
                )
        field = "dataset" if exp.data.dataset is not None else "path"
        try:
            Xa = as_numeric_2d(X, name="X")
        except DataError as err:
            raise exp._in_field(("data", field), err) from err
        mfp = model.fingerprint()
        dfp = data_fingerprint(Xa, None if y is None else np.asarray(y))
        settings = {"bounds": b.model_dump(mode="json"), "seed": exp.seed}
        self.fingerprint = _digest(mfp, dfp, canonical_json(settings))
        self.extra = {
            "model_fingerprint": mfp,
            "data_fingerprint": dfp,
            "seed_given": exp.seed is not None,
        }
        if resume:
            prev = st.find_resumable(self.fingerprint)
            if (
                prev is not None
                and prev["status"] == "complete"
                and bounds_store.is_bounds_run(prev["meta"])
            ):
                self._reuse(st, prev["run_id"])
                return self
        t0 = time.perf_counter()
        try:
            self.curve = robustness_curve(
                model, Xa, y, **b.curve_kwargs(), seed=exp.seed, label=exp.run_name
            )
        except PerturbkitError as err:
            raise exp._in_field(_bounds_loc(err, b, ("bounds",)), err) from err
        certified = []
        if b.certify is not None:
            c = b.certify
            root = int(self.curve.meta["root_seed"])
            for j, sigma in enumerate(c.sigma):
                try:
                    certified.append(
                        certify(model, Xa, sigma=sigma, n0=c.n0, n=c.n, alpha=c.alpha, seed=root)
                    )
                except PerturbkitError as err:
                    loc = _bounds_loc(err, c, ("bounds", "certify"))
                    if loc[-1] == "sigma":
                        loc = (*loc, j)
                    raise exp._in_field(loc, err) from err
            self.certification = bounds_store.certification_summary(certified, y)
        self.certified = tuple(certified)
        self.seconds = time.perf_counter() - t0
        return self

    def _reuse(self, st: Any, run_id: str) -> None:
        from perturbkit.analysis import bounds_store

        record, table = st.load_run(run_id)
        meta = dict(record["meta"])
        meta.update(run_id=record["run_id"], status=record["status"])
        self.run = SweepResult(table, meta)
        self.curve = bounds_store.curve_from_table(table, meta)
        cert = bounds_store.certification_from_table(table, meta)
        self.certification = cert if len(cert) else None

    def store(self, exp: Experiment, st: Any, extra: Mapping[str, Any]) -> None:
        """Store the curve as its own run (unless it was reused) and reload it."""
        from perturbkit.analysis import bounds_store

        if self.run is not None:  # reused: already stored
            return
        b = exp.bounds
        assert b is not None
        meta = {
            **extra,
            **self.extra,
            "timings": {"total_seconds": self.seconds},
            "certification": [r.meta for r in self.certified] or None,
        }
        config = {"levels": [float(v) for v in self.curve.levels], **b.model_dump(mode="json")}
        run_id = bounds_store.save_curve(
            self.curve,
            st,
            name=f"{exp.run_name} bounds",
            certification=self.certification,
            meta=meta,
            config=config,
            fingerprint=self.fingerprint,
            seconds=self.seconds,
        )
        self._reuse(st, run_id)


def _bounds_loc(err: Exception, spec: BaseModel, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The field of ``spec`` an error of robustness_curve or certify names, if any."""
    m = _PARAM.search(str(err))
    if m is not None and m.group(1) in type(spec).model_fields:
        return (*loc, m.group(1))
    return loc


def _digest(*parts: str) -> str:
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode())
        h.update(b"\x1f")
    return h.hexdigest()


def write_experiment_report(
    exp: Experiment, result: Any, path: str | os.PathLike[str] | None = None
) -> Path | None:
    """Write the HTML report of ``result`` to ``path`` or the experiment's ``report``.

    The report has the sweep and, when the experiment has bounds, a
    "Robustness bounds" section. Returns the path written, or None when
    neither is set.
    """
    from perturbkit.report import write_report

    out = exp.report_path(path)
    if out is None:
        return None
    items: list[Any] = []
    sweep_part = result.sweep if isinstance(result, ExperimentResult) else result
    if sweep_part is not None:
        items.append(sweep_part)
    bounds_run = getattr(result, "bounds_run", None)
    if bounds_run is not None:
        items.append(bounds_run)
    return write_report(
        items if len(items) > 1 else items[0],
        out,
        title=f"Robustness report: {exp.run_name}",
        command=result.meta.get("command") or exp.command(),
    )
