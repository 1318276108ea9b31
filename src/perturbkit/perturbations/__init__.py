"""Perturbations: the registry, the composition tools and the built-in library.

>>> from perturbkit import perturbations
>>> perturbations.list()[:2]
['feature_swap', 'gaussian_noise']
"""

from __future__ import annotations

from perturbkit.perturbations.audio import *  # noqa: F403
from perturbkit.perturbations.audio import __all__ as _audio_all
from perturbkit.perturbations.base import Combine, Compose, Perturbation
from perturbkit.perturbations.image import *  # noqa: F403
from perturbkit.perturbations.image import __all__ as _image_all
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
from perturbkit.perturbations.text import *  # noqa: F403
from perturbkit.perturbations.text import __all__ as _text_all

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
    *_text_all,
    *_image_all,
    *_audio_all,
]
