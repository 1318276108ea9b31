"""Train against the fragility a sweep found, then sweep again.

1. Train the digits MLP (64-128-10, SGD with momentum, 30 epochs) with 5 seeds.
2. Sweep each model on the test set with ``perturbkit.sweep`` over the
   tabular perturbations (magnitudes 0 … 1 in each one's unit, statistics
   from the training set) and pick the perturbation that costs the most
   accuracy at magnitude 0.5 (``--magnitude``): the fragility the sweep
   found. (At magnitude 1 some perturbations leave no information at all,
   e.g. every feature swapped with another row's, which no training can
   undo.)
3. Train again with the same seeds (same initial weights, same batch order),
   with that perturbation as a train-time augmentation
   (``perturbkit.optim.perturbed_batches``: half of each batch, ``--fraction``,
   perturbed at that magnitude).
4. Sweep both sets of models with the same sweep seed, and print accuracy
   under the perturbation, plain beside augmented, with the per-seed paired
   difference, and how the augmentation changed the other perturbations.

Everything is seeded; the global RNGs are not used. Runs in well under 2
minutes on 2 CPU cores.

Run:  .venv/bin/python examples/train_against_fragility.py --out fragility
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

import perturbkit as pk
from perturbkit.optim import perturbed_batches

CANDIDATES = [
    "gaussian_noise",
    "uniform_noise",
    "laplace_noise",
    "multiplicative_noise",
    "outliers",
    "feature_swap",
    "sensor_drift",
    "quantization",
]
MAGNITUDES = [0.0, 0.25, 0.5, 1.0]
SWEEP_SEED = 2024
HIDDEN, BATCH = 128, 64


def load_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, stratify=y, random_state=0)


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


def train(
    seed: int, Xtr, ytr, *, perturbation: str, magnitude: float, fraction: float, n_epochs: int
):
    """SGD with momentum; ``magnitude=0`` is plain training on the very same batches."""
    model = make_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = perturbed_batches(
        Xtr,
        ytr,
        perturbation=perturbation,
        magnitude=magnitude,
        fraction=fraction,
        batch_size=BATCH,
        n_epochs=n_epochs,
        seed=seed,  # the batch order depends on the seed only, not on the magnitude
    )
    model.train()
    for Xb, yb in batches:
        opt.zero_grad()
        logits = model(torch.as_tensor(Xb, dtype=torch.float32))
        torch.nn.functional.cross_entropy(logits, torch.as_tensor(yb)).backward()
        opt.step()
    return model.eval()


def accuracy_table(model, Xte, yte, Xtr, perturbations) -> dict:
    """{perturbation: {magnitude: accuracy}} from one sweep."""
    result = pk.sweep(
        pk.wrap(model, task="classification"),
        Xte,
        yte,
        perturbations=perturbations,
        magnitudes=MAGNITUDES,
        seed=SWEEP_SEED,
        reference=Xtr,
        metrics=["accuracy"],
        progress=False,
    )
    t = result.to_pandas(groups=False)
    t = t[t["metric"] == "accuracy"]
    out: dict = {}
    for row in t.itertuples():
        out.setdefault(row.perturbation, {})[float(row.magnitude)] = float(row.value)
    return out


def mean_std(values) -> str:
    v = np.asarray(values)
    return f"{v.mean():.4f} ± {v.std(ddof=1):.4f}"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("fragility"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (a tiny model: one is fastest)"
    )
    ap.add_argument(
        "--magnitude",
        type=float,
        default=0.5,
        choices=MAGNITUDES[1:],
        help="where the fragility is judged, and the augmentation's magnitude",
    )
    ap.add_argument("--fraction", type=float, default=0.5, help="share of each batch perturbed")
    ap.add_argument("--quick", action="store_true", help="2 seeds, 3 epochs: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs = 2, 3
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    Xtr, Xte, ytr, yte = load_split()
    seeds = list(range(args.seeds))

    # 1-2: plain models, swept over every candidate
    plain = [
        train(
            s,
            Xtr,
            ytr,
            perturbation="gaussian_noise",
            magnitude=0.0,
            fraction=1.0,
            n_epochs=args.epochs,
        )
        for s in seeds
    ]
    before = [accuracy_table(m, Xte, yte, Xtr, CANDIDATES) for m in plain]
    top = args.magnitude
    drops = {p: float(np.mean([b[p][0.0] - b[p][top] for b in before])) for p in CANDIDATES}
    target = max(drops, key=drops.get)
    print(f"plain models, mean accuracy drop at magnitude {top} (sweep of {len(Xte)} test rows):")
    for p in sorted(drops, key=drops.get, reverse=True):
        print(f"  {p:<22}{drops[p]:+.4f}" + ("   <- the fragility" if p == target else ""))

    # 3-4: the same seeds, trained against it, swept again
    augmented = [
        train(
            s,
            Xtr,
            ytr,
            perturbation=target,
            magnitude=top,
            fraction=args.fraction,
            n_epochs=args.epochs,
        )
        for s in seeds
    ]
    after = [accuracy_table(m, Xte, yte, Xtr, CANDIDATES) for m in augmented]
    print(
        f"\naccuracy under {target} (training: {args.fraction:.0%} of each batch at magnitude "
        f"{top}); "
        f"{len(seeds)} seeds, mean ± std:"
    )
    print(f"  {'magnitude':>9}{'plain':>20}{'augmented':>20}{'paired gain':>20}")
    for m in MAGNITUDES:
        a = [b[target][m] for b in before]
        b_ = [x[target][m] for x in after]
        gain = np.subtract(b_, a)
        print(f"  {m:>9.2f}{mean_std(a):>20}{mean_std(b_):>20}{mean_std(gain):>20}")
    print(f"\nthe other perturbations at magnitude {top} (accuracy, mean over seeds):")
    print(f"  {'perturbation':<22}{'plain':>10}{'augmented':>12}")
    for p in CANDIDATES:
        if p == target:
            continue
        a = np.mean([b[p][top] for b in before])
        b_ = np.mean([x[p][top] for x in after])
        print(f"  {p:<22}{a:>10.4f}{b_:>12.4f}")
    seconds = time.perf_counter() - t0
    payload = {
        "target": target,
        "drops_before": drops,
        "magnitudes": MAGNITUDES,
        "seeds": seeds,
        "plain": before,
        "augmented": after,
        "seconds": seconds,
        "config": {
            "epochs": args.epochs,
            "sweep_seed": SWEEP_SEED,
            "magnitude": top,
            "fraction": args.fraction,
        },
    }
    path = args.out / "train_against_fragility.json"
    path.write_text(json.dumps(payload, indent=2))
    print(f"\n{seconds:.1f}s; wrote {path}")
    return payload


if __name__ == "__main__":
    main()
