"""Seeding: one root per run, streams keyed by identity, never by execution order.

A stream for one logical block of rows is
``SeedSequence(root, spawn_key=(pert_key, repeat, block))``. The magnitude is
not part of the key: magnitudes share their random numbers (common random
numbers), the standard draw is made once and the magnitude scales or
thresholds it. ``pert_key`` is a blake2b digest of ``name@version`` and the
canonical parameters, so it is stable across processes and machines.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np

from perturbkit._types import SeedLike
from perturbkit.exceptions import ParameterError

BLOCK_ROWS = 1024
"""Rows per logical block: the unit that owns one random stream."""


def root_entropy(seed: SeedLike) -> int:
    """Return the root entropy of a run: the given seed, or fresh entropy to record."""
    if seed is None:
        return int(np.random.SeedSequence().entropy)  # fresh OS entropy, not global state
    if isinstance(seed, np.random.SeedSequence):
        if seed.spawn_key:
            raise ParameterError(
                "The 'seed' parameter must be an int or a root SeedSequence (no spawn_key). "
                f"Got spawn_key={seed.spawn_key} instead."
            )
        return int(seed.entropy)  # type: ignore[arg-type]
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(
            f"The 'seed' parameter must be a non-negative int or None. Got {seed!r} instead."
        )
    return int(seed)


def canonical(obj: Any) -> Any:
    """A JSON-ready, order-stable form of a parameter value."""
    if isinstance(obj, dict):
        return {str(k): canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return canonical(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        if math.isnan(f) or math.isinf(f):
            return repr(f)
        return f
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if hasattr(obj, "to_dict"):
        return canonical(obj.to_dict())
    return repr(obj)


def canonical_json(obj: Any) -> str:
    """Canonical JSON text (sorted keys, no spaces) of a parameter structure."""
    return json.dumps(canonical(obj), sort_keys=True, separators=(",", ":"))


def stable_key(text: str) -> int:
    """A 64-bit integer digest of ``text`` (blake2b; never Python's salted ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def stream(root: int, *key: int) -> np.random.Generator:
    """The generator for one identity ``key`` under ``root``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(root, spawn_key=key)))


def block_rng(root: int, pert_key: int, repeat: int, block: int) -> np.random.Generator:
    """The stream of one logical block of rows of one perturbation repeat."""
    return stream(root, pert_key, repeat, block)


def as_generator(rng: np.random.Generator | SeedLike) -> np.random.Generator:
    """Accept a Generator (used as is) or a seed (a fresh Generator from it)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(root_entropy(rng) if rng is not None else None)


def spawn(rng: np.random.Generator, n: int) -> list[np.random.Generator]:
    """``n`` independent child generators of ``rng``, keyed by position."""
    seeds = rng.integers(0, 2**63, size=2, dtype=np.int64)
    base = int(seeds[0]) ^ (int(seeds[1]) << 1)
    return [stream(base, i) for i in range(n)]
