"""torch adapter: softmax, batching, eval mode restored, device kept, input gradients."""

from __future__ import annotations

import numpy as np
import pytest

from perturbkit.exceptions import DataError, ModelError, ParameterError
from perturbkit.models import wrap
from perturbkit.models.torch import TorchModel

torch = pytest.importorskip("torch")
nn = torch.nn


def build(factory, seed: int = 0):
    """Build a module from a fixed seed without touching torch's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def train(net, X, y, *, loss, steps: int = 150, lr: float = 0.05):
    Xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss(net(Xt), yt).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return net


@pytest.fixture
def digits_net(digits_mlp):
    return digits_mlp


def no_grads(module) -> bool:
    return all(p.grad is None for p in module.parameters())


def test_classifier_applies_softmax(digits_data, digits_net):
    X, y = digits_data
    model = wrap(digits_net, task="classification")
    assert isinstance(model, TorchModel) and model.differentiable
    out = model(X)
    assert out.dtype == np.float64 and out.shape == (len(X), 10)
    with torch.no_grad():
        expected = torch.softmax(digits_net(torch.as_tensor(X, dtype=torch.float32)), 1)
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
    assert model.n_outputs == 10
    assert (out.argmax(1) == y).mean() > 0.9
    assert no_grads(digits_net)


def test_regressor(diabetes_data):
    X, y = diabetes_data
    net = build(lambda: nn.Linear(10, 1))
    train(net, X, (y - y.mean()) / y.std(), loss=lambda p, t: ((p[:, 0] - t) ** 2).mean())
    model = wrap(net, task="regression")
    out = model(X)
    assert out.shape == (len(X),)  # a single target (n, 1) comes back as (n,)
    with torch.no_grad():
        expected = net(torch.as_tensor(X, dtype=torch.float32))[:, 0].numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    two = build(lambda: nn.Linear(10, 2))
    assert wrap(two, task="regression")(X[:4]).shape == (4, 2)


def test_batches_give_the_same_outputs(digits_data, digits_net):
    X, _ = digits_data
    whole = wrap(digits_net, task="classification")(X[:100])
    batched = wrap(digits_net, task="classification", batch_size=7)(X[:100])
    # float32 BLAS blocking may change the last bits with the rows per call (DESIGN.md)
    np.testing.assert_allclose(batched, whole, atol=1e-6)
    np.testing.assert_array_equal(batched.argmax(1), whole.argmax(1))


def test_eval_mode_during_the_call_and_caller_modes_restored(digits_data):
    X, _ = digits_data
    net = build(lambda: nn.Sequential(nn.Linear(64, 16), nn.Dropout(0.5), nn.Linear(16, 3)))
    net.train()
    net[2].eval()  # a mixed state the caller chose
    model = wrap(net, task="classification")
    a, b = model(X[:20]), model(X[:20])
    np.testing.assert_array_equal(
        a, b
    )  # dropout off (in train mode it would draw from torch's RNG)
    model.grad(X[:5])
    assert [m.training for m in net.modules()] == [True, True, True, False]
    net.eval()
    model(X[:3])
    assert not any(m.training for m in net.modules())
    assert torch.is_grad_enabled()


def test_no_parameter_grad_left_behind(digits_data, digits_net):
    X, y = digits_data
    model = wrap(digits_net, task="classification")
    model(X[:10])
    model.grad(X[:10], y[:10])
    model.grad(X[:10])
    assert no_grads(digits_net)
    assert all(p.requires_grad for p in digits_net.parameters())


def test_device_and_dtype_kept(digits_data):
    X, _ = digits_data
    net = build(lambda: nn.Linear(64, 3)).double()
    model = wrap(net, task="classification")
    out = model(X[:5])
    with torch.no_grad():
        expected = torch.softmax(net(torch.as_tensor(X[:5])), 1).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-12)  # float64 all the way
    assert {p.device.type for p in net.parameters()} == {"cpu"}
    assert {p.dtype for p in net.parameters()} == {torch.float64}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_module_stays_on_its_device(digits_data):  # pragma: no cover - GPU only
    X, _ = digits_data
    net = build(lambda: nn.Linear(64, 3)).cuda()
    out = wrap(net, task="classification")(X[:9])
    assert isinstance(out, np.ndarray) and out.shape == (9, 3)
    assert {p.device.type for p in net.parameters()} == {"cuda"}
    g = wrap(net, task="classification").grad(X[:9])
    assert g.shape == (9, 64) and isinstance(g, np.ndarray)


def test_caller_data_never_written():
    net = build(lambda: nn.Sequential(nn.ReLU(inplace=True), nn.Linear(4, 1)))
    X = np.array([[-1.0, 2.0, -3.0, 4.0]] * 3, dtype=np.float32)
    before = X.copy()
    wrap(net, task="regression")(X)
    np.testing.assert_array_equal(X, before)


def central_difference(f, X, eps=1e-6):
    g = np.zeros_like(X)
    for idx in np.ndindex(*X.shape):
        up, down = X.copy(), X.copy()
        up[idx] += eps
        down[idx] -= eps
        g[idx] = (f(up) - f(down)) / (2 * eps)
    return g


def test_grad_matches_finite_differences_classification():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 3))
    y = np.array([0, 2, 1, 2])
    net = build(lambda: nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 3))).double()
    model = wrap(net, task="classification")

    def loss(Z):
        with torch.no_grad():
            return nn.functional.cross_entropy(
                net(torch.as_tensor(Z)), torch.as_tensor(y), reduction="sum"
            ).item()

    g = model.grad(X, y)
    assert g.shape == X.shape and g.dtype == np.float64
    np.testing.assert_allclose(g, central_difference(loss, X), rtol=1e-6, atol=1e-8)
    # one row's gradient is that row's own loss gradient: batch size does not matter
    np.testing.assert_allclose(model.grad(X[1:2], y[1:2]), g[1:2], rtol=1e-12)

    pred = model.predict_labels(X)

    def top_logit(Z):
        with torch.no_grad():
            return net(torch.as_tensor(Z))[np.arange(len(Z)), pred].sum().item()

    np.testing.assert_allclose(
        model.grad(X), central_difference(top_logit, X), rtol=1e-6, atol=1e-8
    )


def test_grad_matches_finite_differences_regression():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5, 4))
    y = rng.normal(size=5)
    net = build(lambda: nn.Linear(4, 1)).double()
    model = wrap(net, task="regression", batch_size=2)
    w = net.weight.detach().numpy()[0]
    residual = model(X) - y
    # squared error (f(x) - y)^2 of a linear net: gradient 2 (f(x) - y) w, exactly
    np.testing.assert_allclose(model.grad(X, y), 2 * residual[:, None] * w[None, :], rtol=1e-10)
    np.testing.assert_allclose(model.grad(X), np.tile(w, (5, 1)), rtol=1e-12)


def test_grad_label_errors(digits_data, digits_net):
    X, _ = digits_data
    model = wrap(digits_net, task="classification")
    with pytest.raises(DataError, match=r"class indices in \[0, 10\)\. Got 12"):
        model.grad(X[:2], [1, 12])
    with pytest.raises(DataError, match=r"integer class indices"):
        model.grad(X[:2], [0.5, 1.0])
    with pytest.raises(DataError, match=r"same number of rows"):
        model.grad(X[:2], [1])


def test_task_needed_unless_inferable():
    with pytest.raises(ParameterError, match=r"'task' parameter of wrap must be 'classification'"):
        wrap(build(lambda: nn.Linear(3, 2)))
    with pytest.raises(ParameterError, match=r"'task' parameter of wrap must be one of"):
        wrap(build(lambda: nn.Linear(3, 2)), task="ranking")
    soft = build(lambda: nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=1)))
    model = wrap(soft)
    assert model.task == "classification" and model.output == "probabilities"
    X = np.ones((2, 3))
    with torch.no_grad():
        np.testing.assert_allclose(model(X), soft(torch.ones(2, 3)).numpy(), atol=1e-7)
    logsoft = build(lambda: nn.Sequential(nn.Linear(3, 4), nn.LogSoftmax(dim=1)))
    np.testing.assert_allclose(wrap(logsoft)(X).sum(axis=1), 1.0, atol=1e-6)
    assert wrap(build(lambda: nn.Linear(3, 2)), output="logits").task == "classification"


def test_single_binary_logit_gives_two_columns(cancer_data):
    X, y = cancer_data
    X = (X - X.mean(0)) / X.std(0)
    net = build(lambda: nn.Linear(30, 1))
    train(
        net,
        X,
        y.astype(np.float32),
        loss=lambda z, t: nn.functional.binary_cross_entropy_with_logits(z[:, 0], t),
    )
    model = wrap(net, task="classification", classes=["malignant", "benign"])
    out = model(X)
    assert out.shape == (len(X), 2)
    assert (out.argmax(1) == y).mean() > 0.95
    g = model.grad(X[:3], ["benign", "malignant", "benign"])
    assert g.shape == (3, 30) and np.abs(g).sum() > 0


def test_module_errors_name_the_rows():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(ModelError, match=r"^Model call on rows 100–103 raised RuntimeError: mat1"):
        wrap(Broken(), task="regression")(np.ones((4, 2)), rows=(100, 104))

    class Nan(nn.Module):
        def forward(self, x):
            return x.sum(1) * float("nan")

    with pytest.raises(ModelError, match=r"rows 0–2 returned 3 non-finite value"):
        wrap(Nan(), task="regression")(np.ones((3, 2)))


def test_options_validated():
    net = build(lambda: nn.Linear(3, 2))
    with pytest.raises(ParameterError, match=r"'batch_size' parameter of wrap must be an int"):
        wrap(net, task="classification", batch_size=0)
    with pytest.raises(ParameterError, match=r"'output' parameter of wrap applies to classifiers"):
        wrap(net, task="regression", output="logits")
    with pytest.raises(ParameterError, match=r"unknown option.*'batchsize'"):
        wrap(net, task="classification", batchsize=3)


def test_fingerprint_follows_the_weights():
    a = build(lambda: nn.Linear(3, 2), seed=0)
    b = build(lambda: nn.Linear(3, 2), seed=0)
    c = build(lambda: nn.Linear(3, 2), seed=1)
    fa = wrap(a, task="classification").fingerprint()
    assert fa == wrap(b, task="classification").fingerprint()
    assert fa != wrap(c, task="classification").fingerprint()
    assert fa != wrap(a, task="regression").fingerprint()
