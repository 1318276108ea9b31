"""PerturbedOptimizer as a drop-in: groups, schedulers, state dicts, resume, bad input."""

from __future__ import annotations

import copy
import io
import math

import pytest

torch = pytest.importorskip("torch")

from _optim_helpers import load_checkpoint, make_data, make_params, mlp_loss  # noqa: E402

from perturbkit.exceptions import ParameterError  # noqa: E402
from perturbkit.optim import (  # noqa: E402
    AdaptiveSchedule,
    AnnealedSchedule,
    CosineSchedule,
    CurvatureGradientNoise,
    DropGradientNoise,
    ExponentialSchedule,
    GaussianGradientNoise,
    LaplaceGradientNoise,
    OrthogonalGradientNoise,
    PerturbedOptimizer,
    RegularizationGradient,
    StabilityController,
    StepSchedule,
    WarmupSchedule,
)


def train(opt, params, X, y, n_steps, *, scheduler=None, with_loss=True):
    for _ in range(n_steps):
        opt.zero_grad()
        loss = mlp_loss(params, X, y)
        loss.backward()
        if with_loss:
            opt.step(loss=loss)
        else:
            opt.step()
        if scheduler is not None:
            scheduler.step()


# -- resume: bit-identical ---------------------------------------------------------------
SETUPS = {
    "sgd-nesterov-gaussian-annealed": (
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
        lambda: GaussianGradientNoise(0.05),
        lambda: AnnealedSchedule(0.55),
        lambda: None,
    ),
    "sgd-plain-orthogonal-warmup": (
        lambda ps: torch.optim.SGD(ps, lr=0.05),
        lambda: OrthogonalGradientNoise(0.05),
        lambda: WarmupSchedule(3, then=ExponentialSchedule(0.9)),
        lambda: None,
    ),
    "adam-curvature-adaptive": (
        lambda ps: torch.optim.Adam(ps, lr=1e-2),
        lambda: CurvatureGradientNoise(0.3, beta=0.9),
        lambda: AdaptiveSchedule("loss", patience=2, rise=1.5, rise_below=10.0),
        lambda: StabilityController(max_noise_ratio=0.5),
    ),
    "adamw-drop-step": (
        lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.01),
        lambda: DropGradientNoise(0.3),
        lambda: StepSchedule(4, gamma=0.5),
        lambda: None,
    ),
    "rmsprop-laplace-cosine-rollback": (
        lambda ps: torch.optim.RMSprop(ps, lr=1e-3, momentum=0.5),
        lambda: LaplaceGradientNoise(0.05),
        lambda: CosineSchedule(20),
        lambda: StabilityController(clip_norm=0.5, clip_value=0.2, snapshot_every=2),
    ),
    "sgd-regularization": (
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
        lambda: RegularizationGradient(1e-2, penalty="l1"),
        lambda: None,
        lambda: None,
    ),
}


@pytest.mark.parametrize("name", list(SETUPS))
def test_resume_is_bit_identical_to_an_uninterrupted_run(name):
    make_base, make_gen, make_sched, make_stab = SETUPS[name]
    X, y = make_data()

    def build(seed):
        ps = make_params(0)
        opt = PerturbedOptimizer(
            make_base(ps), make_gen(), schedule=make_sched(), stability=make_stab(), seed=seed
        )
        lr_sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.7)
        return ps, opt, lr_sched

    ps, opt, lr_sched = build(seed=123)
    train(opt, ps, X, y, 12, scheduler=lr_sched)
    uninterrupted = [p.detach().clone() for p in ps]

    ps, opt, lr_sched = build(seed=123)
    train(opt, ps, X, y, 6, scheduler=lr_sched)
    buf = io.BytesIO()
    torch.save(
        {"params": [p.detach() for p in ps], "opt": opt.state_dict(), "lr": lr_sched.state_dict()},
        buf,
    )
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)  # the checkpoint loads safely

    ps2, opt2, lr2 = build(seed=999)  # a different seed: the checkpoint restores the streams
    load_checkpoint(ps2, opt2, ckpt["params"], ckpt["opt"])
    lr2.load_state_dict(ckpt["lr"])
    train(opt2, ps2, X, y, 6, scheduler=lr2)
    for a, b in zip(uninterrupted, ps2):
        assert torch.equal(a, b.detach())
    assert opt2.n_steps_ == 12
    assert opt2.seed_ == 123


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["sgd-nesterov-gaussian-annealed", "adam-curvature-adaptive"])
def test_cuda_draws_on_the_device_and_resumes_bit_identically(name):  # pragma: no cover - GPU
    make_base, make_gen, make_sched, make_stab = SETUPS[name]
    X, y = (t.cuda() for t in make_data())

    def build(seed):
        ps = [torch.nn.Parameter(p.detach().cuda()) for p in make_params(0)]
        opt = PerturbedOptimizer(
            make_base(ps), make_gen(), schedule=make_sched(), stability=make_stab(), seed=seed
        )
        return ps, opt

    ps, opt = build(7)
    train(opt, ps, X, y, 8)
    whole = [p.detach().clone() for p in ps]
    gens = opt._streams._gens
    assert set(gens) == {"cuda:0"} and gens["cuda:0"].device.type == "cuda"  # no CPU stream
    assert all(p.device.type == "cuda" and p.grad.device.type == "cuda" for p in ps)

    ps, opt = build(7)
    train(opt, ps, X, y, 4)
    ckpt = copy.deepcopy({"params": [p.detach() for p in ps], "opt": opt.state_dict()})
    ps2, opt2 = build(99)
    load_checkpoint(ps2, opt2, ckpt["params"], ckpt["opt"])
    train(opt2, ps2, X, y, 4)
    for a, b in zip(whole, ps2):
        assert torch.equal(a, b.detach())


