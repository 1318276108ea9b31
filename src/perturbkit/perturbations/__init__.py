"""Perturbations: the registry, the composition tools and the built-in library.

>>> from perturbkit import perturbations
>>> perturbations.list()[:2]
['feature_swap', 'gaussian_noise']
"""

from __future__ import annotations

from perturbkit.perturbations.base import Combine, Compose, Perturbation
from perturbkit.perturbations.registry import (
    describe,
    from_dict,
    from_yaml,
    get,
    get_class,
    list,
    register,
)
from perturbkit.perturbations.tabular import *  # noqa: F403
from perturbkit.perturbations.tabular import __all__ as _tabular_all

__all__ = [
    "Combine",
    "Compose",
    "Perturbation",
    "describe",
    "from_dict",
    "from_yaml",
    "get",
    "get_class",
    "list",
    "register",
    *_tabular_all,
]
