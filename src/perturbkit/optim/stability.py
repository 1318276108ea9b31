"""The stability controller: clipping, a noise bound, divergence detection and rollback.

The controller decides; :class:`~perturbkit.optim.PerturbedOptimizer` acts.
At each step, in this order:

1. **Divergence.** A non-finite loss or gradient norm, or a loss spike (above
   ``spike_factor`` times the median of the last ``window`` good losses, for
   a positive loss), is a divergence: the update is skipped, the noise
   factor is multiplied by ``noise_decay``, and with ``rollback=True`` the
   parameters and the optimizer state go back to the last good snapshot
   (taken every ``snapshot_every`` good steps: one copy of the parameters and
   of the base optimizer's state, kept in memory and in ``state_dict``).
   More than ``max_divergences`` divergences raise :class:`DivergenceError`.
2. **Clipping** of the gradient, by value (``clip_value``) and then by global
   norm (``clip_norm``), before any noise is added.
3. **Noise bound.** With ``max_noise_ratio = r``, each parameter group's δ is
   scaled down where needed so that ``‖δ‖² <= r ‖g‖²``: the noise variance
   per coordinate is at most r times the gradient's. Both are second moments
   about zero over the group's coordinates (δ has mean zero; for the
   gradient, the spread about its own mean would let a uniform gradient
   take no noise at all), the gradient taken after clipping.

Every event is logged in :attr:`StabilityController.events` (the newest
``max_events``), counted in :attr:`~StabilityController.counts`, and
divergences and rollbacks also go to the ``perturbkit.optim`` logger.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import deque
from typing import Any, ClassVar

from perturbkit._validation import Either, Interval, OneOf, check_param
from perturbkit.exceptions import PerturbkitError

__all__ = ["DivergenceError", "StabilityController"]

logger = logging.getLogger("perturbkit.optim")

_NONE = OneOf((None,))
_POS = Interval(0, None, closed_low=False)


class DivergenceError(PerturbkitError, FloatingPointError):
    """Training kept diverging after the allowed number of rollbacks."""


class StabilityController:
    """Gradient clipping, a noise-variance bound, divergence detection and rollback.

    Args:
        clip_norm: clip the global gradient norm to this (None: no clipping).
        clip_value: clip every gradient coordinate to [−v, v] (None: no clipping).
        max_noise_ratio: bound the noise variance by r times the gradient variance,
            ‖δ‖² <= r‖g‖², per parameter group (None: unbounded).
        detect_divergence: watch for non-finite or spiking loss and gradient.
        spike_factor: a loss above this many times the recent median is a spike (> 1).
        window: how many recent good losses the median uses (spikes are
            looked for once the window is full).
        rollback: on a divergence, restore the last good snapshot.
        snapshot_every: good steps between two snapshots (>= 1).
        noise_decay: the noise factor's multiplier at each divergence, in [0, 1].
        max_divergences: raise :class:`DivergenceError` after this many.
        max_events: how many events :attr:`events` keeps.
    """

    _constraints: ClassVar[dict[str, Any]] = {
        "clip_norm": Either((_NONE, _POS)),
        "clip_value": Either((_NONE, _POS)),
        "max_noise_ratio": Either((_NONE, Interval(0, None))),
        "detect_divergence": OneOf((True, False)),
        "spike_factor": Interval(1, None, closed_low=False),
        "window": Interval(1, None, integer=True),
        "rollback": OneOf((True, False)),
        "snapshot_every": Interval(1, None, integer=True),
        "noise_decay": Interval(0, 1),
        "max_divergences": Interval(0, None, integer=True),
        "max_events": Interval(1, None, integer=True),
    }

    def __init__(
        self,
        *,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        max_noise_ratio: float | None = None,
        detect_divergence: bool = True,
        spike_factor: float = 10.0,
        window: int = 20,
        rollback: bool = True,
        snapshot_every: int = 50,
        noise_decay: float = 0.5,
        max_divergences: int = 10,
        max_events: int = 1000,
    ) -> None:
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.max_noise_ratio = max_noise_ratio
        self.detect_divergence = detect_divergence
        self.spike_factor = spike_factor
        self.window = window
        self.rollback = rollback
        self.snapshot_every = snapshot_every
        self.noise_decay = noise_decay
        self.max_divergences = max_divergences
        self.max_events = max_events
        self.reset()

    def reset(self) -> None:
        """Forget the history: factor 1, no losses, no events."""
        self.noise_factor_ = 1.0
        self.losses_: deque[float] = deque(maxlen=int(self.window))
        self.n_divergences_ = 0
        self.events: deque[dict[str, Any]] = deque(maxlen=int(self.max_events))
        self.counts: dict[str, int] = {}

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._constraints}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"StabilityController({args})"

    def _validate_params(self) -> None:
        for k, c in self._constraints.items():
            check_param("StabilityController", k, getattr(self, k), c)
        if self.losses_.maxlen != int(self.window) or self.events.maxlen != int(self.max_events):
            self.reset()

    # -- decisions -----------------------------------------------------------------------
    @property
    def needs_grad_norm(self) -> bool:
        return bool(self.detect_divergence or self.clip_norm is not None)

    def log(self, step: int, event: str, **detail: Any) -> None:
        """Record one event (and count it)."""
        self.events.append({"step": step, "event": event, **detail})
        self.counts[event] = self.counts.get(event, 0) + 1
        if event in ("divergence", "rollback"):
            logger.warning("step %d: %s %s", step, event, detail)
        else:
            logger.debug("step %d: %s %s", step, event, detail)

    def divergence(self, loss: float | None, grad_norm: float | None) -> str | None:
        """Why this step diverged (``"non-finite loss"``, ``"loss spike"``, …), or None."""
        if not self.detect_divergence:
            return None
        if loss is not None and not math.isfinite(loss):
            return "non-finite loss"
        if grad_norm is not None and not math.isfinite(grad_norm):
            return "non-finite gradient"
        if loss is not None and len(self.losses_) == self.losses_.maxlen:
            med = statistics.median(self.losses_)
            spread = max(self.losses_) - min(self.losses_)
            scale = max(abs(med), spread, 1e-12)
            if loss - med > (float(self.spike_factor) - 1.0) * scale:
                return "loss spike"
        return None

    def on_divergence(self, step: int, reason: str, loss: float | None) -> None:
        """Reduce the noise, count, log; raise once past ``max_divergences``."""
        self.n_divergences_ += 1
        self.noise_factor_ *= float(self.noise_decay)
        self.log(step, "divergence", reason=reason, loss=loss, noise_factor=self.noise_factor_)
        if self.n_divergences_ > int(self.max_divergences):
            raise DivergenceError(
                f"Training diverged {self.n_divergences_} times (last at step {step}: "
                f"{reason}), more than max_divergences={self.max_divergences}; lower the "
                "learning rate or the noise, or clip the gradient."
            )

    def on_good(self, loss: float | None) -> None:
        if loss is not None:
            self.losses_.append(float(loss))

    # -- persistence ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "noise_factor": self.noise_factor_,
            "losses": list(self.losses_),
            "n_divergences": self.n_divergences_,
            "events": list(self.events),
            "counts": dict(self.counts),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reset()
        self.noise_factor_ = float(state["noise_factor"])
        self.losses_.extend(float(v) for v in state["losses"])
        self.n_divergences_ = int(state["n_divergences"])
        self.events.extend(dict(e) for e in state["events"])
        self.counts = dict(state["counts"])
