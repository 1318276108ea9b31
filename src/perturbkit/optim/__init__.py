"""Perturbed optimizers for PyTorch, and training against the perturbations a sweep found.

Needs PyTorch (``pip install 'perturbkit[torch]'``); ``import perturbkit``
does not import this module.

- Gradient perturbations δ_t (:mod:`~perturbkit.optim.generators`) added by
  :class:`PerturbedOptimizer` around any ``torch.optim.Optimizer``, scaled by
  a schedule (:mod:`~perturbkit.optim.schedules`) and kept in check by a
  :class:`StabilityController`;
- :class:`SGLD` (Langevin sampling) and :class:`SAM` (the worst-case weight
  perturbation), with the same schedules;
- training-data perturbation with any registered input perturbation
  (:mod:`~perturbkit.optim.data`).

Every random draw comes from an explicit ``torch.Generator`` (numpy
``Generator`` for data) seeded from the ``seed`` given; the global RNGs are
never read or seeded.
"""

from __future__ import annotations

from perturbkit._extras import require

require("torch", feature="perturbkit.optim")

from perturbkit.optim.data import (  # noqa: E402
    PerturbedCollate,
    PerturbedDataset,
    perturbed_batches,
)
from perturbkit.optim.generators import (  # noqa: E402
    CurvatureGradientNoise,
    DropGradientNoise,
    GaussianGradientNoise,
    GradientPerturbation,
    LaplaceGradientNoise,
    OrthogonalGradientNoise,
    RegularizationGradient,
    ScaledGradientNoise,
    UniformGradientNoise,
)
from perturbkit.optim.optimizer import PerturbedOptimizer  # noqa: E402
from perturbkit.optim.sam import SAM  # noqa: E402
from perturbkit.optim.schedules import (  # noqa: E402
    AdaptiveSchedule,
    AnnealedSchedule,
    ConstantSchedule,
    CosineSchedule,
    ExponentialSchedule,
    Schedule,
    StepSchedule,
    WarmupSchedule,
)
from perturbkit.optim.sgld import SGLD  # noqa: E402
from perturbkit.optim.stability import DivergenceError, StabilityController  # noqa: E402

__all__ = [
    "SAM",
    "SGLD",
    "AdaptiveSchedule",
    "AnnealedSchedule",
    "ConstantSchedule",
    "CosineSchedule",
    "CurvatureGradientNoise",
    "DivergenceError",
    "DropGradientNoise",
    "ExponentialSchedule",
    "GaussianGradientNoise",
    "GradientPerturbation",
    "LaplaceGradientNoise",
    "OrthogonalGradientNoise",
    "PerturbedCollate",
    "PerturbedDataset",
    "PerturbedOptimizer",
    "RegularizationGradient",
    "ScaledGradientNoise",
    "Schedule",
    "StabilityController",
    "StepSchedule",
    "UniformGradientNoise",
    "WarmupSchedule",
    "perturbed_batches",
]
