"""Image perturbations: what sharing a batch's chunks across threads buys, per corruption and size.

For each image perturbation and size, the same batch at severity 3 is timed
with the chunks on one thread (the calling one) and shared by the thread pool
of OpenCV's thread count (what ``apply`` does), interleaved in one process so
that machine noise hits both alike: median of ``--repeats`` pairs after a
warm-up pair, back to back with no garbage collection between them (warm
caches and thread pools, as ``image.py`` times; ``common.interleaved`` with
``collect=False``; until 2026-11-22 each call followed a collection, which
left the pool's threads asleep and hid most of their gain on small images).
``gain = one thread / pool`` (> 1: the pool is faster). Both give the same
bits (``tests/perturbations/test_image.py``).

With ``--balance`` the two columns are the pool with its chunks as cut (the
last may be short, and one worker may get more of them) and the pool with
balanced chunks (what ``apply`` does): gain = unbalanced / balanced.

Run:  .venv/bin/python benchmarks/modalities/image_threads.py [--sizes 32,64,128,224]
      [--batch 256] [--repeats 9] [--balance] [--json]
      (JSON: results/image_threads_gain.json, or image_threads_balance.json)
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


def gains(size: int, batch: int, repeats: int, balance: bool) -> dict[str, dict[str, float]]:
    X = np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32)
    pooled = im._each_chunk

    def one_thread(work, n, step, *, parallel=True, balance=False):  # type: ignore[no-untyped-def]
        return pooled(work, n, step, parallel=False, balance=balance)

    def unbalanced(work, n, step, *, parallel=True, balance=False):  # type: ignore[no-untyped-def]
        return pooled(work, n, step, parallel=parallel, balance=False)

    def timed(chunker, p, sev):  # type: ignore[no-untyped-def]
        def run() -> None:
            im._each_chunk = chunker
            try:
                p(X, sev, 0)
            finally:
                im._each_chunk = pooled

        return run

    base, base_key = (unbalanced, "unbalanced_s") if balance else (one_thread, "one_thread_s")
    out = {}
    for name in perturbations.list("image"):
        p = perturbations.get(name)
        sev = 2 if name == "saturation" else 3
        t = interleaved(
            {"base": timed(base, p, sev), "pool": timed(pooled, p, sev)},
            repeats=repeats,
            collect=False,  # back to back, as the image benchmark times (warm thread pools)
        )
        slow, pool = t["base"]["median"], t["pool"]["median"]
        out[name] = {base_key: slow, "pool_s": pool, "gain": slow / pool}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="32,64,128,224")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--balance",
        action="store_true",
        help="compare the pool with and without balanced chunks instead (gain = unbalanced / "
        "balanced; JSON: results/image_threads_balance.json)",
    )
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    res = {s: gains(s, args.batch, args.repeats, args.balance) for s in sizes}
    what = "pool unbalanced / balanced" if args.balance else "one thread / pool"
    print(f"threads: {im._workers()} (OpenCV); gain = {what}, median of pairs")
    print(f"{'perturbation':<22}" + "".join(f"{f'{s}×{s}':>10}" for s in sizes))
    for name in perturbations.list("image"):
        print(f"{name:<22}" + "".join(f"{res[s][name]['gain']:>9.2f}×" for s in sizes))
    if args.json:
        name = "image_threads_balance" if args.balance else "image_threads_gain"
        payload = {
            "benchmark": name,
            "config": {"sizes": sizes, "batch": args.batch, "repeats": args.repeats},
            "workers": im._workers(),
            "results": {str(s): r for s, r in res.items()},
            "meta": run_metadata(),
        }
        print(f"wrote {write_json(name, payload)}")


if __name__ == "__main__":
    main()
