"""Analysis on top of sweep results: thresholds (more to come: bounds, sensitivity)."""

from perturbkit.analysis.interactions import interaction_heatmap, interactions
from perturbkit.analysis.thresholds import find_threshold, find_thresholds

__all__ = ["find_threshold", "find_thresholds", "interaction_heatmap", "interactions"]
