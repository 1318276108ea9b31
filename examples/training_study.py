"""Training study: SGD, Adam, perturbed SGD (annealed noise), SGLD and SAM on digits.

A small MLP (64-128-10) on scikit-learn's digits (1,797 8x8 images, shipped
offline), a fixed stratified 75/25 split, mini-batches of 64, 30 epochs, and
5 seeds per optimizer. A seed fixes the initial weights, the batch order and
the optimizer's noise, so the optimizers are compared on the same draws.
Hyperparameters are set a priori (from the papers' defaults), not tuned on
the test set:

- SGD: lr 0.05, momentum 0.9;
- Adam: lr 1e-3;
- perturbed SGD: that SGD plus Gaussian gradient noise with Neelakantan et
  al.'s annealing σ_t² = η/(1+t)^0.55, η = 0.01;
- SGLD: lr 0.1, n_data = the training size, a N(0, 1) prior
  (weight_decay = 1/n_data), temperature 1; reported for the last iterate
  and for the posterior-averaged prediction of the last 10 epochs' samples;
- SAM: that SGD inside SAM with ρ = 0.05.

Prints test accuracy mean ± std per optimizer and writes ``loss_curves.png``
(train and test loss per epoch over the seeds: geometric mean and a ± 1 std
band of the log loss) and ``training_study.json``
to ``--out``. Runs in well under 2 minutes on 2 CPU cores.

Run:  .venv/bin/python examples/training_study.py --out training-study
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from perturbkit.optim import (
    SAM,
    SGLD,
    AnnealedSchedule,
    GaussianGradientNoise,
    PerturbedOptimizer,
)

HIDDEN = 128
BATCH = 64


def load_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, stratify=y, random_state=0)
    as_t = lambda a, dt: torch.as_tensor(a, dtype=dt)  # noqa: E731
    return (
        as_t(Xtr, torch.float32),
        as_t(ytr, torch.long),
        as_t(Xte, torch.float32),
        as_t(yte, torch.long),
    )


def make_model(seed: int) -> torch.nn.Module:
    """The MLP, initialised from a generator seeded by ``seed`` (global RNG untouched)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        model = torch.nn.Sequential(
            torch.nn.Linear(64, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 10)
        )
    with torch.no_grad():
        for layer in (model[0], model[2]):
            bound = 1 / math.sqrt(layer.in_features)
            layer.weight.uniform_(-bound, bound, generator=gen)
            layer.bias.uniform_(-bound, bound, generator=gen)
    return model


def make_optimizer(name: str, model: torch.nn.Module, seed: int, n_train: int):
    params = list(model.parameters())
    sgd = lambda: torch.optim.SGD(params, lr=0.05, momentum=0.9)  # noqa: E731
    if name == "SGD":
        return sgd()
    if name == "Adam":
        return torch.optim.Adam(params, lr=1e-3)
    if name == "Perturbed SGD":
        noise = GaussianGradientNoise(sigma=math.sqrt(0.01))
        return PerturbedOptimizer(sgd(), noise, schedule=AnnealedSchedule(0.55), seed=seed)
    if name == "SGLD":
        return SGLD(params, lr=0.1, n_data=n_train, weight_decay=1 / n_train, seed=seed)
    if name == "SAM":
        return SAM(sgd(), rho=0.05)
    raise ValueError(name)


