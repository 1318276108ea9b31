"""Image perturbations against imagecorruptions, albumentations and kornia: speed and fidelity.

Inputs: real photos (scikit-learn's two sample images), 256 seeded random
224×224 crops, and the same crops area-downscaled to 32×32; float32 NCHW in
[0, 1] for perturbkit and kornia, the same pixels as uint8 HWC for the peers
that work one image at a time (their native input).

Speed: milliseconds per batch at severity 3 (median and IQR of the timed runs
after one warm-up; perturbkit's time includes its draws). Every library
is timed the same way, by ``timeit``'s convention (``common.time_steady``):
garbage collected once before the runs, no collection while they run. (Until
2026-11-22 perturbkit and kornia were timed with a collection before every
run, the peers without: a cold start only perturbkit's and kornia's calls
paid, up to half a millisecond each.) perturbkit and kornia run ``--repeats``
times or as often as fills ``--min-time`` seconds (at most 200 runs; a
32×32 batch takes about a millisecond, so five runs were at the mercy of one
slow one), each corruption's kornia runs right after ours; the peers run
``--peer-repeats`` times in their own interpreter. A peer
"computes the same corruption" when its mean absolute pixel change at our
severity-3 parameters is within ±25% of ours; for those, the ratio
``peer / ours`` is printed (> 1: perturbkit is faster). ``floor`` is a bare
numpy pass over the batch (``np.clip(X * 1.0, 0, 1)``): the cost of touching
every pixel once.

Fidelity: mean absolute pixel change per severity 1–5 (first 32 images)
beside imagecorruptions' on the same images. ``saturation`` is compared row
by row where its table reuses ImageNet-C's (our 2, 4, 5 = its 3, 4, 5).

Peers run in their own interpreter (``image_peer_venv.sh`` makes it; never
perturbkit's dependencies); kornia runs here, on perturbkit's torch, when it
is installed (``pip install kornia==0.9.0``).

Run:  bash benchmarks/modalities/image_peer_venv.sh
      .venv/bin/python benchmarks/modalities/image.py [--quick] [--json] [--sizes 32,224]
      [--threads N]   (--threads 1 writes results/image.json; other thread counts,
                       the default included, results/image_threads_<N|default>.json)
      .venv/bin/python benchmarks/modalities/image.py --report benchmarks/results/image.json
                      (the tables of a written record)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import run_metadata, time_steady, write_json  # noqa: E402

from perturbkit import perturbations  # noqa: E402

PEER_VENV = HERE / ".peer-venv-image"

# our name -> imagecorruptions' name (severity tables follow it)
IMAGECORRUPTIONS = {
    "image_gaussian_noise": "gaussian_noise",
    "shot_noise": "shot_noise",
    "impulse_noise": "impulse_noise",
    "gaussian_blur": "gaussian_blur",
    "motion_blur": "motion_blur",
    "defocus_blur": "defocus_blur",
    "brightness": "brightness",
    "contrast": "contrast",
    "saturation": "saturate",
    "jpeg_compression": "jpeg_compression",
    "pixelate": "pixelate",
    "elastic_transform": "elastic_transform",
}
# our saturation severity -> imagecorruptions' saturate severity, where the rows agree
SATURATE_ROWS = {2: 3, 4: 4, 5: 5}


def severity3_params(size: int) -> dict[str, float]:
    """Our severity-3 parameters, for configuring the peers."""
    from perturbkit.perturbations import image as im

    warm_k = 1e6 / (1e6 / 6500 + im.ColorTemperature.TABLE[2])
    phi = math.pi / 4
    return {
        "sigma": im.ImageGaussianNoise.TABLE[2],
        "photons": im.ShotNoise.TABLE[2],
        "amount": im.ImpulseNoise.TABLE[2],
        "blur_sigma": im.GaussianBlur.TABLE[2],
        "motion_len": 2 * int(im.MotionBlur.TABLE[2][0]) + 1,
        "motion_sigma": im.MotionBlur.TABLE[2][1],
        "disk_r": im.DefocusBlur.TABLE[2][0],
        "disk_alias": im.DefocusBlur.TABLE[2][1],
        "brightness": im.Brightness.TABLE[2],
        "contrast": im.Contrast.TABLE[2],
        "sat_a": im.Saturation.UP[1][0],  # severity 2 = ImageNet-C's row 3: S × 2
        "hue_deg": im.HueShift.TABLE[2],
        "warm_k": warm_k,
        "quality": int(im.JpegCompression.TABLE[2]),
        "pixelate": im.Pixelate.TABLE[2],
        "lens_k": im.LensDistortion.TABLE[2],
        "rot_deg": im.Rotation.TABLE[2],
        "shift_x": im.Translation.TABLE[2] * math.cos(phi),
        "shift_y": im.Translation.TABLE[2] * math.sin(phi),
        "zoom": im.Zoom.TABLE[2],
        "elastic_alpha_px": im.ElasticTransform.TABLE[2] * 0.005 * size,
        "elastic_sigma_px": 0.01 * size,
    }


def make_batch(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` seeded 224×224 crops of the sample photos (uint8 NHWC), area-downscaled to size."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(n):
        ph = photos[int(rng.integers(len(photos)))]
        y = int(rng.integers(ph.shape[0] - 224 + 1))
        x = int(rng.integers(ph.shape[1] - 224 + 1))
        c = ph[y : y + 224, x : x + 224]
        crops.append(c[:, ::-1] if rng.random() < 0.5 else c)
    batch = np.stack(crops)
    if size != 224:
        f = 224 // size
        batch = batch[:, : size * f, : size * f].astype(np.float64)
        batch = batch.reshape(n, size, f, size, f, 3).mean(axis=(2, 4))
        batch = np.rint(batch).astype(np.uint8)
    return np.ascontiguousarray(batch)


def kornia_ops(p: dict[str, float], size: int):
    """kornia's nearest equivalents at our severity-3 parameters (None when absent)."""
    try:
        import kornia
        import torch
    except ImportError:
        return {}, None
    K = kornia
    gen = torch.Generator().manual_seed(0)

    def noise(x):
        return (x + p["sigma"] * torch.randn(x.shape, generator=gen)).clamp(0, 1)

    def blur(x):
        ks = 2 * math.ceil(4 * p["blur_sigma"]) + 1
        return K.filters.gaussian_blur2d(
            x, (ks, ks), (p["blur_sigma"], p["blur_sigma"]), border_type="replicate"
        )

    def motion(x):
        angle = torch.empty(x.shape[0]).uniform_(-45, 45, generator=gen)
        direction = torch.ones(x.shape[0])  # one-sided streak, as ImageNet-C's
        return K.filters.motion_blur(
            x, int(p["motion_len"]), angle, direction, border_type="replicate"
        )

    def rotate(x):
        return K.geometry.transform.rotate(
            x, torch.full((x.shape[0],), p["rot_deg"]), padding_mode="reflection"
        )

    def translate(x):
        t = torch.tensor([[p["shift_x"] * size, p["shift_y"] * size]]).repeat(x.shape[0], 1)
        return K.geometry.transform.translate(x, t, padding_mode="reflection")

    def zoom(x):
        return K.geometry.transform.scale(
            x, torch.full((x.shape[0], 2), p["zoom"]), padding_mode="reflection"
        )

    def elastic(x):
        n = torch.rand((x.shape[0], 2, size, size), generator=gen) * 2 - 1
        s = max(p["elastic_sigma_px"], 0.3)
        ks = 2 * math.ceil(3 * s) + 1
        return K.geometry.transform.elastic_transform2d(
            x,
            n,
            (ks, ks),
            (s, s),
            (p["elastic_alpha_px"] * 2 / size,) * 2,
            padding_mode="reflection",
        )

    def salt(x):
        u = torch.rand(x.shape, generator=gen)
        hit = torch.rand(x.shape, generator=gen) < p["amount"]
        return torch.where(hit, (u < 0.5).float(), x)

    ops = {
        "image_gaussian_noise": noise,
        "impulse_noise": salt,
        "gaussian_blur": blur,
        "motion_blur": motion,
        "brightness": lambda x: K.enhance.adjust_brightness(x, p["brightness"]),
        "contrast": lambda x: K.enhance.adjust_contrast_with_mean_subtraction(x, p["contrast"]),
        "saturation": lambda x: K.enhance.adjust_saturation(x, p["sat_a"]),
        "hue_shift": lambda x: K.enhance.adjust_hue(x, math.radians(p["hue_deg"])),
        "jpeg_compression": lambda x: K.enhance.jpeg_codec_differentiable(
            x, torch.tensor([float(p["quality"])])
        ),
        "rotation": rotate,
        "translation": translate,
        "zoom": zoom,
        "elastic_transform": elastic,
    }
    return ops, K.__version__


