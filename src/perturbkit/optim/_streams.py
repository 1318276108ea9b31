"""Explicit torch generators for the optimizers, and reusable buffers for their draws.

One root seed per optimizer; the global torch RNG is never read or seeded.

- **CPU.** Draws go into one flat buffer per (parameter group, dtype), cut
  into fixed blocks of ``BLOCK`` (2**20) elements. Block 0 draws on the CPU
  generator seeded with ``SeedSequence(root).generate_state(1, np.uint64)``,
  block ``k`` on one seeded with ``SeedSequence(root, spawn_key=(k,))``. The
  blocks are filled in parallel (``torch.get_num_threads()`` Python threads;
  the kernels release the GIL), and since a block's stream depends only on
  its position, the bits do not depend on the number of threads. A model
  under 2**20 parameters per group uses exactly one CPU generator.
- **Other devices.** Parameters on a GPU draw on a generator *of that
  device*, seeded with ``SeedSequence(root, spawn_key=(blake2b("cuda:0"),))``
  (two devices never share a stream), one kernel call per buffer.
- **A given ``torch.Generator``** is used as is for every draw, serially.

The buffers are reused across steps and filled in place, then viewed as each
parameter's shape: no allocation per step, no Python loop per element.
Additive noise (δ = α·ξ, independent of the gradient) is drawn and added in
one pass (:meth:`Workspace.add`): on the CPU the thread that fills a block
adds it at once to the pieces of the gradients it covers, while the block is
still in cache, instead of a separate ``_foreach_add_`` over the whole buffer
after all the draws; the bits are the same (elementwise ``add_`` does not
depend on where a piece starts).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np
import torch

from perturbkit._rng import stable_key
from perturbkit.exceptions import ParameterError

__all__ = ["BLOCK", "TorchStreams", "Workspace", "check_seed", "device_key"]

BLOCK = 1 << 20
"""Elements per CPU block: the unit that owns one CPU stream."""


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


def _key(device: torch.device, block: int) -> str:
    dev = device_key(device)
    return dev if block == 0 else f"{dev}#{block}"


class TorchStreams:
    """The torch generators of one optimizer: per device (and per CPU block), lazily created.

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

    def seed_for(self, device: torch.device, block: int = 0) -> int:
        """The 64-bit seed of the stream of ``device`` (and CPU ``block``)."""
        assert self.root is not None
        if device.type == "cpu":
            key: tuple[int, ...] = () if block == 0 else (block,)
        else:
            key = (stable_key(device_key(device)),) + (() if block == 0 else (block,))
        seq = np.random.SeedSequence(self.root, spawn_key=key)
        return int(seq.generate_state(1, np.uint64)[0])

    def get(self, device: torch.device, block: int = 0) -> torch.Generator:
        """The generator that draws for tensors on ``device`` (CPU: for ``block``)."""
        if self.fixed is not None:
            return self.fixed
        key = _key(device, block)
        g = self._gens.get(key)
        if g is None:
            g = torch.Generator(device=device)
            g.manual_seed(self.seed_for(device, block))
            self._gens[key] = g
        return g

    @property
    def blocked(self) -> bool:
        """Whether CPU draws are cut into independently seeded blocks."""
        return self.fixed is None

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
            g = torch.Generator(device=torch.device(key.partition("#")[0]))
            g.set_state(state.clone())
            self._gens[key] = g


Fill = Callable[[torch.Tensor, torch.Generator], Any]

Piece = tuple[int, int, int, int]
"""``(i, lo, hi, at)``: elements ``lo:hi`` of flattened tensor ``i`` are block elements ``at:``."""


def _starts(sizes: Sequence[int]) -> list[int]:
    """The offset of each tensor in the flat buffer."""
    out, at = [], 0
    for n in sizes:
        out.append(at)
        at += n
    return out


class _Buffer:
    """One flat buffer, its per-tensor views, its CPU blocks and which tensor pieces each covers."""

    def __init__(self, like: Sequence[torch.Tensor], device: torch.device, dtype: torch.dtype):
        self.shapes = tuple(t.shape for t in like)
        sizes = [t.numel() for t in like]
        self.buf = torch.empty(sum(sizes), device=device, dtype=dtype)
        self.views = [v.view(s) for v, s in zip(self.buf.split(sizes), self.shapes)]
        self.blocks = list(self.buf.split(BLOCK)) if device.type == "cpu" else [self.buf]
        self.pieces: list[list[Piece]] = [[] for _ in self.blocks]
        if device.type != "cpu":  # one block: only the CPU's parallel path reads pieces
            self.pieces = [[(i, 0, n, at) for i, (n, at) in enumerate(zip(sizes, _starts(sizes)))]]
            return
        start = 0
        for i, n in enumerate(sizes):
            lo = start
            while lo < start + n:
                k = lo // BLOCK
                hi = min(start + n, (k + 1) * BLOCK)
                self.pieces[k].append((i, lo - start, hi - start, lo - k * BLOCK))
                lo = hi
            start += n


