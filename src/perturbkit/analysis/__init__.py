"""Analysis on top of sweep results: thresholds (more to come: bounds, sensitivity)."""

from perturbkit.analysis.thresholds import find_thresholds

__all__ = ["find_thresholds"]
