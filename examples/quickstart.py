"""perturbkit in five steps: sweep -> summary -> thresholds -> store -> report.

Run it from any folder; it writes quickstart.db and quickstart.html there:

    python examples/quickstart.py
"""

from __future__ import annotations

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import perturbkit as pk
from perturbkit.report import write_report

# 1. A real model on real data.
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(X, y)

# 2. Sweep: perturbations x magnitudes x repeats. Magnitudes are in each
#    perturbation's unit: here the noise's standard deviation as a fraction of
#    each feature's, and the fraction of entries that go missing.
result = pk.sweep(
    model,
    X,
    y,
    perturbations=["gaussian_noise", {"name": "missing_values", "params": {"fill": "mean"}}],
    magnitudes={
        "gaussian_noise": [0, 0.1, 0.25, 0.5, 1.0],
        "missing_values": [0, 0.05, 0.1, 0.2, 0.4],
    },
    repeats=3,
    seed=0,
    store="sqlite:///quickstart.db",  # every finished cell is stored as it goes
    progress=False,
)
print(f"run {result.run_id}: clean accuracy {result.baseline['accuracy']:.3f}")

# 3. Summary: mean and 95% interval over the repeats, per perturbation and magnitude.
summary = result.summary()
print(summary[summary["metric"] == "accuracy"][["label", "magnitude", "mean", "ci_low", "ci_high"]])

# 4. Thresholds: the smallest magnitude at which accuracy falls by 2 points.
print(result.thresholds("accuracy_drop", tolerance=0.02)[["label", "threshold"]])

# 5. The run is in the store: reload it bit for bit, and write the HTML report.
again = pk.load_run(result.run_id, "sqlite:///quickstart.db")
assert again.table["value"].equals(result.table["value"])
path = write_report(again, "quickstart.html", command="python examples/quickstart.py")
print(f"report: {path}")