def test_state_dict_keeps_the_base_format_and_loads_a_bare_checkpoint():
    X, y = make_data()
    ps = make_params()
    bare = torch.optim.SGD(ps, lr=0.1, momentum=0.9)
    train(bare, ps, X, y, 2, with_loss=False)
    opt = PerturbedOptimizer(
        torch.optim.SGD(make_params(), lr=0.1, momentum=0.9), GaussianGradientNoise(0.1), seed=0
    )
    opt.load_state_dict(bare.state_dict())  # a plain checkpoint: the noise starts afresh
    assert opt.n_steps_ == 0
    sd = opt.state_dict()
    assert {"state", "param_groups", "perturbkit"} <= set(sd)
    assert sd["perturbkit"]["generator"]["class"] == "GaussianGradientNoise"


# -- groups, schedulers, hooks -------------------------------------------------------------
def test_per_group_sigma():
    big = torch.nn.Parameter(torch.zeros(100_000, dtype=torch.float64))
    off = torch.nn.Parameter(torch.zeros(100_000, dtype=torch.float64))
    default = torch.nn.Parameter(torch.zeros(100_000, dtype=torch.float64))
    base = torch.optim.SGD(
        [{"params": [big], "sigma": 0.5}, {"params": [off], "sigma": 0.0}, {"params": [default]}],
        lr=1.0,
    )
    opt = PerturbedOptimizer(base, GaussianGradientNoise(0.1), seed=0)
    for p in (big, off, default):
        p.grad = torch.zeros_like(p)
    opt.step()
    assert float(big.detach().std()) == pytest.approx(0.5, rel=0.02)
    assert torch.equal(off.detach(), torch.zeros_like(off))
    assert float(default.detach().std()) == pytest.approx(0.1, rel=0.02)


def test_a_group_without_noise_steps_as_the_bare_optimizer_bit_for_bit():
    X, y = make_data()
    ps, ps_ref = make_params(), make_params()
    base = torch.optim.Adam([{"params": ps[:2], "sigma": 0.0}, {"params": ps[2:]}], lr=1e-2)
    opt = PerturbedOptimizer(base, GaussianGradientNoise(0.5), seed=0)
    ref = torch.optim.Adam(ps_ref, lr=1e-2)
    for o, params in ((ref, ps_ref), (opt, ps)):
        mlp_loss(params, X, y).backward()
        o.step()
    assert torch.equal(ps[0].detach(), ps_ref[0].detach())
    assert torch.equal(ps[1].detach(), ps_ref[1].detach())
    assert not torch.equal(ps[2].detach(), ps_ref[2].detach())


def test_bad_group_sigma_names_the_group():
    p, q = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    base = torch.optim.SGD([{"params": [p]}, {"params": [q], "sigma": -1.0}], lr=0.1)
    with pytest.raises(ParameterError, match=r"GaussianGradientNoise \(param group 1\)"):
        PerturbedOptimizer(base, GaussianGradientNoise(0.1))
    opt = PerturbedOptimizer(torch.optim.SGD([p], lr=0.1), GaussianGradientNoise(0.1))
    with pytest.raises(ParameterError, match="param group 1"):
        opt.add_param_group({"params": [q], "sigma": float("nan")})


def test_lr_schedulers_work_through_the_wrapper():
    X, y = make_data()
    ps = make_params()
    base = torch.optim.SGD(ps, lr=0.1, momentum=0.9)
    opt = PerturbedOptimizer(base, GaussianGradientNoise(0.01), seed=0)
    assert opt.param_groups is base.param_groups and opt.state is base.state
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    # filterwarnings=error: a mis-ordered step would raise here
    train(opt, ps, X, y, 4, scheduler=sched)
    assert base.param_groups[0]["lr"] == pytest.approx(0.025)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    plateau.step(1.0)
    plateau.step(2.0)
    assert base.param_groups[0]["lr"] == pytest.approx(0.0125)
    one = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=10)
    train(opt, ps, X, y, 3, scheduler=one)
    assert base.param_groups[0]["lr"] == one.get_last_lr()[0]


