"""Errors raised by perturbkit.

Every error a user can cause is a :class:`PerturbkitError`, and also a
``ValueError`` or ``TypeError`` so that generic handlers keep working. The
message is one line: what is wrong, the value received, what is allowed, and
the fix when there is one. ``RuntimeError`` is kept for broken internal state.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "MissingExtraError",
    "ModelError",
    "NotDifferentiableError",
    "ParameterError",
    "PerturbkitError",
    "StoreError",
    "UnknownPerturbationError",
]


class PerturbkitError(Exception):
    """Base class of every error a user of perturbkit can cause."""


class ParameterError(PerturbkitError, ValueError):
    """A parameter has a value outside what is allowed."""


class DataError(PerturbkitError, ValueError):
    """The data (X, y) cannot be used: NaN, wrong shape, non-numeric, empty."""


class UnknownPerturbationError(PerturbkitError, KeyError):
    """A perturbation name is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelError(PerturbkitError, ValueError):
    """A model raised, or returned something outside the Model contract."""


class NotDifferentiableError(PerturbkitError, TypeError):
    """Gradient access was asked of a model that has none."""


class StoreError(PerturbkitError, ValueError):
    """The results store URL is malformed or unreachable, or a run is missing."""


class MissingExtraError(PerturbkitError, ImportError):
    """An optional dependency is not installed."""
