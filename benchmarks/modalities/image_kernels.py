"""Image kernels: the small-image choices of ``perturbations/image.py`` against what they replaced.

Each pair runs in one process, alternating call by call, back to back with
no garbage collection between calls (``common.interleaved(collect=False)``),
so that machine noise hits both sides alike. Median of ``--repeats`` pairs;
``gain = old / new`` (> 1: the new way is faster). Both sides give the same
bits, except contrast, whose version 2 changed its rounding (see
``docs/image.md``).

- ``range_check``: the pixel-value check of a batch, one unsigned max over the
  bit patterns (``_in_unit_range``) against min and max.
- ``interleave``: NCHW → NHWC copy of a batch, one strided copy per channel
  (``_interleave``) against numpy's copy of the transposed view.
- ``contrast``: ``Contrast`` version 2 (``c·x + (1 − c)·μ``, no clip) against
  version 1 (``(x − μ)·c + μ``, clipped), the whole call.
- ``translation_loop``, ``elastic_loop``: the warps' and elastic's loops for
  chunks of small images (positional OpenCV calls; elastic's maps by two
  ``scaleAdd`` calls per chunk) against the generic per-image loop
  (``_PerImageCv._chunk``), ``apply`` with the draws made once.

Run:  .venv/bin/python benchmarks/modalities/image_kernels.py [--size 32] [--batch 256]
      [--repeats 101] [--json]   (JSON: results/image_kernels.json)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import interleaved, run_metadata, write_json  # noqa: E402

import perturbkit.perturbations.image as im  # noqa: E402


def _contrast_v1(self: Any, x: np.ndarray, params: Any, severity: float, dst: np.ndarray) -> None:
    c = np.float32(im._interp(severity, 1.0, self.TABLE))
    np.subtract(x, params, out=dst)
    dst *= c
    dst += params


def _swapped(cls: type, attrs: dict[str, Any], fn: Callable[[], Any]) -> Callable[[], None]:
    """``fn`` run with the class attributes ``attrs`` set, restored after."""

    def run() -> None:
        saved = {k: cls.__dict__[k] for k in attrs if k in cls.__dict__}
        for k, v in attrs.items():
            setattr(cls, k, v)
        try:
            fn()
        finally:
            for k in attrs:
                if k in saved:
                    setattr(cls, k, saved[k])
                else:
                    delattr(cls, k)

    return run


def pairs(size: int, batch: int) -> dict[str, dict[str, Callable[[], Any]]]:
    X = np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32)
    contrast = im.Contrast()
    translation, elastic = im.Translation(), im.ElasticTransform()
    t_params = translation.sample(X, np.random.default_rng(1))
    e_params = elastic.sample(X, np.random.default_rng(1))
    generic = im._PerImageCv._chunk
    return {
        "range_check": {
            "new": lambda: im._in_unit_range(X),
            "old": lambda: float(np.min(X)) >= 0.0 and float(np.max(X)) <= 1.0,
        },
        "interleave": {
            "new": lambda: im._interleave(X),
            "old": lambda: np.ascontiguousarray(X.transpose(0, 2, 3, 1)),
        },
        "contrast": {
            "new": lambda: contrast(X, 3.0, 0),
            "old": _swapped(
                im.Contrast,
                {"_write": _contrast_v1, "in_range": False},
                lambda: contrast(X, 3.0, 0),
            ),
        },
        "translation_loop": {
            "new": lambda: translation.apply(X, t_params, 3.0),
            "old": _swapped(
                im._Affine, {"_chunk": generic}, lambda: translation.apply(X, t_params, 3.0)
            ),
        },
        "elastic_loop": {
            "new": lambda: elastic.apply(X, e_params, 3.0),
            "old": _swapped(
                im.ElasticTransform, {"_chunk": generic}, lambda: elastic.apply(X, e_params, 3.0)
            ),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=101)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = {}
    print(f"{args.batch} RGB images of {args.size}×{args.size}; ms per batch, median of pairs")
    for name, fns in pairs(args.size, args.batch).items():
        t = interleaved(fns, repeats=args.repeats, collect=False)
        new, old = t["new"]["median"], t["old"]["median"]
        results[name] = {"new_s": new, "old_s": old, "gain": old / new}
        print(f"{name:<18} new {new * 1e3:7.3f}  old {old * 1e3:7.3f}  gain {old / new:5.2f}×")
    if args.json:
        payload = {
            "benchmark": "image_kernels",
            "config": {"size": args.size, "batch": args.batch, "repeats": args.repeats},
            "workers": im._workers(),
            "results": results,
            "meta": run_metadata(),
        }
        print(f"wrote {write_json('image_kernels', payload)}")


if __name__ == "__main__":
    main()
