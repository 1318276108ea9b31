"""The sweep engine: cells, groups, seeding and the local backend."""

from perturbkit.engine.cells import Cell, CellResult, Group, Job, compute_group
from perturbkit.engine.result import SweepResult
from perturbkit.engine.sweep import Sweep, sweep

__all__ = ["Cell", "CellResult", "Group", "Job", "Sweep", "SweepResult", "compute_group", "sweep"]
