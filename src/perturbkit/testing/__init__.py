"""Helpers for testing perturbkit and its plugins: the shared contract checks.

>>> from perturbkit.testing import check_perturbation
"""

from __future__ import annotations

from perturbkit.testing.checks import check_perturbation, check_registry

__all__ = ["check_perturbation", "check_registry"]
