"""Audio perturbations against audiomentations: clips per second and fidelity.

Inputs: ``--clips`` seeded speech-like clips of 1 s at 16 kHz, float32 (a
harmonic stack at 90–250 Hz with a syllable-rate envelope and a little
noise, peak 0.5), the same array for both libraries.

Pairs at matched settings (ours → audiomentations 0.43.1, which processes one
clip per call, as it is used):

    white_noise 0.1 (20 dB SNR)  → AddGaussianSNR(20 dB)
    pink_noise 0.1 (20 dB SNR)   → AddColorNoise(20 dB, f_decay −3.01 dB/octave)
    gain 6 (down)                → Gain(−6 dB)
    clipping 0.1 (10 % clipped)  → ClippingDistortion(10th percentile)
    time_stretch 0.25 (faster)   → TimeStretch(rate 1.25, length kept)
    pitch_shift 3 (up)           → PitchShift(+3 semitones)
    low_pass 1 (4 kHz)           → LowPassFilter(4 kHz, 24 dB/octave, zero phase)
    high_pass 0.3 (300 Hz)       → HighPassFilter(300 Hz, 24 dB/octave, zero phase)
    time_shift 0.1 s (pad)       → Shift(0.1 s, no rollover, no fade)
    reverb 0.5 (RT60 0.5 s)      → ApplyImpulseResponse(a synthetic RT60 0.5 s room)

audiomentations' time stretch and pitch shift default to the Signalsmith
Stretch C++ library; they are timed that way (the headline) and also with
``method="librosa_phase_vocoder"``, the algorithm ours follows (reported
beside, not in the mean).

Speed: seconds per batch (median and IQR over ``--repeats`` runs after one
warm-up), as clips per second; ours includes its draws. The peer runs as a
server in its own process and the two are timed in alternation, one run
each in turn, so that a busy machine slows both alike. ``floor`` is one
bare numpy pass over the batch (``X * 0.5``). Target: the geometric mean of
``ours / audiomentations`` clips per second over the ten pairs ≥ 2×. Both
run single-threaded.

Fidelity: the mean absolute change per sample, ``mean |out − x|``, for both
(the realised SNR for the noises), so the settings can be seen to do the
same amount of damage; phase-changing operations (stretch, pitch, reverb)
differ sample by sample even when they sound alike, so their figure is a
loudness check only.

audiomentations runs in its own interpreter, a venv the script makes on
first use (``--peer-venv``, default ``~/.cache/perturbkit/peers/audio``),
never in perturbkit's dependencies. This file is also the peer's entry
point (``--serve SPEC``), which imports numpy, scipy and audiomentations.

Run:  .venv/bin/python benchmarks/modalities/audio.py [--quick] [--json]
      (writes benchmarks/results/modalities_audio.json unless --quick)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from _peers import Peer, ensure_peer_venv, interleave, serve

HERE = Path(__file__).resolve().parent
SR = 16000
PEER_PINS = ["audiomentations==0.43.1", "librosa==0.11.0"]
DEFAULT_PEER_VENV = (
    Path(os.environ.get("PERTURBKIT_PEERS", Path.home() / ".cache" / "perturbkit" / "peers"))
    / "audio"
)
# ours: (registry name, parameters, magnitude)
OURS: dict[str, tuple[str, dict[str, Any], float]] = {
    "white_noise": ("white_noise", {}, 0.1),
    "pink_noise": ("pink_noise", {}, 0.1),
    "gain": ("gain", {}, 6.0),
    "clipping": ("clipping", {}, 0.1),
    "time_stretch": ("time_stretch", {}, 0.25),
    "pitch_shift": ("pitch_shift", {}, 3.0),
    "low_pass": ("low_pass", {}, 1.0),
    "high_pass": ("high_pass", {}, 0.3),
    "time_shift": ("time_shift", {}, 0.1),
    "reverb": ("reverb", {}, 0.5),
}
RT60 = 0.5


# -- shared helpers ------------------------------------------------------------------------
def room_ir(n: int, seed: int = 0) -> Any:
    """A synthetic impulse response: direct sound plus a noise tail, −60 dB at RT60."""
    import numpy as np

    gen = np.random.default_rng(seed)
    t = np.arange(1, int(RT60 * SR) + 1) / SR
    tail = gen.standard_normal(t.size) * np.sqrt(2 * 6.9078 * 0.5 / SR) * np.exp(-6.9078 * t / RT60)
    return np.concatenate([[1.0], tail]).astype(np.float32)[:n]


def fidelity(X: Any, out: Any) -> dict[str, float]:
    import numpy as np

    d = np.asarray(out, np.float64) - X
    snr = 10 * np.log10((X.astype(np.float64) ** 2).sum() / max((d**2).sum(), 1e-30))
    return {"mean_abs_change": float(np.abs(d).mean()), "snr_db": float(snr)}


# -- the peer side: runs in the audiomentations venv ----------------------------------------
def peer_augmenters(ir_dir: str) -> dict[str, Any]:
    import audiomentations as A

    return {
        "white_noise": A.AddGaussianSNR(min_snr_db=20.0, max_snr_db=20.0, p=1.0),
        "pink_noise": A.AddColorNoise(
            min_snr_db=20.0, max_snr_db=20.0, min_f_decay=-3.01, max_f_decay=-3.01, p=1.0
        ),
        "gain": A.Gain(min_gain_db=-6.0, max_gain_db=-6.0, p=1.0),
        "clipping": A.ClippingDistortion(
            min_percentile_threshold=10, max_percentile_threshold=10, p=1.0
        ),
        "time_stretch": A.TimeStretch(
            min_rate=1.25, max_rate=1.25, leave_length_unchanged=True, p=1.0
        ),
        "pitch_shift": A.PitchShift(min_semitones=3.0, max_semitones=3.0, p=1.0),
        "low_pass": A.LowPassFilter(
            min_cutoff_freq=4000.0,
            max_cutoff_freq=4000.0,
            min_rolloff=24,
            max_rolloff=24,
            zero_phase=True,
            p=1.0,
        ),
        "high_pass": A.HighPassFilter(
            min_cutoff_freq=300.0,
            max_cutoff_freq=300.0,
            min_rolloff=24,
            max_rolloff=24,
            zero_phase=True,
            p=1.0,
        ),
        "time_shift": A.Shift(
            min_shift=0.1,
            max_shift=0.1,
            shift_unit="seconds",
            rollover=False,
            fade_duration=0.0,
            p=1.0,
        ),
        "reverb": A.ApplyImpulseResponse(ir_path=ir_dir, leave_length_unchanged=True, p=1.0),
        # The same algorithm as ours, reported beside the headline:
        "time_stretch/librosa": A.TimeStretch(
            min_rate=1.25,
            max_rate=1.25,
            leave_length_unchanged=True,
            method="librosa_phase_vocoder",
            p=1.0,
        ),
        "pitch_shift/librosa": A.PitchShift(
            min_semitones=3.0, max_semitones=3.0, method="librosa_phase_vocoder", p=1.0
        ),
    }


def peer_serve(spec_path: str) -> None:
    """Set up, report fidelity on one JSON line, then time one run per op name read from stdin."""
    import warnings

    warnings.filterwarnings("ignore")
    import audiomentations
    import numpy as np
    from scipy.io import wavfile

    spec = json.loads(Path(spec_path).read_text())
    X = np.load(spec["clips"])
    ir_dir = Path(spec_path).parent / "ir"
    ir_dir.mkdir(exist_ok=True)
    wavfile.write(ir_dir / "room.wav", SR, room_ir(SR))
    augs = peer_augmenters(str(ir_dir))

    def run(name: str) -> Any:
        aug = augs[name]
        return np.stack([aug(samples=x, sample_rate=SR) for x in X])

    report: dict[str, Any] = {"audiomentations": audiomentations.__version__}
    for name, aug in augs.items():
        np.random.seed(0)  # noqa: NPY002 - the peer's own process; audiomentations draws from it
        report[name] = {"augmenter": type(aug).__name__, **fidelity(X, run(name))}
    serve(report, run)


# -- the main side ------------------------------------------------------------------------
def clips(n: int, seed: int = 0) -> Any:
    import numpy as np

    gen = np.random.default_rng(seed)
    t = np.arange(SR) / SR
    f0 = gen.uniform(90, 250, (n, 1))
    x = sum(np.sin(2 * np.pi * k * f0 * t + gen.uniform(0, 6.3, (n, 1))) / k for k in range(1, 9))
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t + gen.uniform(0, 6.3, (n, 1))))
    x = x + 0.01 * gen.standard_normal(x.shape)
    return (0.5 * x / np.abs(x).max(axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--peer-venv", type=Path, default=DEFAULT_PEER_VENV)
    ap.add_argument("--quick", action="store_true", help="16 clips, fewer repeats")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()
    if args.quick:
        args.clips, args.repeats = 16, 3
    threads = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    threads["NUMBA_NUM_THREADS"] = "1"
    os.environ.update(threads)
    env = {**os.environ, **threads}

    sys.path.insert(0, str(HERE.parent))
    import numpy as np
    from common import run_metadata, time_it, write_json

    from perturbkit import perturbations

    X = clips(args.clips)
    n = X.shape[0]
    floor = time_it(lambda: X * 0.5, repeats=args.repeats)
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        spec, data = Path(tmp) / "spec.json", Path(tmp) / "clips.npy"
        np.save(data, X)
        spec.write_text(json.dumps({"clips": str(data)}))
        peer = Peer(__file__, ensure_peer_venv(args.peer_venv, PEER_PINS), spec, env)
        try:
            print(
                f"{n} clips of 1 s at {SR} Hz; audiomentations "
                f"{peer.report['audiomentations']}; floor {n / floor['median']:,.0f} clips/s"
            )
            print(
                f"{'perturbation':14s} {'ours /s':>9s} {'peer /s':>9s} {'ratio':>7s} "
                f"{'|Δ| ours':>9s} {'peer':>8s} {'SNR ours':>9s} {'peer':>6s}"
            )
            for key, (name, params, m) in OURS.items():
                p = perturbations.get(name, **params)
                ours, theirs = interleave(
                    lambda p=p, m=m: p(X, m, 0), lambda k=key: peer.time(k), args.repeats
                )
                fid, pf = fidelity(X, p(X, m, 0)), peer.report[key]
                ratio = theirs["median"] / ours["median"]
                ratios.append(ratio)
                rows.append(
                    {
                        "perturbation": name,
                        "magnitude": m,
                        "params": params,
                        "peer": pf["augmenter"],
                        "ours": {**ours, "clips_per_s": n / ours["median"], **fid},
                        "audiomentations": {
                            **theirs,
                            "clips_per_s": n / theirs["median"],
                            "mean_abs_change": pf["mean_abs_change"],
                            "snr_db": pf["snr_db"],
                        },
                        "ratio": ratio,
                        "ours_over_floor": ours["median"] / floor["median"],
                    }
                )
                print(
                    f"{name:14s} {n / ours['median']:9,.0f} {n / theirs['median']:9,.0f} "
                    f"{ratio:6.1f}x {fid['mean_abs_change']:9.4f} {pf['mean_abs_change']:8.4f} "
                    f"{fid['snr_db']:9.1f} {pf['snr_db']:6.1f}"
                )
            beside = {}
            for key in ("time_stretch", "pitch_shift"):
                name, params, m = OURS[key]
                p = perturbations.get(name, **params)
                ours, lib = interleave(
                    lambda p=p, m=m: p(X, m, 0),
                    lambda k=key: peer.time(f"{k}/librosa"),
                    args.repeats,
                )
                beside[key] = {
                    "librosa_phase_vocoder": {**lib, "clips_per_s": n / lib["median"]},
                    "ours": {**ours, "clips_per_s": n / ours["median"]},
                    "ratio": lib["median"] / ours["median"],
                }
        finally:
            peer.close()
    gmean = math.exp(sum(map(math.log, ratios)) / len(ratios))
    print(f"geometric mean ratio {gmean:.2f}x (target >= 2x: {'met' if gmean >= 2 else 'NOT met'})")
    for key, row in beside.items():
        print(
            f"  {key} vs audiomentations' librosa phase vocoder: "
            f"{row['librosa_phase_vocoder']['clips_per_s']:,.0f} clips/s, "
            f"ratio {row['ratio']:.1f}x"
        )
    results = {
        "meta": {**run_metadata(), "audiomentations": peer.report["audiomentations"]},
        "config": vars(args) | {"peer_venv": str(args.peer_venv), "sample_rate": SR},
        "floor": {**floor, "clips_per_s": n / floor["median"]},
        "rows": rows,
        "same_algorithm": beside,
        "geometric_mean_ratio": gmean,
        "target": ">= 2x audiomentations clips/s, geometric mean",
    }
    if not args.quick:
        print(f"wrote {write_json('modalities_audio', results)}")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        peer_serve(sys.argv[2])
    else:
        main()
