"""How fragile is a small CNN to real-world image corruptions?

Trains a small convolutional network on scikit-learn's digits (8×8, upsampled
to 16×16, one channel) and sweeps image perturbations over severities 0–5
with ``perturbkit.sweep``; prints the accuracy per severity. With ``--out
DIR`` it also saves a grid of before/after thumbnails of one of scikit-learn's
sample photos at severities 1, 3 and 5 (``image_corruptions.png``).

Run:  .venv/bin/python examples/image_robustness.py [--out DIR]
Needs: pip install 'perturbkit[torch]' (Pillow comes with matplotlib).
"""

# With --quick (used by the tests) it trains for 2 epochs and sweeps 4 perturbations.

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import perturbkit as pk
from perturbkit import perturbations

GREY_SAFE = [
    "image_gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "gaussian_blur",
    "motion_blur",
    "defocus_blur",
    "brightness",
    "contrast",
    "jpeg_compression",
    "pixelate",
    "lens_distortion",
    "rotation",
    "translation",
    "zoom",
    "elastic_transform",
]


def train_cnn(X: np.ndarray, y: np.ndarray, *, seed: int = 0, epochs: int = 8) -> torch.nn.Module:
    """A two-layer CNN; torch's global RNG is forked, so the caller's state is untouched."""
    nn = torch.nn
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 4 * 4, 10),
        )
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        order = np.random.default_rng(seed)
        for _ in range(epochs):
            for idx in np.array_split(order.permutation(len(y)), len(y) // 64):
                opt.zero_grad()
                nn.functional.cross_entropy(net(Xt[idx]), yt[idx]).backward()
                opt.step()
    return net.eval()


def digits_16() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = np.kron(X.reshape(-1, 8, 8) / 16.0, np.ones((2, 2)))[:, None].astype(np.float32)
    return X, y


def thumbnails(out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.datasets import load_sample_images

    photo = load_sample_images().images[0][::4, ::4].astype(np.float32) / 255.0
    X = np.ascontiguousarray(photo.transpose(2, 0, 1))[None]  # 1×3×107×160, NCHW
    names = perturbations.list("image")
    fig, axes = plt.subplots(len(names), 4, figsize=(8, 1.6 * len(names)))
    for row, name in zip(axes, names):
        p = perturbations.get(name)
        for ax, s in zip(row, (0, 1, 3, 5)):
            ax.imshow(p(X, s, 0)[0].transpose(1, 2, 0))
            ax.set_axis_off()
            ax.set_title(f"{name} {s}" if s else name, fontsize=7)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "image_corruptions.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="folder for the thumbnail grid")
    ap.add_argument("--quick", action="store_true", help="2 epochs, 4 perturbations (a smoke run)")
    args = ap.parse_args()

    X, y = digits_16()
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:1300], order[1300:]
    net = train_cnn(X[train], y[train], epochs=2 if args.quick else 8)
    result = pk.sweep(
        pk.wrap(net, task="classification"),
        X[test],
        y[test],
        perturbations=GREY_SAFE[::4] if args.quick else GREY_SAFE,
        magnitudes=[0, 1, 3, 5] if args.quick else [0, 1, 2, 3, 4, 5],
        seed=0,
        progress=False,
    )
    t = result.to_pandas(groups=False)
    acc = t[t.metric == "accuracy"].pivot_table(
        index="perturbation", columns="magnitude", values="value"
    )
    print("accuracy of the digits CNN by severity (16×16 grey images):")
    print(acc.round(3).to_string())
    if args.out is not None:
        print("wrote", thumbnails(args.out))


if __name__ == "__main__":
    main()
