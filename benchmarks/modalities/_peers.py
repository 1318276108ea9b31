"""Running a peer library in its own interpreter, one timed run per request.

Standard library only: the peer's interpreter (its own venv, never perturbkit's)
imports this module too. A benchmark script serves itself with ``--serve``: the
peer side sets up, prints one JSON line (versions, fidelity), then answers each
op name read from stdin with the seconds that run took (:func:`serve`); the
main side (:class:`Peer`) asks for one run at a time, so :func:`interleave` can
alternate our runs and theirs and machine noise hits both alike.
"""

from __future__ import annotations

import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def summary(times: list[float]) -> dict[str, float]:
    """Median, IQR and count of a list of run times."""
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"median": statistics.median(times), "iqr": q[2] - q[0], "n": len(times)}


def serve(report: dict[str, Any], run: Callable[[str], Any]) -> None:
    """Peer side: print ``report``, then time ``run(name)`` for each name on stdin."""
    print(json.dumps(report), flush=True)
    for line in sys.stdin:
        name = line.strip()
        if name == "quit":
            break
        t0 = time.perf_counter()
        run(name)
        print(time.perf_counter() - t0, flush=True)


class Peer:
    """Main side: the peer interpreter running ``script --serve spec``, one run per request."""

    def __init__(self, script: str, python: Path, spec: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [str(python), script, "--serve", str(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.report = json.loads(self.proc.stdout.readline())  # type: ignore[union-attr]

    def time(self, name: str) -> float:
        self.proc.stdin.write(name + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return float(self.proc.stdout.readline())  # type: ignore[union-attr]

    def close(self) -> None:
        self.proc.stdin.write("quit\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        self.proc.wait(timeout=60)


def interleave(ours: Any, peer: Any, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Alternate one run of ours and one of the peer's, ``repeats`` times after a warm-up."""
    ours()
    peer()
    a, b = [], []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        ours()
        a.append(time.perf_counter() - t0)
        b.append(peer())
    return summary(a), summary(b)


def ensure_peer_venv(path: Path, pins: list[str]) -> Path:
    """The peer venv's python, making the venv with ``pins`` the first time."""
    python = path / "bin" / "python"
    if not python.exists():
        print(f"making the peer venv {path} ({', '.join(pins)}) …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *pins], check=True)
    return python
