"""What a 32×32 batch costs, part by part: the figures behind "Where 32×32 trails kornia".

Each line times one piece of work on 256 RGB images of 32×32 (float32
NCHW), back to back in one process after a warm-up (``common.time_steady``,
``--repeats`` runs, median), so the parts of contrast and of the small
warps can be set against kornia's whole call (``image.py``):

- contrast: the range check (min and max; one unsigned max over the bit
  patterns), the per-channel means (OpenCV row sums), ``c·x``, the add of one
  value per plane (numpy's broadcast; BLAS's rank-1 ``sger``; ``np.repeat``
  then a plain add; ``cv2.repeat``, ``cv2.resize`` then ``scaleAdd`` or
  ``addWeighted``; ``cv2.gemm``), a plain add for scale, and torch's
  ``aminmax``, multiply and broadcast add (two threads) when torch is here;
- small warps: one ``warpAffine`` per image on one Python thread and shared
  by two, and one ``remap`` over the stacked batch on ``warpAffine``'s own
  fixed-point maps with mirrored rows between the images (the same bits:
  checked here);
- the import of torch, in a fresh interpreter.

Run:  .venv/bin/python benchmarks/modalities/image_floor.py [--repeats 200] [--json]
      (JSON: results/image_floor.json)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import run_metadata, time_steady, write_json  # noqa: E402

import perturbkit.perturbations.image as im  # noqa: E402


def warp_stack(cv2: Any, imgs: np.ndarray, outs: np.ndarray, M: np.ndarray) -> None:
    """``warpAffine`` (bilinear, inverse map, mirrored edges) of each small image by one
    ``remap`` of the stacked batch, on warpAffine's own fixed-point coordinates."""
    k, h, w = imgs.shape[:3]
    ys, xs = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    # warpAffine: X = (round((M01·y + M02)·1024) + 16 + round(M00·x·1024)) >> 5, in 1/32 px
    x0 = np.rint((M[:, 0, 1, None] * ys + M[:, 0, 2, None]) * 1024.0) + 16.0
    y0 = np.rint((M[:, 1, 1, None] * ys + M[:, 1, 2, None]) * 1024.0) + 16.0
    dx = np.rint(M[:, 0, 0, None] * xs * 1024.0)
    dy = np.rint(M[:, 1, 0, None] * xs * 1024.0)
    top = np.floor((y0.min(axis=1) + dy.min(axis=1)) / 1024.0).min()
    bottom = np.floor((y0.max(axis=1) + dy.max(axis=1)) / 1024.0).max() + 1.0
    pad = int(max(0.0, -top, bottom - (h - 1)))
    hp = h + 2 * pad
    stack = imgs[:, im._fold(np.arange(-pad, h + pad), h, "reflect")]
    y0 += (np.arange(k)[:, None] * hp + pad) * 1024.0
    mx = np.add((x0 / 32.0).astype(np.float32)[:, :, None], (dx / 32.0).astype(np.float32)[:, None])
    my = np.add((y0 / 32.0).astype(np.float32)[:, :, None], (dy / 32.0).astype(np.float32)[:, None])
    for m in (mx, my):
        np.floor(m, out=m)
        m *= np.float32(1.0 / 32.0)
    cv2.remap(
        stack.reshape(k * hp, w, -1),
        mx.reshape(k * h, w),
        my.reshape(k * h, w),
        cv2.INTER_LINEAR,
        dst=outs.reshape(k * h, w, -1),
        borderMode=cv2.BORDER_REFLECT,
    )


