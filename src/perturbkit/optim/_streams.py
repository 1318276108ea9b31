"""Explicit torch generators for the optimizers, and reusable buffers for their draws.

One root seed per optimizer. The generator of the parameters on the CPU is
seeded with ``SeedSequence(root).generate_state(1, np.uint64)``; parameters on
another device draw on a generator *of that device*, seeded with
``SeedSequence(root, spawn_key=(blake2b("cuda:0"),))`` (so two devices never
share a stream). The global torch RNG is never read or seeded.

Draws go into one flat buffer per (parameter group, device, dtype), reused
across steps and filled in place, then viewed as each parameter's shape: one
kernel call per bucket, no allocation per step, no Python loop per element.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from perturbkit._rng import stable_key
from perturbkit.exceptions import ParameterError

__all__ = ["TorchStreams", "Workspace", "check_seed", "device_key"]


def device_key(device: torch.device) -> str:
    """``"cpu"``, ``"cuda:0"``, …: the name a device's stream is stored under."""
    if device.type == "cpu":
        return "cpu"
    return f"{device.type}:{0 if device.index is None else device.index}"


def check_seed(seed: Any, owner: str) -> Any:
    """An int >= 0, a root SeedSequence, a torch.Generator or None; else one clear line."""
    ok = (
        seed is None
        or isinstance(seed, torch.Generator)
        or (isinstance(seed, np.random.SeedSequence) and not seed.spawn_key)
        or (
            isinstance(seed, (int, np.integer))
            and not isinstance(seed, (bool, np.bool_))
            and int(seed) >= 0
        )
    )
    if not ok:
        raise ParameterError(
            f"The 'seed' parameter of {owner} must be an int >= 0, a root numpy SeedSequence, "
            f"a torch.Generator or None. Got {seed!r} instead."
        )
    return seed


def _root(seed: Any) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy)  # fresh OS entropy, recorded in seed_
    if isinstance(seed, np.random.SeedSequence):
        return int(seed.entropy)  # type: ignore[arg-type]
    return int(seed)


class TorchStreams:
    """The torch generators of one optimizer: one per device, lazily created.

    Args:
        seed: an int or SeedSequence (the root; ``None`` draws fresh entropy and
            records it in :attr:`root`), or a ``torch.Generator`` used as is for
            every draw (then every parameter must live on its device).
        owner: the class name used in error messages.
    """

    def __init__(self, seed: Any, *, owner: str) -> None:
        check_seed(seed, owner)
        self.owner = owner
        self.fixed: torch.Generator | None = seed if isinstance(seed, torch.Generator) else None
        self.root: int | None = None if self.fixed is not None else _root(seed)
        self._gens: dict[str, torch.Generator] = {}

    def check_devices(self, tensors: Sequence[torch.Tensor]) -> None:
        """A given generator must live where the parameters live: one line if not."""
        if self.fixed is None:
            return
        want = device_key(self.fixed.device)
        for i, t in enumerate(tensors):
            if device_key(t.device) != want:
                raise ParameterError(
                    f"The 'seed' generator of {self.owner} is on {want}, but parameter {i} is "
                    f"on {device_key(t.device)}; pass a torch.Generator on "
                    f"{device_key(t.device)} or an int seed (one stream per device)."
                )

    def seed_for(self, device: torch.device) -> int:
        assert self.root is not None
        if device.type == "cpu":
            seq = np.random.SeedSequence(self.root)
        else:
            seq = np.random.SeedSequence(self.root, spawn_key=(stable_key(device_key(device)),))
        return int(seq.generate_state(1, np.uint64)[0])

    def get(self, device: torch.device) -> torch.Generator:
        """The generator that draws for tensors on ``device``."""
        if self.fixed is not None:
            return self.fixed
        key = device_key(device)
        g = self._gens.get(key)
        if g is None:
            g = torch.Generator(device=device)
            g.manual_seed(self.seed_for(device))
            self._gens[key] = g
        return g

    def state_dict(self) -> dict[str, Any]:
        if self.fixed is not None:
            return {"fixed": device_key(self.fixed.device), "state": self.fixed.get_state()}
        return {"root": self.root, "states": {k: g.get_state() for k, g in self._gens.items()}}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        if "fixed" in sd:
            if self.fixed is None or device_key(self.fixed.device) != sd["fixed"]:
                raise ParameterError(
                    f"This {self.owner} state was saved with a torch.Generator on {sd['fixed']}; "
                    "load it into an optimizer given a torch.Generator on that device."
                )
            self.fixed.set_state(sd["state"].clone())
            return
        if self.fixed is not None:
            raise ParameterError(
                f"This {self.owner} state was saved with an int seed; load it into an "
                "optimizer given an int seed (not a torch.Generator)."
            )
        self.root = int(sd["root"])
        self._gens = {}
        for key, state in sd["states"].items():
            g = torch.Generator(device=torch.device(key))
            g.set_state(state.clone())
            self._gens[key] = g


Fill = Callable[[torch.Tensor, torch.Generator], Any]


class Workspace:
    """Flat buffers, one per (slot, device, dtype), filled in place and viewed per tensor."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], tuple[tuple[Any, ...], torch.Tensor, list[torch.Tensor]]] = {}

    def clear(self) -> None:
        self._cache.clear()

    def draw(
        self,
        like: Sequence[torch.Tensor],
        slot: Any,
        fill: Fill,
        streams: TorchStreams,
    ) -> list[torch.Tensor]:
        """Views shaped like ``like`` (same device and dtype), filled by ``fill(buf, gen)``.

        Tensors are bucketed by (device, dtype) in order of first appearance;
        each bucket is one flat buffer and one ``fill`` call. The returned
        views are overwritten by the next draw of the same slot.
        """
        if not like:
            return []
        buckets: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for i, t in enumerate(like):
            buckets.setdefault((t.device, t.dtype), []).append(i)
        out: list[torch.Tensor] = [like[0]] * len(like)
        for (device, dtype), idx in buckets.items():
            shapes = tuple(like[i].shape for i in idx)
            key = (slot, device_key(device), dtype)
            hit = self._cache.get(key)
            if hit is None or hit[0] != shapes:
                sizes = [like[i].numel() for i in idx]
                buf = torch.empty(sum(sizes), device=device, dtype=dtype)
                views = [v.view(s) for v, s in zip(buf.split(sizes), shapes)]
                hit = (shapes, buf, views)
                self._cache[key] = hit
            _, buf, views = hit
            fill(buf, streams.get(device))
            for i, v in zip(idx, views):
                out[i] = v
        return out
