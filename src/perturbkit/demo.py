"""``perturbkit demo``: two small real models, every tabular perturbation, one report.

:func:`run_demo` trains a scaled logistic regression on scikit-learn's
breast cancer data (569 tumours, 30 features) and a gradient boosting
regressor on its diabetes data (442 patients, 10 features), sweeps the nine
tabular perturbations over each (3 repeats, seed 0), stores both runs in
``OUT/perturbkit.db`` and writes one HTML report with both to
``OUT/report.html``. It takes a few seconds; run again, it resumes the
stored runs instead of recomputing them. The report shows three rows of each
data set before and after every perturbation (changed cells highlighted).
Everything it does is the public API::

    import perturbkit as pk
    result = pk.sweep(model, X, y, perturbations=DEMO_PERTURBATIONS,
                      magnitudes=DEMO_MAGNITUDES, repeats=3, seed=0, store="sqlite:///demo.db")
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEMO_MAGNITUDES",
    "DEMO_PERTURBATIONS",
    "DemoResult",
    "breast_cancer_classifier",
    "diabetes_regressor",
    "run_demo",
]

#: The tabular perturbations the demo sweeps (registry names, or name and params).
DEMO_PERTURBATIONS: list[Any] = [
    "gaussian_noise",
    "uniform_noise",
    "laplace_noise",
    "multiplicative_noise",
    "sensor_drift",
    "quantization",
    {"name": "missing_values", "params": {"fill": "mean"}},
    "outliers",
    "feature_swap",
]

_NOISE = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0]
#: Magnitude grids, in each perturbation's unit (see ``perturbkit perturbations``).
DEMO_MAGNITUDES: dict[str, list[float]] = {
    # noise standard deviation, as a fraction of each feature's standard deviation
    "gaussian_noise": _NOISE,
    "uniform_noise": _NOISE,
    "laplace_noise": _NOISE,
    # standard deviation of the relative change x'/x - 1
    "multiplicative_noise": [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5],
    # bias in feature standard deviations
    "sensor_drift": [0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
    # grid step in feature standard deviations
    "quantization": [0.0, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0],
    # fraction of entries missing (mean-imputed)
    "missing_values": [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5],
    # fraction of entries replaced by the feature's min or max
    "outliers": [0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2],
    # fraction of rows whose value is swapped in from another row, per feature
    "feature_swap": [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0],
}


def breast_cancer_classifier() -> tuple[Any, Any, Any]:
    """A StandardScaler + LogisticRegression pipeline fitted on breast cancer: (model, X, y)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from perturbkit.data import load_data

    X, y, _ = load_data("breast_cancer")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    return model.fit(X, y), X, y


def diabetes_regressor() -> tuple[Any, Any, Any]:
    """A GradientBoostingRegressor (seeded) fitted on diabetes: (model, X, y)."""
    from sklearn.ensemble import GradientBoostingRegressor

    from perturbkit.data import load_data

    X, y, _ = load_data("diabetes")
    model = GradientBoostingRegressor(n_estimators=150, max_depth=3, random_state=0)
    return model.fit(X, y), X, y


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` made: the runs, the store and the report."""

    out_dir: Path
    store_url: str
    db_path: Path
    report_path: Path
    results: list[Any] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "store": self.store_url,
            "db_path": str(self.db_path),
            "report": str(self.report_path),
            "runs": [
                {
                    "run_id": r.run_id,
                    "name": r.meta.get("name"),
                    "task": r.meta.get("task"),
                    "status": r.meta.get("status"),
                    "baseline": r.baseline,
                }
                for r in self.results
            ],
            "seconds": round(self.seconds, 3),
        }


def run_demo(
    out: str | os.PathLike[str] = ".", *, progress: bool = True, repeats: int = 3, seed: int = 0
) -> DemoResult:
    """Train the two demo models, sweep, store and report; see the module docstring.

    Args:
        out: the folder for ``perturbkit.db`` and ``report.html`` (created if needed).
        progress: show a progress bar per sweep.
        repeats: noise draws per (perturbation, magnitude).
        seed: the root seed of both runs.
    """
    from perturbkit.engine import sweep
    from perturbkit.report import perturbation_examples, write_report
    from perturbkit.store import Store

    t0 = time.perf_counter()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    db = out_dir / "perturbkit.db"
    url = f"sqlite:///{db.resolve().as_posix()}"
    results = []
    examples = []
    with Store(url) as store:
        for name, make in (
            ("demo-breast-cancer-logreg", breast_cancer_classifier),
            ("demo-diabetes-gbr", diabetes_regressor),
        ):
            model, X, y = make()
            results.append(
                sweep(
                    model,
                    X,
                    y,
                    perturbations=DEMO_PERTURBATIONS,
                    magnitudes=DEMO_MAGNITUDES,
                    repeats=repeats,
                    seed=seed,
                    store=store,
                    progress=progress,
                    resume=True,
                    name=name,
                )
            )
            examples += perturbation_examples(results[-1], X, n_rows=3, seed=seed)
        for r in results:
            r.meta["command"] = "perturbkit demo" + (
                "" if out_dir == Path(".") else f" --out {out_dir}"
            )
            store.finish_run(
                r.run_id, status=r.meta["status"], meta_update={"command": r.meta["command"]}
            )
    report = write_report(
        results,
        out_dir / "report.html",
        title="perturbkit demo: a classifier and a regressor under tabular perturbations",
        command=results[0].meta["command"],
        examples=examples,
    )
    return DemoResult(
        out_dir=out_dir,
        store_url=url,
        db_path=db,
        report_path=report,
        results=results,
        seconds=time.perf_counter() - t0,
    )