def test_groups_stay_linked_after_the_base_reloads_its_state():
    ps = make_params()
    base = torch.optim.SGD(ps, lr=0.1)
    opt = PerturbedOptimizer(base, GaussianGradientNoise(0.01), seed=0)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    opt.load_state_dict(copy.deepcopy(opt.state_dict()))  # the base replaces its group list
    assert opt.param_groups is base.param_groups
    for p in ps:
        p.grad = torch.zeros_like(p)
    opt.step()
    sched.step()
    assert base.param_groups[0]["lr"] == pytest.approx(0.05)


def test_zero_grad_step_hooks_and_closure():
    X, y = make_data()
    ps = make_params()
    opt = PerturbedOptimizer(torch.optim.SGD(ps, lr=0.1), GaussianGradientNoise(0.01), seed=0)
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = mlp_loss(ps, X, y)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and calls == ["pre", "post"]
    opt.zero_grad()
    assert all(p.grad is None for p in ps)


def test_no_generator_is_the_base_optimizer_plus_control():
    X, y = make_data()
    ps, ps_ref = make_params(), make_params()
    opt = PerturbedOptimizer(torch.optim.SGD(ps, lr=0.1, momentum=0.9))
    ref = torch.optim.SGD(ps_ref, lr=0.1, momentum=0.9)
    train(opt, ps, X, y, 3)
    train(ref, ps_ref, X, y, 3, with_loss=False)
    for a, b in zip(ps, ps_ref):
        assert torch.equal(a.detach(), b.detach())


# -- bad input -----------------------------------------------------------------------------
def test_base_must_be_an_optimizer_instance():
    ps = make_params()
    with pytest.raises(ParameterError) as e:
        PerturbedOptimizer(ps, GaussianGradientNoise(0.1))
    assert str(e.value) == (
        "The 'base' parameter of PerturbedOptimizer must be a torch.optim.Optimizer instance "
        "(e.g. torch.optim.SGD(model.parameters(), lr=0.1)). Got list instead."
    )
    with pytest.raises(ParameterError, match="Got the class SGD instead; construct it first"):
        PerturbedOptimizer(torch.optim.SGD, GaussianGradientNoise(0.1))
    with pytest.raises(ParameterError, match="cannot be LBFGS"):
        PerturbedOptimizer(torch.optim.LBFGS(ps), GaussianGradientNoise(0.1))
    with pytest.raises(ParameterError, match=r"'generator' parameter .* Got the class"):
        PerturbedOptimizer(torch.optim.SGD(ps, lr=0.1), GaussianGradientNoise)
    with pytest.raises(ParameterError, match=r"'generator' parameter .* Got float instead"):
        PerturbedOptimizer(torch.optim.SGD(ps, lr=0.1), 0.1)


def test_a_schedule_that_yields_nan_is_one_clear_line():
    ps = make_params()
    opt = PerturbedOptimizer(
        torch.optim.SGD(ps, lr=0.1),
        GaussianGradientNoise(0.1),
        schedule=lambda t: 1.0 if t < 2 else math.nan,
    )
    for p in ps:
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.step()
    with pytest.raises(ParameterError) as e:
        opt.step()
    assert str(e.value) == (
        "The schedule of PerturbedOptimizer must yield a finite float >= 0. Got nan at step 2 "
        "instead."
    )


def test_a_step_whose_schedule_fails_changes_nothing():
    """The factor is checked before clipping, snapshots and the controller's bookkeeping."""
    from perturbkit.optim import AdaptiveSchedule, StabilityController

    class Flaky(AdaptiveSchedule):  # observes the loss like any adaptive schedule, then NaN
        def __call__(self, t: int) -> float:
            return math.nan if t == 2 else super().__call__(t)

    ps = make_params()
    stab = StabilityController(clip_norm=1e-3, rollback=True, snapshot_every=1)
    sched = Flaky(monitor="loss")
    opt = PerturbedOptimizer(
        torch.optim.SGD(ps, lr=0.1),
        GaussianGradientNoise(0.1),
        schedule=sched,
        stability=stab,
        seed=0,
    )
    for loss in (1.0, 0.5):
        for p in ps:
            p.grad = torch.ones_like(p)
        opt.step(loss=loss)
    for p in ps:
        p.grad = torch.ones_like(p)
    before = (
        [p.detach().clone() for p in ps],
        dict(stab.counts),
        len(stab.events),
        sched.state_dict(),
    )
    with pytest.raises(ParameterError, match="Got nan at step 2"):
        opt.step(loss=0.25)
    for p, q in zip(ps, before[0]):
        torch.testing.assert_close(p.detach(), q)
        torch.testing.assert_close(p.grad, torch.ones_like(p))  # not clipped
    assert (dict(stab.counts), len(stab.events), sched.state_dict()) == before[1:]
    assert opt.n_steps_ == 2


