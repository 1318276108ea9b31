"""Image perturbations: what sharing a batch's chunks across threads buys, per corruption and size.

For each image perturbation and size, the same batch at severity 3 is timed
with the chunks on one thread (the calling one) and shared by the thread pool
of OpenCV's thread count (what ``apply`` does), interleaved in one process so
that machine noise hits both alike: median of ``--repeats`` pairs after a
warm-up pair (``common.interleaved``). ``gain = one thread / pool`` (> 1: the
pool is faster). Both give the same bits (``tests/perturbations/test_image.py``).
The torch perturbations (brightness, contrast, colour temperature, Gaussian and
shot noise) use torch's own threads in both columns.

Run:  .venv/bin/python benchmarks/modalities/image_threads.py [--sizes 32,64,128,224]
      [--batch 256] [--repeats 9] [--json]   (JSON: results/image_threads_gain.json)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import interleaved, run_metadata, write_json  # noqa: E402

import perturbkit.perturbations.image as im  # noqa: E402
from perturbkit import perturbations  # noqa: E402


def gains(size: int, batch: int, repeats: int) -> dict[str, dict[str, float]]:
    X = np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32)
    pooled = im._each_chunk

    def one_thread(work, n, step, *, parallel=True):  # type: ignore[no-untyped-def]
        return pooled(work, n, step, parallel=False)

    def timed(chunker, p, sev):  # type: ignore[no-untyped-def]
        def run() -> None:
            im._each_chunk = chunker
            try:
                p(X, sev, 0)
            finally:
                im._each_chunk = pooled

        return run

    out = {}
    for name in perturbations.list("image"):
        p = perturbations.get(name)
        sev = 2 if name == "saturation" else 3
        t = interleaved(
            {"one": timed(one_thread, p, sev), "pool": timed(pooled, p, sev)}, repeats=repeats
        )
        one, pool = t["one"]["median"], t["pool"]["median"]
        out[name] = {"one_thread_s": one, "pool_s": pool, "gain": one / pool}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="32,64,128,224")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    res = {s: gains(s, args.batch, args.repeats) for s in sizes}
    print(f"threads: {im._workers()} (OpenCV); gain = one thread / pool, median of pairs")
    print(f"{'perturbation':<22}" + "".join(f"{f'{s}×{s}':>10}" for s in sizes))
    for name in perturbations.list("image"):
        print(f"{name:<22}" + "".join(f"{res[s][name]['gain']:>9.2f}×" for s in sizes))
    if args.json:
        payload = {
            "benchmark": "image_threads_gain",
            "config": {"sizes": sizes, "batch": args.batch, "repeats": args.repeats},
            "workers": im._workers(),
            "results": {str(s): r for s, r in res.items()},
            "meta": run_metadata(),
        }
        print(f"wrote {write_json('image_threads_gain', payload)}")


if __name__ == "__main__":
    main()
