"""Perturbed optimizers: the price of the perturbation against the bare base optimizer.

Model: an MLP with ~10.2M float32 parameters (1024-2048-2048-1280-1024) on
the CPU. For each δ generator, the same run times, in alternation with the
bare base optimizer (so machine noise hits them alike):

- ``step``: ``optimizer.step()`` alone, gradients fixed. The bare SGD step is
  a few memory-bound passes over the parameters, so this ratio is the
  worst case: drawing 10M random numbers costs more than the step itself.
- ``iteration``: one training iteration, ``zero_grad`` + forward + backward
  (batch of ``--batch`` rows) + ``step``, which is what a training loop pays.
  Target: <= 1.15 for Gaussian noise.

``free_noise`` is the floor of every additive generator: δ drawn once before
the timing (so drawing costs nothing) and added to the gradients in place
(``torch._foreach_add_``, one memory pass) before the bare step. Its step
ratio is what no sampler, however fast, can beat without fusing the noise
into the base optimizer's own kernels. ``sampler_ns_per_value`` is what drawing
costs: nanoseconds per float32 normal on one core, for torch's CPU generator
and for the fastest CPU sampler in this package (numpy's PCG64 through the
image noise's float32 Box–Muller transform).

Each figure is the median over ``--repeats`` timed calls after a warm-up,
per step or per iteration (a timed call runs 4 consecutive iterations),
with the IQR; the ratio is of medians
(and, in brackets, of minima, which a
busy machine disturbs less). It also records a digest of the
parameters after 5 seeded steps per generator on a small model (same
machine, same torch: the same bits), to track output equality across commits.

Run:  .venv/bin/python benchmarks/optim.py [--quick] [--threads N] [--json]
(JSON goes to benchmarks/results/optim.json).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, run_metadata, time_it, write_json

from perturbkit.optim import (
    CurvatureGradientNoise,
    DropGradientNoise,
    GaussianGradientNoise,
    LaplaceGradientNoise,
    OrthogonalGradientNoise,
    PerturbedOptimizer,
    RegularizationGradient,
    ScaledGradientNoise,
    UniformGradientNoise,
)

GENERATORS = {
    "gaussian": lambda: GaussianGradientNoise(0.01),
    "uniform": lambda: UniformGradientNoise(0.01),
    "laplace": lambda: LaplaceGradientNoise(0.01),
    "drop": lambda: DropGradientNoise(0.1),
    "scaled": lambda: ScaledGradientNoise(0.1),
    "orthogonal": lambda: OrthogonalGradientNoise(0.01),
    "curvature": lambda: CurvatureGradientNoise(0.1),
    "regularization": lambda: RegularizationGradient(1e-4),
}
BASES = {
    "sgd_momentum": lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-4),
}
TARGET = 1.15
ITERATIONS_PER_CALL = 4
"""Consecutive training iterations per timed call."""


def make_model(widths: list[int], seed: int = 0) -> torch.nn.Module:
    """An MLP initialised from an explicit generator (the global RNG is left alone)."""
    gen = torch.Generator().manual_seed(seed)
    layers: list[torch.nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        for a, b in itertools.pairwise(widths):
            lin = torch.nn.Linear(a, b)
            with torch.no_grad():
                lin.weight.normal_(0, a**-0.5, generator=gen)
                lin.bias.zero_()
            layers += [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def digest(model: torch.nn.Module) -> str:
    h = hashlib.blake2b(digest_size=8)
    for p in model.parameters():
        h.update(p.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def bench(widths: list[int], batch: int, repeats: int, bases: list[str]) -> dict:
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(batch, widths[0], generator=gen)
    y = torch.randint(0, widths[-1], (batch,), generator=gen)
    out: dict = {}
    for base_name in bases:
        model = make_model(widths)
        params = list(model.parameters())
        loss = torch.nn.functional.cross_entropy(model(X), y)
        loss.backward()
        fixed = [p.grad.clone() for p in params]
        bare = BASES[base_name](params)
        wrapped = {
            name: PerturbedOptimizer(BASES[base_name](params), make(), seed=0)
            for name, make in GENERATORS.items()
        }

        def step_fn(opt, params=params, fixed=fixed):
            def run():
                for p, g in zip(params, fixed):
                    p.grad.copy_(g)
                opt.step()

            return run

        def iteration_fn(opt, model=model):
            def run():
                for _ in range(ITERATIONS_PER_CALL):
                    opt.zero_grad()
                    torch.nn.functional.cross_entropy(model(X), y).backward()
                    opt.step()

            return run

        # The floor of any additive noise: δ drawn once beforehand (free), so a step pays
        # only the in-place add to the gradients, one memory pass, then the bare step.
        free = [torch.randn(p.shape, generator=gen) for p in params]

        class FreeNoise:
            def __init__(self, base=bare, params=params, free=free):
                self.base, self.params, self.free = base, params, free

            def zero_grad(self):
                self.base.zero_grad()

            def step(self):
                torch._foreach_add_([p.grad for p in self.params], self.free, alpha=0.01)
                self.base.step()

        res: dict = {}
        for kind, fn, reps, per_call in (
            ("step", step_fn, repeats * 3, 1),
            ("iteration", iteration_fn, repeats, ITERATIONS_PER_CALL),
        ):
            fns = {
                "bare": fn(bare),
                "free_noise": fn(FreeNoise()),
                **{k: fn(o) for k, o in wrapped.items()},
            }
            times = interleaved(fns, repeats=reps, warmup=1)
            times = {
                k: {m: (x / per_call if m in ("median", "iqr", "min") else x) for m, x in v.items()}
                for k, v in times.items()
            }
            bare_t = times["bare"]
            res[kind] = {
                k: {
                    **v,
                    "ratio": v["median"] / bare_t["median"],
                    "ratio_min": v["min"] / bare_t["min"],
                }
                for k, v in times.items()
            }
        out[base_name] = res
    return out


def sampler_costs(n: int = 1 << 20, repeats: int = 15) -> dict[str, float]:
    """Nanoseconds per standard normal float32 on one core: torch's CPU generator (what the
    optimizers draw with), and the fastest CPU sampler in this package (numpy's PCG64 through
    a float32 Box–Muller transform, the image noise's)."""
    import numpy as np

    from perturbkit.perturbations.image import _standard_normal

    buf = torch.empty(n)
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    fns = {
        "torch_normal": lambda: buf.normal_(generator=gen),
        "numpy_pcg64_box_muller": lambda: _standard_normal(rng, (n,)),
    }
    return {name: time_it(fn, repeats=repeats)["min"] / n * 1e9 for name, fn in fns.items()}


def digests() -> dict[str, str]:
    """Parameters after 5 seeded steps per generator on a small model."""
    widths = [32, 64, 10]
    gen = torch.Generator().manual_seed(2)
    X = torch.randn(64, widths[0], generator=gen)
    y = torch.randint(0, widths[-1], (64,), generator=gen)
    out = {}
    for name, make in GENERATORS.items():
        model = make_model(widths)
        opt = PerturbedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), make(), seed=0)
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X), y).backward()
            opt.step()
        out[name] = digest(model)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a ~1M-parameter model, few repeats")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--json", action="store_true", help="write benchmarks/results/optim.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    widths = [256, 1024, 512, 256] if args.quick else [1024, 2048, 2048, 1280, 1024]
    repeats = args.repeats or (3 if args.quick else 7)
    size = n_params(make_model(widths))
    results = bench(widths, args.batch, repeats, list(BASES))
    payload = {
        "benchmark": "optim",
        "config": {
            "widths": widths,
            "n_params": size,
            "batch": args.batch,
            "repeats": repeats,
            "dtype": "float32",
            "device": "cpu",
            "target_gaussian_iteration_ratio": TARGET,
        },
        "results": results,
        "digests": digests(),
        "sampler_ns_per_value": sampler_costs(),
        "meta": run_metadata(),
    }
    threads = torch.get_num_threads()
    print(f"model: {size / 1e6:.1f}M parameters, batch {args.batch}, {threads} threads")
    for base, res in results.items():
        print(f"\n{base}: ratio of medians to the bare base [of minima] (median ms, IQR ms)")
        print(f"  {'generator':<15}{'step':>30}{'iteration':>34}")
        for name in ["bare", "free_noise", *GENERATORS]:
            s, it = res["step"][name], res["iteration"][name]
            print(
                f"  {name:<15}{s['ratio']:6.2f}x [{s['ratio_min']:5.2f}x] "
                f"({s['median'] * 1e3:7.1f}, {s['iqr'] * 1e3:5.1f})"
                f"{it['ratio']:8.2f}x [{it['ratio_min']:5.2f}x] "
                f"({it['median'] * 1e3:7.1f}, {it['iqr'] * 1e3:5.1f})"
            )
    costs = payload["sampler_ns_per_value"]
    print(
        "\none core, ns per float32 normal (fastest of 15 x 2**20): "
        + ", ".join(f"{k} {v:.2f}" for k, v in costs.items())
    )
    print()
    for name in ("gaussian",):
        g = results["sgd_momentum"]["iteration"][name]["ratio"]
        verdict = "meets" if g <= TARGET else "misses"
        print(
            f"{name}, SGD momentum, training iteration: {g:.3f}x ({verdict} the {TARGET}x target)"
        )
    if args.json:
        path = write_json("optim", payload)
        print(f"wrote {path}")
    else:
        print(json.dumps({"digests": payload["digests"]}))


if __name__ == "__main__":
    main()
