"""load_model: ONNX, skops, TorchScript, factory + state dict, module:attribute, pickle gate."""

from __future__ import annotations

import pickle
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from perturbkit.exceptions import ModelError, ParameterError, PerturbkitError
from perturbkit.models import load_model, wrap


def test_skops_round_trip(tmp_path, cancer_data, cancer_pipeline):
    sio = pytest.importorskip("skops.io")
    X, _ = cancer_data
    path = tmp_path / "pipe.skops"
    sio.dump(cancer_pipeline, path)
    model = load_model(path)
    assert model.task == "classification"
    np.testing.assert_allclose(model(X[:20]), cancer_pipeline.predict_proba(X[:20]))
    assert model.fingerprint() == wrap(cancer_pipeline).fingerprint()


def test_skops_untrusted_types_are_named(tmp_path, cancer_data):
    sio = pytest.importorskip("skops.io")
    X, y = cancer_data
    forest = RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0).fit(X, y)
    path = tmp_path / "forest.skops"
    sio.dump(forest, path)
    with pytest.raises(
        ModelError, match=r"does not trust by default: sklearn\.tree\._tree\.Tree; .*trusted="
    ):
        load_model(path)
    model = load_model(path, trusted=["sklearn.tree._tree.Tree"])
    np.testing.assert_allclose(model(X[:5]), forest.predict_proba(X[:5]))


@pytest.mark.parametrize("suffix", [".pkl", ".pickle", ".joblib"])
def test_pickle_needs_allow_pickle(tmp_path, diabetes_data, diabetes_ridge, suffix):
    X, _ = diabetes_data
    path = tmp_path / f"ridge{suffix}"
    if suffix == ".joblib":
        joblib.dump(diabetes_ridge, path)
    else:
        path.write_bytes(pickle.dumps(diabetes_ridge))
    with pytest.raises(
        ModelError, match=r"runs code when loaded; pass allow_pickle=True \(CLI: --allow-pickle\)"
    ):
        load_model(path)
    model = load_model(path, allow_pickle=True)
    np.testing.assert_allclose(model(X[:4]), diabetes_ridge.predict(X[:4]))
    with pytest.raises(ModelError, match=r"runs code when loaded"):
        wrap(str(path))  # wrap(path) goes through the same gate


def test_torchscript_round_trip(tmp_path, digits_data, digits_mlp):
    torch = pytest.importorskip("torch")
    X, _ = digits_data
    path = tmp_path / "mlp.pt"
    with warnings.catch_warnings():  # torch deprecates TorchScript; saving one is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(digits_mlp), str(path))
    model = load_model(path, task="classification")
    with torch.no_grad():
        expected = torch.softmax(
            digits_mlp(torch.as_tensor(X[:30], dtype=torch.float32)), 1
        ).numpy()
    np.testing.assert_allclose(model(X[:30]), expected, atol=1e-6)
    g = model.grad(X[:3])
    assert g.shape == (3, 64)


def test_state_dict_file_is_not_torchscript(tmp_path, digits_mlp):
    torch = pytest.importorskip("torch")
    path = tmp_path / "weights.pt"
    torch.save(digits_mlp.state_dict(), path)
    with pytest.raises(ModelError, match=r"is not a TorchScript archive.*state_dict="):
        load_model(path, task="classification")


