"""Shared type aliases."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

SeedLike = int | np.random.SeedSequence | None
"""Where users enter randomness: an int, a SeedSequence, or None (fresh entropy, recorded)."""

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.floating[Any]]