def parts(batch: int) -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    import cv2
    from scipy.linalg import blas

    X = np.random.default_rng(0).random((batch, 3, 32, 32), dtype=np.float32)
    planes = X.reshape(-1, 32 * 32)
    out = np.empty_like(planes)
    b = np.random.default_rng(1).random((planes.shape[0], 1), dtype=np.float32)
    ones = np.ones(planes.shape[1], dtype=np.float32)
    c = np.float32(0.2)

    def sger() -> None:
        np.multiply(planes, c, out=out)
        blas.sger(1.0, ones, b.ravel(), a=out.T, overwrite_a=1)

    fns: dict[str, Callable[[], Any]] = {
        "contrast: check, min and max": lambda: (float(np.min(X)), float(np.max(X))),
        "contrast: check, bit pattern": lambda: im._in_unit_range(X),
        "contrast: means (cv2.reduce)": lambda: cv2.reduce(
            planes, 1, cv2.REDUCE_SUM, dtype=cv2.CV_64F
        ),
        "contrast: c·x": lambda: np.multiply(planes, c, out=out),
        "contrast: add per plane, numpy": lambda: np.add(out, b, out=out),
        "contrast: plain add, for scale": lambda: np.add(out, planes, out=out),
        "contrast: c·x + per plane, sger": sger,
        "contrast: c·x + per plane, np.repeat": lambda: np.add(
            np.multiply(planes, c, out=out), np.repeat(b, planes.shape[1], axis=1), out=out
        ),
        "contrast: c·x + per plane, cv2.repeat + scaleAdd": lambda: cv2.scaleAdd(
            planes, float(c), cv2.repeat(b, 1, planes.shape[1]), dst=out
        ),
        "contrast: c·x + per plane, cv2.resize + addWeighted": lambda: cv2.addWeighted(
            planes,
            float(c),
            cv2.resize(b, planes.shape[::-1], interpolation=cv2.INTER_NEAREST),
            1.0,
            0.0,
            dst=out,
        ),
        "contrast: c·x + per plane, cv2.gemm": lambda: cv2.gemm(
            b, ones[None], 1.0, planes, float(c), dst=out
        ),
    }
    try:
        import torch

        xt, ot = torch.from_numpy(planes), torch.from_numpy(out)
        bt = torch.from_numpy(b)
        fns["contrast: torch aminmax"] = lambda: torch.aminmax(xt)
        fns["contrast: torch c·x"] = lambda: torch.mul(xt, float(c), out=ot)
        fns["contrast: torch add per plane"] = lambda: ot.add_(bt)
    except ImportError:
        pass

    # small warps: translation's matrices at severity 3
    p = im.Translation()
    M = p._plan(p.sample(X, np.random.default_rng(1)), 3.0, 32, 32)[0]
    hwc = im._interleave(X)
    dst, stacked = np.empty_like(hwc), np.empty_like(hwc)
    flags, border = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, cv2.BORDER_REFLECT

    def loop(lo: int = 0, hi: int = batch) -> None:
        for i in range(lo, hi):
            cv2.warpAffine(hwc[i], M[i], (32, 32), dst[i], flags, border)

    pool = ThreadPoolExecutor(2)

    def two_threads() -> None:
        half = batch // 2
        for f in [pool.submit(loop, 0, half), pool.submit(loop, half, batch)]:
            f.result()

    fns["warps: warpAffine per image, one thread"] = loop
    fns["warps: warpAffine per image, two Python threads"] = two_threads
    fns["warps: one remap of the stacked batch"] = lambda: warp_stack(cv2, hwc, stacked, M)
    loop()
    warp_stack(cv2, hwc, stacked, M)
    checks = {"stacked remap gives warpAffine's bits": bool(np.array_equal(dst, stacked))}
    return fns, checks


def torch_import_s() -> float | None:
    code = "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(done.stdout) if done.returncode == 0 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    fns, checks = parts(args.batch)
    results = {}
    print(f"{args.batch} RGB images of 32×32, float32 NCHW; ms, median of {args.repeats} runs")
    for name, fn in fns.items():
        t = time_steady(fn, repeats=args.repeats)
        results[name] = t
        print(f"{name:<52} {t['median'] * 1e3:7.3f}")
    t0 = torch_import_s()
    if t0 is not None:
        print(f"{'import torch (fresh interpreter)':<52} {t0 * 1e3:7.0f}")
    for name, ok in checks.items():
        print(f"{name}: {ok}")
    if args.json:
        payload = {
            "benchmark": "image_floor",
            "config": {"batch": args.batch, "repeats": args.repeats},
            "results": results,
            "import_torch_s": t0,
            "checks": checks,
            "meta": run_metadata(),
        }
        print(f"wrote {write_json('image_floor', payload)}")


if __name__ == "__main__":
    main()