FACTORY_MODULE = """
import torch

def make_mlp(hidden=32):
    nn = torch.nn
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

def broken():
    raise RuntimeError("no weights for you")

def predict_first_column(X):
    return X[:, 0]

SCALE = 3
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    name = f"pk_user_models_{tmp_path.name}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(FACTORY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_factory_plus_state_dict(tmp_path, user_module, digits_data, digits_mlp):
    torch = pytest.importorskip("torch")
    X, _ = digits_data
    weights = tmp_path / "weights.pt"
    torch.save(digits_mlp.state_dict(), weights)
    model = load_model(f"{user_module}:make_mlp", state_dict=weights, task="classification")
    assert model.fingerprint() == wrap(digits_mlp, task="classification").fingerprint()
    with torch.no_grad():
        expected = torch.softmax(
            digits_mlp(torch.as_tensor(X[:10], dtype=torch.float32)), 1
        ).numpy()
    np.testing.assert_allclose(model(X[:10]), expected, atol=1e-6)
    # weights that do not fit the module, and checkpoints that are not weights
    with pytest.raises(ModelError, match=r"does not fit the module built by"):
        load_model(f"{user_module}:make_mlp", state_dict=weights, factory_kwargs={"hidden": 8})
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"state_dict": digits_mlp.state_dict(), "epoch": 3}, ckpt)
    assert (
        load_model(f"{user_module}:make_mlp", state_dict=ckpt, task="classification").n_outputs
        is None
    )
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model": digits_mlp}, unsafe)  # a whole pickled module: refused by weights_only
    with pytest.raises(ModelError, match=r"could not be loaded with weights_only=True"):
        load_model(f"{user_module}:make_mlp", state_dict=unsafe, task="classification")
    with pytest.raises(
        ModelError, match=r"Factory '.*:broken' raised RuntimeError: no weights for you"
    ):
        load_model(f"{user_module}:broken", state_dict=weights)
    with pytest.raises(ModelError, match=r"State dict file '.*missing\.pt' does not exist"):
        load_model(f"{user_module}:make_mlp", state_dict=tmp_path / "missing.pt")


def test_module_attribute(user_module):
    model = load_model(f"{user_module}:predict_first_column", task="regression")
    np.testing.assert_array_equal(model(np.eye(3)), [1.0, 0.0, 0.0])
    with pytest.raises(ModelError, match=rf"Module '{user_module}' has no attribute 'nope'"):
        load_model(f"{user_module}:nope")
    with pytest.raises(ModelError, match=r"Could not import module 'pk_no_such_module'"):
        load_model("pk_no_such_module:model")
    with pytest.raises(ModelError, match=r"wrap cannot wrap a builtins.int"):
        load_model(f"{user_module}:SCALE")


def test_python_file_attribute(tmp_path, diabetes_data):
    X, _ = diabetes_data
    script = tmp_path / "train_me.py"
    script.write_text(
        textwrap.dedent(
            """
            from sklearn.datasets import load_diabetes
            from sklearn.linear_model import Ridge

            X, y = load_diabetes(return_X_y=True)
            model = Ridge(alpha=0.1).fit(X, y)
            """
        )
    )
    model = load_model(f"{script}:model")
    assert model.task == "regression"
    np.testing.assert_allclose(model(X[:3]), model.estimator.predict(X[:3]))
    bad = tmp_path / "bad.py"
    bad.write_text("raise ImportError('needs a GPU')\n")
    with pytest.raises(
        ModelError, match=r"Importing '.*bad\.py' for model .* raised ImportError: needs a GPU"
    ):
        load_model(f"{bad}:model")
    with pytest.raises(ModelError, match=r"Python file '.*gone\.py' .* does not exist"):
        load_model(f"{tmp_path / 'gone.py'}:model")


def test_missing_and_unknown_files(tmp_path):
    for name in ("model.onnx", "model.skops", "model.pt", "model.pkl"):
        with pytest.raises(ModelError, match=rf"Model file '.*{name}' does not exist"):
            load_model(tmp_path / name)
    odd = tmp_path / "model.h5"
    odd.write_bytes(b"\x89HDF")
    with pytest.raises(
        ParameterError, match=r"unknown suffix '\.h5'; expected one of \.onnx, \.skops"
    ):
        load_model(odd)
    with pytest.raises(ModelError, match=r"neither an existing file nor a 'module:attribute'"):
        load_model("just-a-name")
    with pytest.raises(ParameterError, match=r"'kind' parameter of load_model must be one of"):
        load_model(odd, kind="keras")
    with pytest.raises(PerturbkitError):
        load_model(odd, kind="onnx")  # not an ONNX file: one line from onnxruntime


def test_kind_overrides_the_suffix(tmp_path, diabetes_ridge):
    path = tmp_path / "ridge.bin"
    path.write_bytes(pickle.dumps(diabetes_ridge))
    with pytest.raises(ModelError, match=r"is a pickle file"):
        load_model(path, kind="pickle")
    assert load_model(path, kind="pickle", allow_pickle=True).task == "regression"


def test_errors_are_one_line(tmp_path):
    with pytest.raises(PerturbkitError) as info:
        load_model(tmp_path / "x.pkl")
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)