def run_peers(peer_python: Path, batch: np.ndarray, params: dict, repeats: int, fid_n: int):
    with tempfile.TemporaryDirectory() as tmp:
        inp, spec_path, out_path = (Path(tmp) / n for n in ("x.npy", "spec.json", "out.json"))
        np.save(inp, batch)
        spec = {
            "input": str(inp),
            "repeats": repeats,
            "fidelity_n": fid_n,
            "params": params,
            "imagecorruptions": IMAGECORRUPTIONS,
            "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0),
        }
        spec_path.write_text(json.dumps(spec))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        proc = subprocess.run(
            [str(peer_python), str(HERE / "_image_peers.py"), str(spec_path), str(out_path)],
            capture_output=True,
            text=True,
            env=env,
        )
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:] or ["peer run failed"]}
        return json.loads(out_path.read_text())


def timed(fn, args) -> dict:
    """``time_steady`` over ``--repeats`` runs, or as many more as fill ``--min-time``
    seconds (at most 200): a call of a millisecond is timed a few hundred times."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    runs = max(args.repeats, min(200, math.ceil(args.min_time / max(first, 1e-9))))
    return time_steady(fn, repeats=runs)


def bench_size(size: int, args) -> dict:
    import torch

    batch_u8 = make_batch(args.batch, size)
    X = np.ascontiguousarray(batch_u8.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    Xf = X[: args.fidelity_n]
    params = severity3_params(size)
    res: dict = {"size": size, "batch": args.batch, "ours": {}, "kornia": {}}
    res["floor"] = timed(lambda: np.clip(X * 1.0, 0.0, 1.0), args)
    variants = [(name, name, {}) for name in perturbations.list("image")]
    if importlib.util.find_spec("simplejpeg"):
        variants.append(
            ("jpeg_compression[simplejpeg]", "jpeg_compression", {"codec": "simplejpeg"})
        )
    ops, kver = kornia_ops(params, size)
    res["kornia_version"] = kver
    xt = torch.from_numpy(X)
    xf = torch.from_numpy(Xf)
    for label, name, kw in variants:
        p = perturbations.get(name, **kw)
        sev = 2 if name == "saturation" else 3  # the row ImageNet-C and the peers share
        rng = np.random.default_rng(0)
        res["ours"][label] = {
            "base": name,
            "time": timed(lambda p=p, s=sev, r=rng: p(X, s, r), args),
            "change": [float(np.abs(p(Xf, s, 0) - Xf).mean()) for s in range(1, 6)],
            "severity_timed": sev,
        }
        if label not in ops:
            continue
        op = ops[label]  # kornia right after ours: the same state of the machine
        try:
            with torch.no_grad():
                t = timed(lambda op=op: op(xt), args)
                change = float((op(xf).clamp(0, 1) - xf).abs().mean())
            res["kornia"][label] = {"time": t, "change": change}
        except Exception as exc:  # report, do not hide
            res["kornia"][label] = {"error": f"{type(exc).__name__}: {exc}"}
    peer_python = Path(args.peer_python)
    if peer_python.exists():
        res["peers"] = run_peers(peer_python, batch_u8, params, args.peer_repeats, args.fidelity_n)
    else:
        res["peers"] = {"error": [f"{peer_python} missing: run image_peer_venv.sh first"]}
    return res


def _same(ours: float, theirs: float) -> bool:
    return ours > 0 and abs(theirs / ours - 1) <= 0.25


def report(res: dict) -> dict:
    size, peers = res["size"], res.get("peers", {})
    ic = peers.get("imagecorruptions", {})
    al = peers.get("albumentations_float32", {})
    al8 = peers.get("albumentations", {})
    print(f"\n== {size}×{size}, batch {res['batch']}: milliseconds per batch at severity 3 ==")
    print(f"floor (numpy pass over the batch): {res['floor']['median'] * 1e3:.3f} ms")
    hdr = f"{'perturbation':28s} {'ours':>8s} {'IQR':>7s} {'imgcorr':>8s} {'albu f32':>9s} "
    print(hdr + f"{'kornia':>8s}  {'vs fastest same peer':>24s}  vs imgcorr  albu u8 (vs ours)")
    speedups_ic, summary = [], {}
    for label, o in res["ours"].items():
        name = o["base"]
        t = o["time"]["median"]
        ours_change = o["change"][o["severity_timed"] - 1]
        cells, same = [], []
        for lib, d in (("imagecorruptions", ic), ("albumentations", al), ("kornia", res["kornia"])):
            e = d.get(name)
            if not e or "time" not in e:
                cells.append(f"{'—':>8s}")
                continue
            pt = e["time"]["median"]
            pc = e["change"][2] if isinstance(e["change"], list) else e["change"]
            ok = _same(ours_change, pc)
            cells.append(f"{pt * 1e3:8.2f}{'' if ok else '*'}")
            if ok:
                same.append((pt, lib))
        fastest = min(same) if same else None
        vs = f"{fastest[0] / t:6.2f}× ({fastest[1]})" if fastest else "no same peer"
        vic = ""
        e8 = al8.get(name)
        u8 = None
        if e8 and "time" in e8 and _same(ours_change, e8["change"]):
            u8 = e8["time"]["median"] / t
        vu8 = f"{e8['time']['median'] * 1e3:8.2f} ({u8:4.2f}×)" if u8 else f"{'—':>8s}"
        if name in ic and "time" in ic[name]:
            sp = ic[name]["time"]["median"] / t
            if label == name:  # the defaults count in the geometric mean
                speedups_ic.append(sp)
            vic = f"{sp:7.1f}×"
        print(
            f"{label:28s} {t * 1e3:8.2f} {o['time']['iqr'] * 1e3:7.2f} "
            + " ".join(cells)
            + f"  {vs:>24s}  {vic:>9s}  {vu8}"
        )
        summary[label] = {
            "ours_s": t,
            "vs_fastest_same_peer": None if not fastest else fastest[0] / t,
            "fastest_same_peer": None if not fastest else fastest[1],
            "vs_albumentations_uint8": u8,
        }
    gm = math.exp(sum(map(math.log, speedups_ic)) / len(speedups_ic)) if speedups_ic else None
    if gm:
        print(f"geometric mean speed-up vs imagecorruptions ({len(speedups_ic)} shared): {gm:.1f}×")
    print("(* = that peer's pixel change is not within ±25% of ours: a different corruption)")
    print(f"\n== fidelity at {size}×{size}: mean |Δpixel| per severity, ours / imagecorruptions ==")
    for name, o in res["ours"].items():
        e = ic.get(o["base"])
        if not e or "change" not in e:
            continue
        row = []
        for s in range(1, 6):
            ref_s = SATURATE_ROWS.get(s) if o["base"] == "saturation" else s
            if ref_s is None:
                row.append(f"{o['change'][s - 1]:.4f}/   —   ")
                continue
            theirs = e["change"][ref_s - 1]
            row.append(
                f"{o['change'][s - 1]:.4f}/{theirs:.4f} ({o['change'][s - 1] / theirs:4.2f})"
            )
        print(f"{name:28s} " + "  ".join(row))
    if peers.get("errors") or peers.get("error"):
        print("peer errors:", json.dumps(peers.get("errors") or peers.get("error")))
    return {"geomean_vs_imagecorruptions": gm, "per_perturbation": summary}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="batch 32, one repeat")
    ap.add_argument("--json", action="store_true", help="write benchmarks/results/image.json")
    ap.add_argument("--sizes", default="32,224")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per call, at least")
    ap.add_argument(
        "--min-time", type=float, default=0.5, help="seconds of timed runs per call (≤ 200 runs)"
    )
    ap.add_argument("--peer-repeats", type=int, default=3)
    ap.add_argument("--fidelity-n", type=int, default=32)
    ap.add_argument("--peer-python", default=str(PEER_VENV / "bin" / "python"))
    ap.add_argument(
        "--threads", type=int, default=0, help="torch and OpenCV threads (0: their defaults)"
    )
    ap.add_argument(
        "--report", metavar="JSON", help="print the tables of a written record, run nothing"
    )
    args = ap.parse_args()
    if args.report:
        record = json.loads(Path(args.report).read_text())
        meta = record["meta"]
        print(f"{args.report}: {meta['time']}, threads {meta.get('threads_arg', '?')}")
        for res in record["sizes"]:
            report(res)
        return
    if args.quick:
        args.batch, args.repeats, args.peer_repeats, args.fidelity_n = 32, 1, 1, 8
        args.min_time = 0.0
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        if importlib.util.find_spec("cv2"):  # perturbkit's own OpenCV kernels
            import cv2

            cv2.setNumThreads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the peers' OpenCV and BLAS
        os.environ["OPENCV_FOR_THREADS_NUM"] = str(args.threads)
    results = {"meta": run_metadata(), "sizes": []}
    results["meta"]["threads_arg"] = args.threads
    results["meta"]["torch"] = torch.__version__
    results["meta"]["torch_threads"] = torch.get_num_threads()
    if importlib.util.find_spec("cv2"):
        import cv2

        results["meta"]["opencv"] = cv2.__version__
        results["meta"]["opencv_threads"] = cv2.getNumThreads()
    for size in (int(s) for s in args.sizes.split(",")):
        res = bench_size(size, args)
        res["summary"] = report(res)
        results["sizes"].append(res)
    if args.json:
        # one thread each (the headline) in image.json, other thread counts beside it
        name = "image" if args.threads == 1 else f"image_threads_{args.threads or 'default'}"
        print("wrote", write_json(name, results))


if __name__ == "__main__":
    main()
