"""The δ_t generators: their distributions, their seeding, their dtype, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from perturbkit.exceptions import ParameterError  # noqa: E402
from perturbkit.optim import (  # noqa: E402
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

N = 200_000


def realised(gen, grad, *, param=None, seed=0, steps=1):
    """δ as the optimizer applies it: SGD with lr=1 moves θ by −(g + δ)."""
    p = torch.nn.Parameter(torch.zeros_like(grad) if param is None else param.clone())
    opt = PerturbedOptimizer(torch.optim.SGD([p], lr=1.0), gen, seed=seed)
    out = []
    for _ in range(steps):
        before = p.detach().clone()
        p.grad = grad.clone()
        opt.step()
        out.append(-(p.detach() - before) - grad)
    return out[0] if steps == 1 else out


def kurtosis(x):
    x = x - x.mean()
    return float((x**4).mean() / (x**2).mean() ** 2)


@pytest.mark.parametrize(
    ("gen", "kurt"),
    [
        (GaussianGradientNoise(sigma=0.3), 3.0),
        (UniformGradientNoise(sigma=0.3), 1.8),
        (LaplaceGradientNoise(sigma=0.3), 6.0),
    ],
)
def test_additive_noise_has_mean_zero_std_sigma_and_its_shape(gen, kurt):
    d = realised(gen, torch.zeros(N, dtype=torch.float64))
    # 6 standard errors: a correct draw fails this with probability < 1e-8
    assert abs(float(d.mean())) < 6 * 0.3 / math.sqrt(N)
    assert float(d.std()) == pytest.approx(0.3, rel=0.02)
    assert kurtosis(d) == pytest.approx(kurt, abs=0.6)
    if isinstance(gen, UniformGradientNoise):
        assert float(d.abs().max()) <= math.sqrt(3) * 0.3 + 1e-12


def test_noise_is_added_to_the_gradient_not_instead_of_it():
    g = torch.full((N,), 2.0, dtype=torch.float64)
    p = torch.nn.Parameter(torch.zeros(N, dtype=torch.float64))
    opt = PerturbedOptimizer(torch.optim.SGD([p], lr=1.0), GaussianGradientNoise(0.1), seed=1)
    p.grad = g.clone()
    opt.step()
    assert float(-p.detach().mean()) == pytest.approx(2.0, abs=6 * 0.1 / math.sqrt(N))
    # .grad holds the perturbed gradient afterwards
    assert float((p.grad - g).std()) == pytest.approx(0.1, rel=0.02)


def test_drop_noise_zeroes_a_rate_share_and_is_unbiased():
    g = torch.linspace(1.0, 2.0, N, dtype=torch.float64)
    d = realised(DropGradientNoise(rate=0.25), g)
    perturbed = g + d
    dropped = perturbed == 0
    assert float(dropped.double().mean()) == pytest.approx(0.25, abs=6 * math.sqrt(0.25 * 0.75 / N))
    torch.testing.assert_close(perturbed[~dropped], g[~dropped] / 0.75, rtol=1e-12, atol=0)
    assert float(perturbed.mean()) == pytest.approx(float(g.mean()), rel=0.01)


def test_scaled_noise_is_relative_to_each_coordinate():
    g = torch.linspace(0.5, 4.0, N, dtype=torch.float64)
    d = realised(ScaledGradientNoise(sigma=0.2), g)
    ratio = d / g
    assert float(ratio.std()) == pytest.approx(0.2, rel=0.02)
    assert abs(float(ratio.mean())) < 6 * 0.2 / math.sqrt(N)
    assert torch.equal(realised(ScaledGradientNoise(sigma=0.2), torch.zeros(10)), torch.zeros(10))


def test_orthogonal_noise_is_orthogonal_to_each_gradient_tensor():
    gen_g = torch.Generator().manual_seed(3)
    grads = [
        torch.randn(50, 40, generator=gen_g, dtype=torch.float64),
        torch.zeros(7, dtype=torch.float64),
    ]
    ps = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    opt = PerturbedOptimizer(torch.optim.SGD(ps, lr=1.0), OrthogonalGradientNoise(0.5), seed=0)
    for p, g in zip(ps, grads):
        p.grad = g.clone()
    opt.step()
    deltas = [-p.detach() - g for p, g in zip(ps, grads)]
    dot = float((deltas[0] * grads[0]).sum())
    assert abs(dot) < 1e-9 * float(deltas[0].norm() * grads[0].norm())
    assert float(deltas[0].std()) == pytest.approx(0.5, rel=0.05)
    # a zero gradient gets the unprojected noise
    assert float(deltas[1].abs().sum()) > 0


def test_curvature_noise_follows_the_second_moment():
    g = torch.cat([torch.full((N // 2,), 0.1), torch.full((N // 2,), 3.0)]).double()
    d = realised(CurvatureGradientNoise(sigma=0.5, beta=0.9), g)
    # first step: v̂ = g² exactly, so δ / |g| ~ N(0, σ²) in both halves
    lo, hi = d[: N // 2] / 0.1, d[N // 2 :] / 3.0
    assert float(lo.std()) == pytest.approx(0.5, rel=0.03)
    assert float(hi.std()) == pytest.approx(0.5, rel=0.03)


def test_curvature_noise_keeps_its_state_across_steps():
    g = torch.full((N,), 2.0, dtype=torch.float64)
    ds = realised(CurvatureGradientNoise(sigma=0.5, beta=0.9), g, steps=3)
    for d in ds:  # a constant gradient keeps v̂ = g² at every step
        assert float(d.std()) == pytest.approx(1.0, rel=0.03)


def test_regularization_gradient_is_lambda_times_the_penalty_gradient():
    theta = torch.tensor([-2.0, 0.0, 0.5, 3.0], dtype=torch.float64)
    g = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    d2 = realised(RegularizationGradient(lam=0.1), g, param=theta)
    torch.testing.assert_close(d2, 0.1 * theta, rtol=1e-12, atol=1e-15)
    d1 = realised(RegularizationGradient(lam=0.1, penalty="l1"), g, param=theta)
    torch.testing.assert_close(d1, 0.1 * torch.sign(theta), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_noise_is_drawn_in_the_parameters_dtype(dtype):
    p = torch.nn.Parameter(torch.zeros(1000, dtype=dtype))
    opt = PerturbedOptimizer(torch.optim.SGD([p], lr=1.0), GaussianGradientNoise(1.0), seed=0)
    p.grad = torch.zeros_like(p)
    opt.step()
    assert p.dtype == dtype and p.grad.dtype == dtype
    if dtype == torch.float64:  # not float32 draws cast up
        assert not torch.equal(p.detach(), p.detach().float().double())
    assert float(p.detach().double().std()) == pytest.approx(1.0, rel=0.1)


ALL = [
    GaussianGradientNoise(0.1),
    UniformGradientNoise(0.1),
    LaplaceGradientNoise(0.1),
    DropGradientNoise(0.2),
    ScaledGradientNoise(0.3),
    OrthogonalGradientNoise(0.1),
    CurvatureGradientNoise(0.3),
]


@pytest.mark.parametrize("gen", ALL, ids=lambda g: g.name)
def test_same_seed_same_bits_other_seed_other_bits(gen):
    g = torch.linspace(-1, 1, 1000)
    a, b, c = (realised(gen, g, seed=s) for s in (5, 5, 6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_seed_resolution_optimizer_then_generator_then_fresh_entropy():
    g = torch.linspace(-1, 1, 100)
    by_gen = realised(GaussianGradientNoise(0.1, seed=11), g, seed=None)
    assert torch.equal(by_gen, realised(GaussianGradientNoise(0.1), g, seed=11))
    p = torch.nn.Parameter(torch.zeros(3))
    opt = PerturbedOptimizer(torch.optim.SGD([p], lr=1.0), GaussianGradientNoise(0.1))
    assert isinstance(opt.seed_, int)  # fresh entropy, recorded
    other = PerturbedOptimizer(
        torch.optim.SGD([p], lr=1.0), GaussianGradientNoise(0.1, seed=1), seed=2
    )
    assert other.seed_ == 2


def test_a_torch_generator_as_seed_is_used_as_is():
    g = torch.linspace(-1, 1, 100)
    a = realised(GaussianGradientNoise(0.1), g, seed=torch.Generator().manual_seed(4))
    b = realised(GaussianGradientNoise(0.1), g, seed=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)


def test_cpu_stream_is_seeded_from_the_seed_sequence():
    p = torch.nn.Parameter(torch.zeros(10, dtype=torch.float64))
    opt = PerturbedOptimizer(torch.optim.SGD([p], lr=1.0), GaussianGradientNoise(1.0), seed=7)
    p.grad = torch.zeros_like(p)
    opt.step()
    state = np.random.SeedSequence(7).generate_state(1, np.uint64)[0]
    expected = torch.empty(10, dtype=torch.float64).normal_(
        generator=torch.Generator().manual_seed(int(state))
    )
    assert torch.equal(-p.detach(), expected)


def test_bad_strength_is_one_clear_line():
    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ParameterError) as e:
        PerturbedOptimizer(torch.optim.SGD([p], lr=0.1), GaussianGradientNoise(sigma=-0.1))
    assert str(e.value) == (
        "The 'sigma' parameter of GaussianGradientNoise must be a float in the range [0, inf). "
        "Got -0.1 instead."
    )
    with pytest.raises(ParameterError, match=r"'rate' parameter of DropGradientNoise .*\[0, 1\)"):
        PerturbedOptimizer(torch.optim.SGD([p], lr=0.1), DropGradientNoise(rate=1.0))
    with pytest.raises(ParameterError, match="'penalty' parameter of RegularizationGradient"):
        PerturbedOptimizer(torch.optim.SGD([p], lr=0.1), RegularizationGradient(penalty="l3"))
    with pytest.raises(ParameterError, match="'seed' parameter of GaussianGradientNoise"):
        PerturbedOptimizer(torch.optim.SGD([p], lr=0.1), GaussianGradientNoise(seed=-1))


def test_drop_rate_pushed_to_one_by_a_schedule_is_caught():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = PerturbedOptimizer(
        torch.optim.SGD([p], lr=0.1), DropGradientNoise(rate=0.6), schedule=lambda t: 2.0
    )
    p.grad = torch.ones(3)
    with pytest.raises(ParameterError, match=r"after the schedule.*Got 1.2 instead"):
        opt.step()


def test_generators_print_and_compare_by_parameters():
    assert repr(GaussianGradientNoise(0.5)) == "GaussianGradientNoise(sigma=0.5, seed=None)"
    assert GaussianGradientNoise(0.5) == GaussianGradientNoise(0.5)
    assert GaussianGradientNoise(0.5) != UniformGradientNoise(0.5)
    assert DropGradientNoise(0.2).to_dict() == {
        "name": "drop",
        "class": "DropGradientNoise",
        "params": {"rate": 0.2},
    }


def test_large_cpu_draws_are_blocked_and_do_not_depend_on_the_thread_count():
    from perturbkit.optim._streams import BLOCK

    n = 2 * BLOCK + 123
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = realised(GaussianGradientNoise(1.0), torch.zeros(n), seed=9)
        torch.set_num_threads(max(2, threads))
        many = realised(GaussianGradientNoise(1.0), torch.zeros(n), seed=9)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, many)
    # block k draws on the generator seeded from SeedSequence(seed, spawn_key=(k,))
    for k in (0, 2):
        key = () if k == 0 else (k,)
        state = np.random.SeedSequence(9, spawn_key=key).generate_state(1, np.uint64)[0]
        size = min(BLOCK, n - k * BLOCK)
        want = torch.empty(size).normal_(generator=torch.Generator().manual_seed(int(state)))
        assert torch.equal(one[k * BLOCK : k * BLOCK + size], want)