class Workspace:
    """Flat buffers, one per (slot, device, dtype), filled in place and viewed per tensor."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], _Buffer] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._pool_key: tuple[int, int] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {}  # buffers and threads are rebuilt on first use

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def clear(self) -> None:
        self._cache.clear()

    def _map(self, jobs: list[Callable[[], Any]]) -> None:
        n_threads = min(torch.get_num_threads(), len(jobs))
        if n_threads <= 1:
            for job in jobs:
                job()
            return
        key = (os.getpid(), n_threads)  # a forked child rebuilds its pool
        if self._pool is None or self._pool_key != key:
            self._pool = ThreadPoolExecutor(n_threads, thread_name_prefix="perturbkit-optim")
            self._pool_key = key
        for f in [self._pool.submit(job) for job in jobs]:
            f.result()

    def _buckets(
        self, like: Sequence[torch.Tensor], slot: Any
    ) -> list[tuple[torch.device, list[int], _Buffer]]:
        """Tensors bucketed by (device, dtype) in order of first appearance, with their buffer."""
        buckets: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for i, t in enumerate(like):
            buckets.setdefault((t.device, t.dtype), []).append(i)
        out = []
        for (device, dtype), idx in buckets.items():
            key = (slot, device_key(device), dtype)
            entry = self._cache.get(key)
            if entry is None or entry.shapes != tuple(like[i].shape for i in idx):
                entry = self._cache[key] = _Buffer([like[i] for i in idx], device, dtype)
            out.append((device, idx, entry))
        return out

    @staticmethod
    def _parallel(device: torch.device, entry: _Buffer, streams: TorchStreams) -> bool:
        return device.type == "cpu" and streams.blocked and len(entry.blocks) > 1

    def _fill(
        self, device: torch.device, entry: _Buffer, fill: Fill, streams: TorchStreams
    ) -> None:
        if self._parallel(device, entry, streams):
            gens = [streams.get(device, k) for k in range(len(entry.blocks))]
            self._map([partial(fill, b, g) for b, g in zip(entry.blocks, gens)])
        else:
            fill(entry.buf, streams.get(device))

    def draw(
        self,
        like: Sequence[torch.Tensor],
        slot: Any,
        fill: Fill,
        streams: TorchStreams,
    ) -> list[torch.Tensor]:
        """Views shaped like ``like`` (same device and dtype), filled by ``fill(buf, gen)``.

        Tensors are bucketed by (device, dtype) in order of first appearance;
        each bucket is one flat buffer, and ``fill`` is called once per buffer
        (per ``BLOCK`` of it on the CPU, in parallel). The views are
        overwritten by the next draw of the same slot.
        """
        out: list[torch.Tensor] = list(like)
        for device, idx, entry in self._buckets(like, slot):
            self._fill(device, entry, fill, streams)
            for i, v in zip(idx, entry.views):
                out[i] = v
        return out

    def add(
        self,
        tensors: Sequence[torch.Tensor],
        slot: Any,
        fill: Fill,
        alpha: float,
        streams: TorchStreams,
    ) -> None:
        """``tensors[i] += alpha * draw(tensors, slot, fill, streams)[i]``, fused per CPU block.

        The same bits as the draw followed by ``torch._foreach_add_``, in one
        pass: on the CPU each thread fills a block and adds it to the pieces
        of the tensors it covers while it is still in cache, so no separate
        pass over the whole buffer follows the draw.
        """
        for device, idx, entry in self._buckets(tensors, slot):
            sub = [tensors[i] for i in idx]
            if self._parallel(device, entry, streams) and all(t.is_contiguous() for t in sub):
                flat = [t.view(-1) for t in sub]
                gens = [streams.get(device, k) for k in range(len(entry.blocks))]
                self._map(
                    [
                        partial(_fill_add, b, g, fill, flat, pieces, alpha)
                        for b, g, pieces in zip(entry.blocks, gens, entry.pieces)
                    ]
                )
            else:
                self._fill(device, entry, fill, streams)
                torch._foreach_add_(sub, entry.views, alpha=alpha)


def _fill_add(
    block: torch.Tensor,
    gen: torch.Generator,
    fill: Fill,
    flat: list[torch.Tensor],
    pieces: list[Piece],
    alpha: float,
) -> None:
    fill(block, gen)
    for i, lo, hi, at in pieces:
        flat[i][lo:hi].add_(block[at : at + hi - lo], alpha=alpha)
