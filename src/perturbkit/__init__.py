"""perturbkit: how fragile is your model?

Reproducible perturbation sweeps, metrics, bounds and reports for
scikit-learn, PyTorch, ONNX and plain Python models::

    import perturbkit as pk
    result = pk.sweep(model, X, y, perturbations=["gaussian_noise"], magnitudes=[0, 0.1, 0.5])
    result.summary()
"""

from __future__ import annotations

from perturbkit import calc, perturbations
from perturbkit._version import __version__
from perturbkit.analysis.bounds import RobustnessCurve, robustness_curve
from perturbkit.analysis.certify import CertifyResult, certify
from perturbkit.analysis.interactions import interactions
from perturbkit.analysis.thresholds import find_threshold, find_thresholds
from perturbkit.engine import Cell, Sweep, SweepResult, sweep
from perturbkit.exceptions import (
    DataError,
    MissingExtraError,
    ModelError,
    NotDifferentiableError,
    ParameterError,
    PerturbkitError,
    StoreError,
    UnknownPerturbationError,
)
from perturbkit.models import Model, load_model, wrap
from perturbkit.perturbations import Combine, Compose, Perturbation
from perturbkit.store import Store

_LAZY = {
    # name: module. The report pulls in matplotlib, experiments pydantic: load on first use.
    "write_report": "perturbkit.report",
    "load_data": "perturbkit.data",
    "DataInfo": "perturbkit.data",
    "Experiment": "perturbkit.experiment",
    "load_experiment": "perturbkit.experiment",
    "run_experiment": "perturbkit.experiment",
    "run_demo": "perturbkit.demo",
    "ExperimentResult": "perturbkit.experiment",
    "save_curve": "perturbkit.analysis.bounds_store",
    "load_curve": "perturbkit.analysis.bounds_store",
}


def __getattr__(name: str) -> object:
    if name == "optim":  # needs torch: imported on first use
        import importlib

        return importlib.import_module("perturbkit.optim")
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'perturbkit' has no attribute {name!r}")


def load_run(run_id: str, store: str | Store = "sqlite:///perturbkit.db") -> SweepResult:
    """Reload a stored run as a :class:`SweepResult` (bit for bit what was computed)."""
    s = store if isinstance(store, Store) else Store(store)
    try:
        run, table = s.load_run(run_id)
    finally:
        if s is not store:
            s.close()
    meta = dict(run.get("meta") or {})
    meta.setdefault("run_id", run.get("run_id"))
    meta["status"] = run.get("status", meta.get("status"))
    return SweepResult(table, meta)


__all__ = [  # noqa: RUF022 - grouped: eager names, then the lazy ones
    "Cell",
    "CertifyResult",
    "Combine",
    "Compose",
    "DataError",
    "MissingExtraError",
    "Model",
    "ModelError",
    "NotDifferentiableError",
    "ParameterError",
    "Perturbation",
    "PerturbkitError",
    "RobustnessCurve",
    "Store",
    "StoreError",
    "Sweep",
    "SweepResult",
    "UnknownPerturbationError",
    "__version__",
    "calc",
    "certify",
    "find_threshold",
    "find_thresholds",
    "interactions",
    "load_model",
    "load_run",
    "perturbations",
    "robustness_curve",
    "sweep",
    "wrap",
    "write_report",
    "DataInfo",
    "Experiment",
    "load_data",
    "load_experiment",
    "run_demo",
    "run_experiment",
    "ExperimentResult",
    "load_curve",
    "save_curve",
]
