"""Cells of a sweep grid, and the pure computation of one (perturbation, repeat) group.

A cell is ``(perturbation_index, magnitude_index, repeat)``. Cells that share a
perturbation and a repeat share their random draws (common random numbers),
so they are computed together as a *group*: the data is streamed once, the
draws of each logical block are made once, and every magnitude of the group
is applied to them. A group is a pure function of the job and its
coordinates, so it can run anywhere, in any order, and give the same bits.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perturbkit.exceptions import ModelError
from perturbkit.metrics import make_stats
from perturbkit.perturbations.base import Perturbation

__all__ = ["Cell", "CellResult", "Group", "Job", "compute_group"]


@dataclass(frozen=True, order=True)
class Cell:
    """One point of the grid: a perturbation, one of its magnitudes, a repeat."""

    perturbation_index: int
    magnitude_index: int
    repeat: int


@dataclass(frozen=True)
class Group:
    """The cells of one (perturbation, repeat) that are still to compute."""

    perturbation_index: int
    repeat: int
    magnitude_indices: tuple[int, ...]


@dataclass
class CellResult:
    cell: Cell
    magnitude: float
    rows: list[tuple[str, str, float]]
    seconds: float


@dataclass
class Job:
    """Everything a group needs: read-only once built."""

    model: Any
    X: np.ndarray
    y_index: np.ndarray | None
    clean: np.ndarray
    task: str
    n_outputs: int
    classes: Any
    perturbations: list[Perturbation]
    magnitudes: list[np.ndarray]
    root: int
    block_rows: int
    batch_size: int
    n_bins: int = 15
    clean_stats: Any = None
    aux: dict[int, Any] = field(default_factory=dict)
    chunk_rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.chunk_rows = max(
            self.block_rows, (self.batch_size // self.block_rows) * self.block_rows
        )

    def chunks(self) -> Iterator[tuple[int, int]]:
        n = self.X.shape[0]
        for start in range(0, n, self.chunk_rows):
            yield start, min(start + self.chunk_rows, n)

    def n_chunks(self) -> int:
        return -(-self.X.shape[0] // self.chunk_rows)

    def predict(self, Xc: np.ndarray, start: int) -> np.ndarray:
        """Call the model on a chunk, in calls of at most ``batch_size`` rows."""
        n = Xc.shape[0]
        if n <= self.batch_size:
            return self.model(Xc, rows=(start, start + n))
        parts = [
            self.model(
                Xc[i : i + self.batch_size], rows=(start + i, start + min(i + self.batch_size, n))
            )
            for i in range(0, n, self.batch_size)
        ]
        return np.concatenate(parts, axis=0)

    def new_stats(self) -> Any:
        return make_stats(
            self.task, self.n_outputs, has_labels=self.y_index is not None, n_bins=self.n_bins
        )


def _join(draws: list[Any]) -> tuple[Any] | None:
    """Concatenate per-row draws of consecutive blocks (arrays or tuples of arrays)."""
    first = draws[0]
    if first is None:
        return (None,) if all(d is None for d in draws) else None
    if isinstance(first, np.ndarray):
        return (np.concatenate(draws, axis=0),)
    if isinstance(first, tuple) and all(isinstance(a, np.ndarray) for a in first):
        return (tuple(np.concatenate(parts, axis=0) for parts in zip(*draws)),)
    return None


def _draw_and_apply(
    p: Perturbation,
    Xc: np.ndarray,
    start: int,
    job: Job,
    repeat: int,
    magnitudes: list[float],
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(k, X_perturbed)`` for each magnitude, drawing once per logical block."""
    n = Xc.shape[0]
    br = job.block_rows
    offsets = list(range(0, n, br))
    first_block = start // br
    draws = [
        p.sample_block(Xc[o : o + br], root=job.root, repeat=repeat, block=first_block + i)
        for i, o in enumerate(offsets)
    ]
    joined = _join(draws) if (len(offsets) > 1 and p.rowwise) or not p.stochastic else None
    if joined is not None:
        for k, m in enumerate(magnitudes):
            yield k, p.apply(Xc, joined[0], m)
        return
    for k, m in enumerate(magnitudes):
        if len(offsets) == 1:
            yield k, p.apply(Xc, draws[0], m)
            continue
        out = np.empty_like(Xc)
        for o, d in zip(offsets, draws):
            out[o : o + br] = p.apply(Xc[o : o + br], d, m)
        yield k, out


def compute_group(job: Job, group: Group, *, on_chunk: Any = None) -> list[CellResult]:
    """Compute the cells of one group: stream the data once, every magnitude per chunk."""
    p = job.perturbations[group.perturbation_index]
    mags = [float(job.magnitudes[group.perturbation_index][i]) for i in group.magnitude_indices]
    stats = [job.new_stats() for _ in mags]
    seconds = [0.0] * len(mags)
    for start, stop in job.chunks():
        Xc = job.X[start:stop]
        P0 = job.clean[start:stop]
        yc = None if job.y_index is None else job.y_index[start:stop]
        starts = np.arange(0, stop - start, job.block_rows)
        aux = job.aux.get(start)
        t0 = time.perf_counter()
        for k, Xp in _draw_and_apply(p, Xc, start, job, group.repeat, mags):
            try:
                P = job.predict(Xp, start)
            except ModelError as exc:
                raise ModelError(
                    f"{exc} (perturbed by {p.label} at magnitude {mags[k]:g}, "
                    f"repeat {group.repeat})"
                ) from exc
            if aux is None:
                stats[k].update(P0, P, yc, starts)
            else:
                stats[k].update(P0, P, yc, starts, aux)
            t1 = time.perf_counter()
            seconds[k] += t1 - t0
            t0 = t1
            if on_chunk is not None:
                on_chunk()
    out = []
    for k, mi in enumerate(group.magnitude_indices):
        rows = [(r.metric, r.group, r.value) for r in stats[k].result(job.clean_stats, job.classes)]
        out.append(
            CellResult(Cell(group.perturbation_index, mi, group.repeat), mags[k], rows, seconds[k])
        )
    return out