def test_a_generator_on_another_device_is_one_clear_line():
    p = torch.nn.Parameter(torch.zeros(3, device="meta"))
    with pytest.raises(ParameterError) as e:
        PerturbedOptimizer(
            torch.optim.SGD([p], lr=0.1), GaussianGradientNoise(0.1), seed=torch.Generator()
        )
    assert str(e.value) == (
        "The 'seed' generator of PerturbedOptimizer is on cpu, but parameter 0 is on meta:0; "
        "pass a torch.Generator on meta:0 or an int seed (one stream per device)."
    )
    assert "\n" not in str(e.value)


def test_bad_seed_and_bad_stability_and_missing_loss():
    ps = make_params()
    with pytest.raises(ParameterError, match="'seed' parameter of PerturbedOptimizer"):
        PerturbedOptimizer(torch.optim.SGD(ps, lr=0.1), GaussianGradientNoise(0.1), seed="x")
    with pytest.raises(ParameterError, match="'stability' parameter"):
        PerturbedOptimizer(torch.optim.SGD(ps, lr=0.1), stability={"clip_norm": 1})
    with pytest.raises(ParameterError, match="'clip_norm' parameter of StabilityController"):
        PerturbedOptimizer(torch.optim.SGD(ps, lr=0.1), stability=StabilityController(clip_norm=-1))
    opt = PerturbedOptimizer(
        torch.optim.SGD(ps, lr=0.1), GaussianGradientNoise(0.1), schedule=AdaptiveSchedule()
    )
    with pytest.raises(ParameterError, match=r"needs the loss: call step\(closure\)"):
        opt.step()


def test_sparse_gradients_are_refused():
    emb = torch.nn.Parameter(torch.zeros(10, 3))
    opt = PerturbedOptimizer(torch.optim.SGD([emb], lr=0.1), GaussianGradientNoise(0.1))
    emb.grad = torch.zeros(10, 3).to_sparse()
    with pytest.raises(ParameterError, match="sparse gradients"):
        opt.step()


def test_state_saved_with_a_torch_generator_needs_one_to_load():
    ps = make_params()
    opt = PerturbedOptimizer(
        torch.optim.SGD(ps, lr=0.1), GaussianGradientNoise(0.1), seed=torch.Generator()
    )
    sd = opt.state_dict()
    other = PerturbedOptimizer(torch.optim.SGD(ps, lr=0.1), GaussianGradientNoise(0.1), seed=1)
    with pytest.raises(ParameterError, match=r"saved with a torch.Generator on cpu"):
        other.load_state_dict(sd)


def test_optimizers_pickle_and_deepcopy_with_their_streams():
    import pickle

    from perturbkit.optim import SAM, SGLD

    p = torch.nn.Parameter(torch.zeros(5))
    opt = PerturbedOptimizer(torch.optim.SGD([p], lr=0.1), GaussianGradientNoise(0.1), seed=3)
    opt.register_step_pre_hook(lambda *a: None)  # hooks are not pickled, as in torch
    clone = pickle.loads(pickle.dumps(opt))
    assert clone.seed_ == 3 and clone.param_groups is clone.base.param_groups
    sgld = copy.deepcopy(SGLD([p], lr=0.1, seed=4))
    assert sgld.seed_ == 4
    assert copy.deepcopy(SAM(torch.optim.SGD([p], lr=0.1), rho=0.1)).rho == 0.1


def test_resume_with_blocked_cpu_streams_is_bit_identical():
    from perturbkit.optim._streams import BLOCK

    def build(seed):
        p = torch.nn.Parameter(torch.zeros(2 * BLOCK + 7))
        opt = PerturbedOptimizer(
            torch.optim.SGD([p], lr=0.1, momentum=0.9), GaussianGradientNoise(0.1), seed=seed
        )
        return p, opt

    def steps(p, opt, n):
        for _ in range(n):
            p.grad = torch.ones_like(p)
            opt.step()

    p, opt = build(1)
    steps(p, opt, 4)
    want = p.detach().clone()
    p, opt = build(1)
    steps(p, opt, 2)
    sd = copy.deepcopy(opt.state_dict())
    assert sorted(sd["perturbkit"]["streams"]["states"]) == ["cpu", "cpu#1", "cpu#2"]
    saved = p.detach().clone()
    p2, opt2 = build(2)
    load_checkpoint([p2], opt2, [saved], sd)
    steps(p2, opt2, 2)
    assert torch.equal(p2.detach(), want)
