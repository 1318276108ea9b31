"""Blocked CPU streams: the fused draw-and-add path, its bits, its threads and its statistics."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _optim_helpers import load_checkpoint  # noqa: E402

from perturbkit.optim import (  # noqa: E402
    GaussianGradientNoise,
    LaplaceGradientNoise,
    PerturbedOptimizer,
    StabilityController,
    UniformGradientNoise,
)
from perturbkit.optim._streams import BLOCK, TorchStreams, Workspace, _Buffer  # noqa: E402
from perturbkit.optim.generators import _normal  # noqa: E402

# tensors whose pieces cross the 2**20 block boundaries: 3 blocks, a tiny tensor between
SIZES = ((BLOCK // 2 + 3,), (700, 1500), (5,), (BLOCK + 11,))
TOTAL = sum(math.prod(s) for s in SIZES)
GENERATORS = [GaussianGradientNoise, UniformGradientNoise]
FUSED = [*GENERATORS, LaplaceGradientNoise]  # every generator with a fused draw-and-add


def reference(gen_cls, seed: int) -> torch.Tensor:
    """Unit noise of the whole group, flat: block k on the SeedSequence(seed, (k,)) stream."""
    flat = torch.empty(TOTAL)
    for k, block in enumerate(flat.split(BLOCK)):
        key = () if k == 0 else (k,)
        state = np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint64)[0]
        g = torch.Generator().manual_seed(int(state))
        if gen_cls is GaussianGradientNoise:
            block.normal_(generator=g)
        else:
            block.uniform_(-math.sqrt(3.0), math.sqrt(3.0), generator=g)
    return flat


def perturbed_grads(gen, *, seed=0, grads=None, stability=None, threads=None, steps=1):
    """The gradients after the perturbation (SGD with lr=0 leaves the parameters alone)."""
    params = [torch.nn.Parameter(torch.zeros(s)) for s in SIZES]
    opt = PerturbedOptimizer(torch.optim.SGD(params, lr=0.0), gen, seed=seed, stability=stability)
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        for _ in range(steps):
            for p, g in zip(params, grads or [torch.zeros(s) for s in SIZES]):
                p.grad = g.clone()
            opt.step()
    finally:
        torch.set_num_threads(before)
    return torch.cat([p.grad.reshape(-1) for p in params])


@pytest.mark.parametrize("gen_cls", GENERATORS)
def test_fused_noise_is_the_blocked_reference_stream(gen_cls):
    got = perturbed_grads(gen_cls(0.25), seed=7)
    assert torch.equal(got, 0.25 * reference(gen_cls, 7))


@pytest.mark.parametrize("gen_cls", FUSED)
def test_noise_does_not_depend_on_the_thread_count(gen_cls):
    one = perturbed_grads(gen_cls(0.1), seed=3, threads=1, steps=2)
    two = perturbed_grads(gen_cls(0.1), seed=3, threads=2, steps=2)
    assert torch.equal(one, two)


@pytest.mark.parametrize("gen_cls", FUSED)
def test_fused_add_equals_draw_then_add_bit_for_bit(gen_cls):
    g = torch.Generator().manual_seed(5)
    grads = [torch.randn(s, generator=g) for s in SIZES]
    fused = perturbed_grads(gen_cls(0.3), seed=1, grads=grads, steps=2)
    # a noise bound that never binds takes the unfused path (delta, then _foreach_add_)
    loose = StabilityController(max_noise_ratio=1e30, detect_divergence=False)
    unfused = perturbed_grads(gen_cls(0.3), seed=1, grads=grads, stability=loose, steps=2)
    assert torch.equal(fused, unfused)


def test_non_contiguous_gradients_get_the_same_noise():
    grads = [torch.zeros(s) for s in SIZES]
    grads[1] = torch.zeros(SIZES[1][::-1]).T  # a transposed (non-contiguous) gradient
    assert not grads[1].is_contiguous()
    got = perturbed_grads(GaussianGradientNoise(1.0), seed=2, grads=grads)
    assert torch.equal(got, reference(GaussianGradientNoise, 2))


@pytest.mark.parametrize("gen_cls", FUSED)
def test_noise_has_mean_zero_and_std_sigma_in_every_tensor_and_block(gen_cls):
    sigma = 0.5
    d = perturbed_grads(gen_cls(sigma), seed=11).double()
    parts = list(d.split([math.prod(s) for s in SIZES])) + list(d.split(BLOCK))
    for x in parts:
        n = x.numel()
        if n < 1000:
            continue
        # 6 standard errors: a correct draw fails with probability < 1e-8 per check
        assert abs(float(x.mean())) < 6 * sigma / math.sqrt(n)
        kurtosis = {GaussianGradientNoise: 3.0, UniformGradientNoise: 1.8}.get(gen_cls, 6.0)
        var_se = sigma**2 * math.sqrt((kurtosis - 1) / n)  # SE of the sample variance
        assert abs(float(x.var()) - sigma**2) < 6 * var_se
    a, b = d[:BLOCK], d[BLOCK : 2 * BLOCK]
    corr = float(((a - a.mean()) * (b - b.mean())).mean() / (a.std() * b.std()))
    assert abs(corr) < 6 / math.sqrt(BLOCK)  # blocks are independent streams


@pytest.mark.parametrize("gen_cls", FUSED)
def test_resume_of_a_multi_tensor_blocked_run_is_bit_identical(gen_cls):
    g = torch.Generator().manual_seed(9)
    grads = [[torch.randn(s, generator=g) for s in SIZES] for _ in range(4)]

    def build(seed):
        params = [torch.nn.Parameter(torch.zeros(s)) for s in SIZES]
        base = torch.optim.Adam(params, lr=1e-2)
        return params, PerturbedOptimizer(base, gen_cls(0.1), seed=seed)

    def steps(params, opt, gs):
        for step_grads in gs:
            for p, gr in zip(params, step_grads):
                p.grad = gr.clone()
            opt.step()

    params, opt = build(1)
    steps(params, opt, grads)
    want = [p.detach().clone() for p in params]
    params, opt = build(1)
    steps(params, opt, grads[:2])
    sd = copy.deepcopy(opt.state_dict())
    assert sorted(sd["perturbkit"]["streams"]["states"]) == ["cpu", "cpu#1", "cpu#2"]
    saved = [p.detach().clone() for p in params]
    params2, opt2 = build(2)
    load_checkpoint(params2, opt2, saved, sd)
    steps(params2, opt2, grads[2:])
    assert all(torch.equal(p.detach(), w) for p, w in zip(params2, want))


def test_workspace_add_reuses_its_buffer_and_matches_draw():
    like = [torch.zeros(s) for s in SIZES]
    work, streams = Workspace(), TorchStreams(4, owner="test")
    work.add(like, "slot", _normal, 2.0, streams)
    buf = work._cache[("slot", "cpu", torch.float32)].buf
    work.add(like, "slot", _normal, 2.0, streams)
    assert work._cache[("slot", "cpu", torch.float32)].buf is buf  # no allocation per step
    fresh, streams2 = Workspace(), TorchStreams(4, owner="test")
    first = [v.clone() for v in fresh.draw(like, "slot", _normal, streams2)]
    second = fresh.draw(like, "slot", _normal, streams2)
    for t, a, b in zip(like, first, second):
        assert torch.equal(t, 2.0 * a + 2.0 * b)


def test_buffers_off_the_cpu_span_more_than_one_block():
    """One block off the CPU (meta stands in for a GPU): groups over 2**20 elements work."""
    like = [torch.empty(s, device="meta") for s in SIZES]
    entry = _Buffer(like, torch.device("meta"), torch.float32)  # raised IndexError before
    assert len(entry.blocks) == 1 and entry.blocks[0].numel() == TOTAL
    starts = np.cumsum([0] + [math.prod(s) for s in SIZES])[:-1]
    assert entry.pieces == [
        [(i, 0, math.prod(s), int(a)) for i, (s, a) in enumerate(zip(SIZES, starts))]
    ]
    assert [tuple(v.shape) for v in entry.views] == [tuple(s) for s in SIZES]


def test_a_subclass_that_overrides_delta_is_not_fused():
    class Doubled(GaussianGradientNoise):
        def delta(self, params, grads, *, strength, draw, state):
            noise, scale = super().delta(params, grads, strength=strength, draw=draw, state=state)
            return noise, 2.0 * scale

    plain = perturbed_grads(GaussianGradientNoise(0.5), seed=3)
    doubled = perturbed_grads(Doubled(0.5), seed=3)
    assert torch.equal(doubled, 2.0 * plain)
