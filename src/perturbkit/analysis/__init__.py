"""Analysis on top of sweep results: thresholds (more to come: bounds, sensitivity)."""

from perturbkit.analysis.bounds import (
    RobustnessCurve,
    clopper_pearson,
    mean_upper_bound,
    plot_robustness_curves,
    robustness_curve,
)
from perturbkit.analysis.bounds_store import (
    certification_summary,
    load_certification,
    load_curve,
    save_curve,
)
from perturbkit.analysis.certify import CertifyResult, certify, plot_certified_accuracy
from perturbkit.analysis.interactions import interaction_heatmap, interactions
from perturbkit.analysis.thresholds import find_threshold, find_thresholds

__all__ = [
    "CertifyResult",
    "RobustnessCurve",
    "certification_summary",
    "certify",
    "clopper_pearson",
    "find_threshold",
    "find_thresholds",
    "interaction_heatmap",
    "interactions",
    "load_certification",
    "load_curve",
    "mean_upper_bound",
    "plot_certified_accuracy",
    "plot_robustness_curves",
    "robustness_curve",
    "save_curve",
]