def train_one(name: str, seed: int, data, n_epochs: int) -> dict:
    Xtr, ytr, Xte, yte = data
    model = make_model(seed)
    opt = make_optimizer(name, model, seed, len(Xtr))
    order_gen = torch.Generator().manual_seed(10_000 + seed)
    loss_fn = torch.nn.functional.cross_entropy
    train_curve, test_curve, samples = [], [], []
    for epoch in range(n_epochs):
        model.train()
        perm = torch.randperm(len(Xtr), generator=order_gen)
        total = 0.0
        for start in range(0, len(Xtr), BATCH):
            idx = perm[start : start + BATCH]
            xb, yb = Xtr[idx], ytr[idx]

            def closure(xb=xb, yb=yb):
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                return loss

            loss = opt.step(closure)
            total += float(loss.detach()) * len(idx)
        train_curve.append(total / len(Xtr))
        model.eval()
        with torch.no_grad():
            logits = model(Xte)
            test_curve.append(float(loss_fn(logits, yte)))
            if name == "SGLD" and epoch >= n_epochs - 10:
                samples.append(torch.softmax(logits, dim=1))
    with torch.no_grad():
        acc = float((model(Xte).argmax(1) == yte).float().mean())
    out = {"accuracy": acc, "train_loss": train_curve, "test_loss": test_curve}
    if samples:
        avg = torch.stack(samples).mean(0)
        out["posterior_accuracy"] = float((avg.argmax(1) == yte).float().mean())
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for name, runs in results.items():
        for ax, key in zip(axes, ("train_loss", "test_loss")):
            # on a log axis: the geometric mean, and a band of ± one std of the log loss
            logs = np.log(np.array([r[key] for r in runs]))
            mean, std = logs.mean(0), logs.std(0)
            epochs = np.arange(1, logs.shape[1] + 1)
            (line,) = ax.plot(epochs, np.exp(mean), label=name)
            ax.fill_between(
                epochs, np.exp(mean - std), np.exp(mean + std), color=line.get_color(), alpha=0.2
            )
    for ax, title in zip(axes, ("training loss (epoch mean)", "test loss")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("cross-entropy")
    axes[1].legend()
    n_seeds = len(next(iter(results.values())))
    fig.suptitle(f"digits MLP, {n_seeds} seeds: geometric mean, band ± 1 std of log loss")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("training-study"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (a tiny model: one is fastest)"
    )
    ap.add_argument("--quick", action="store_true", help="2 seeds, 3 epochs: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs = 2, 3
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_split()
    names = ["SGD", "Adam", "Perturbed SGD", "SGLD", "SAM"]
    results: dict[str, list[dict]] = {}
    timings = {}
    for name in names:
        t0 = time.perf_counter()
        results[name] = [train_one(name, seed, data, args.epochs) for seed in range(args.seeds)]
        timings[name] = time.perf_counter() - t0

    rows = []
    for name in names:
        acc = np.array([r["accuracy"] for r in results[name]])
        rows.append((name, acc, results[name]))
        if name == "SGLD":
            post = np.array([r["posterior_accuracy"] for r in results[name]])
            rows.append(("SGLD (posterior mean)", post, None))
    print(
        f"digits MLP, {args.seeds} seeds x {args.epochs} epochs; test set of {len(data[3])} images"
    )
    print(f"{'optimizer':<24}{'test accuracy':>20}{'final train loss':>20}{'time':>8}")
    summary = {}
    for name, acc, runs in rows:
        tr = f"{np.mean([r['train_loss'][-1] for r in runs]):.4f}" if runs else "-"
        tm = f"{timings[name]:.1f}s" if name in timings else ""
        print(f"{name:<24}{acc.mean():>12.4f} ± {acc.std(ddof=1):.4f}{tr:>20}{tm:>8}")
        summary[name] = {
            "mean": float(acc.mean()),
            "std": float(acc.std(ddof=1)),
            "per_seed": acc.tolist(),
        }
    plot(results, args.out / "loss_curves.png")
    payload = {
        "config": {"seeds": args.seeds, "epochs": args.epochs, "batch": BATCH, "hidden": HIDDEN},
        "accuracy": summary,
        "curves": {
            n: [{k: r[k] for k in ("train_loss", "test_loss")} for r in rs]
            for n, rs in results.items()
        },
        "seconds": timings,
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
    }
    (args.out / "training_study.json").write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out / 'loss_curves.png'} and {args.out / 'training_study.json'}")
    return payload


if __name__ == "__main__":
    main()
