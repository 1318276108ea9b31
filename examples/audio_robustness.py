"""How fragile is a small spoken-word classifier to noise, filtering, reverb and tempo?

Makes a small spoken-command data set offline with Debian's ``espeak-ng``
(eight words, several voices, speeds and pitches; synthesised tones when
espeak-ng is missing), trains a logistic regression on log band energies,
sweeps every audio perturbation with ``perturbkit.sweep`` and prints the
accuracy per magnitude, then measures how noise, low-pass filtering and
reverb interact. With ``--out DIR`` it also saves before/after waveforms
and spectrograms (``audio_examples.png``) and the interaction heatmap
(``audio_interactions.png``).

Run:   .venv/bin/python examples/audio_robustness.py [--quick] [--out DIR]
Needs: apt-get install espeak-ng (optional: tones stand in without it).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

import perturbkit as pk
from perturbkit import perturbations
from perturbkit.analysis.interactions import interaction_heatmap, interactions

SR = 16000
WORDS = ("yes", "no", "up", "down", "left", "right", "stop", "go")


def spoken(quick: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """Clips of 1 s at 16 kHz, peak 0.5, and word labels; espeak-ng, else tones."""
    from scipy import signal
    from scipy.io import wavfile

    if quick:
        voices, speeds, pitches = ("en-us", "en-gb"), (140, 175), (40, 60)
    else:
        voices, speeds, pitches = (
            ("en-us", "en-gb", "en-us+f3", "en+m3"),
            (120, 150, 180),
            (30, 50, 70),
        )
    if shutil.which("espeak-ng") is None:
        return (*tones(len(WORDS) * 24, seed=0), "synthesised tones (no espeak-ng)")
    clips, labels = [], []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "w.wav"
        for (k, word), voice, speed, pitch in itertools.product(
            enumerate(WORDS), voices, speeds, pitches
        ):
            cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav)]
            subprocess.run([*cmd, word], check=True, capture_output=True)
            rate, x = wavfile.read(wav)
            x = signal.resample_poly(x.astype(np.float64) / 32768, SR, rate)
            clip = np.zeros(SR)
            clip[: min(SR, x.size)] = x[:SR]
            clips.append(0.5 * clip / max(np.abs(clip).max(), 1e-9))
            labels.append(k)
    return np.asarray(clips, np.float32), np.asarray(labels), "espeak-ng spoken words"


def tones(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(seed)
    y = gen.integers(0, len(WORDS), n)
    t = np.arange(SR) / SR
    f0 = 150.0 * 2 ** (y / 2)[:, None]
    x = sum(np.sin(2 * np.pi * k * f0 * t + gen.uniform(0, 6, (n, 1))) / k for k in (1, 2, 3))
    return (0.5 * x / np.abs(x).max(axis=1, keepdims=True)).astype(np.float32), y


def features(batch: np.ndarray) -> np.ndarray:
    """Log energy in 24 log-spaced bands over 4 time segments, level-normalised."""
    x = np.asarray(batch, np.float64).reshape(len(batch), 4, -1)
    spec = np.abs(np.fft.rfft(x, axis=2)) ** 2
    freqs = np.fft.rfftfreq(x.shape[2], 1 / SR)
    edges = np.geomspace(80, SR / 2, 25)
    bands = np.stack(
        [spec[..., (freqs >= lo) & (freqs < hi)].sum(-1) for lo, hi in itertools.pairwise(edges)],
        axis=-1,
    )
    logb = np.log(bands + 1e-10).reshape(len(batch), -1)
    return logb - logb.mean(axis=1, keepdims=True)


def before_after(x: np.ndarray, out: Path) -> None:
    """Waveforms and spectrograms of one clip under a few perturbations (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy import signal

    shown = [
        ("clean", None, 0),
        ("white_noise", {}, 0.3),
        ("low_pass", {}, 3),
        ("reverb", {}, 0.8),
        ("pitch_shift", {}, 4),
        ("time_stretch", {}, 0.4),
    ]
    fig = Figure(figsize=(12, 5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(shown))
    for col, (name, params, m) in enumerate(shown):
        y = x if params is None else perturbations.get(name, **params)(x, m, 0)
        axes[0, col].plot(np.arange(SR) / SR, y, lw=0.4, color="#0072B2")
        axes[0, col].set(title=name if params is None else f"{name} {m}", ylim=(-1, 1))
        f, t, s = signal.spectrogram(y, SR, nperseg=256)
        axes[1, col].pcolormesh(t, f / 1000, 10 * np.log10(s + 1e-10), shading="auto")
        axes[1, col].set(xlabel="s", ylabel="kHz" if col == 0 else "")
    fig.savefig(out, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer clips, magnitudes, repeats")
    ap.add_argument("--out", type=Path, default=None, help="folder for the PNG figures")
    args = ap.parse_args()

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    X, y, source = spoken(args.quick)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.4, random_state=0, stratify=y)
    clf = LogisticRegression(max_iter=3000, C=3.0).fit(features(X_tr), y_tr)
    model = pk.wrap(lambda batch: clf.predict_proba(features(batch)), task="classification")
    clean = clf.score(features(X_te), y_te)
    print(f"{len(X)} clips ({source}); test accuracy {clean:.2f} on {len(X_te)} clips")

    grids = {
        "white_noise": [0, 0.1, 0.3, 1.0],  # SNR inf, 20, 10.5, 0 dB
        "pink_noise": [0, 0.1, 0.3, 1.0],
        "gain": [0, 6, 20],
        "clipping": [0, 0.05, 0.3],
        "time_stretch": [0, 0.1, 0.3],
        "pitch_shift": [0, 1, 4],
        "low_pass": [0, 1, 2, 3],  # cut-off 4, 2, 1 kHz
        "high_pass": [0, 0.3, 1.0],  # 300 Hz, 1 kHz
        "reverb": [0, 0.3, 1.0],  # RT60 in seconds
        "time_shift": [0, 0.05, 0.2],
    }
    if args.quick:
        grids = {k: [v[0], v[-1]] for k, v in grids.items()}
    result = pk.sweep(
        model,
        X_te,
        y_te,
        perturbations=list(grids),
        magnitudes=grids,
        repeats=1 if args.quick else 3,
        seed=0,
        progress=False,
    )
    s = result.summary()
    acc = s[s["metric"] == "accuracy"]
    print("\naccuracy by magnitude (each perturbation in its own unit; see docs/text_audio.md):")
    for label, g in acc.groupby("label", sort=False):
        cells = "  ".join(f"{m:g}: {v:.2f}" for m, v in zip(g["magnitude"], g["mean"]))
        print(f"  {label:28s} {cells}")

    table = interactions(
        model,
        X_te,
        y_te,
        perturbations=["white_noise", "low_pass", "reverb", "gain"],
        magnitude={"white_noise": 0.3, "low_pass": 2.0, "reverb": 0.5, "gain": 12.0},
        repeats=2 if args.quick else 8,
        seed=0,
    )
    cols = ["label", "delta", "additive", "interaction", "interaction_low", "interaction_high"]
    print("\naccuracy drop alone and in pairs, and the interaction (pair − sum of singles):")
    print(table[cols].round(3).to_string(index=False))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        before_after(X_te[0], args.out / "audio_examples.png")
        interaction_heatmap(table).savefig(args.out / "audio_interactions.png", dpi=120)
        print(f"wrote {args.out / 'audio_examples.png'} and {args.out / 'audio_interactions.png'}")


if __name__ == "__main__":
    main()
