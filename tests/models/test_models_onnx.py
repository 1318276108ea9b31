"""ONNX adapter: a torch MLP exported and run by onnxruntime; skl2onnx-style outputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from perturbkit.exceptions import ModelError, ParameterError
from perturbkit.models import load_model, wrap
from perturbkit.models.onnx import OnnxModel

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
helper, TensorProto = onnx.helper, onnx.TensorProto


def export(net, path, n_features: int):
    """Export with the TorchScript-based exporter: 0.02 s, where the dynamo exporter
    takes seconds, prints progress and trips a FutureWarning inside torch. Its only
    warnings are its own deprecation notices, silenced here (pytest makes warnings errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (torch.zeros(2, n_features),),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}},
        )
    return path


@pytest.fixture(scope="module")
def mlp_onnx(digits_mlp, tmp_path_factory):
    return export(digits_mlp, tmp_path_factory.mktemp("onnx") / "mlp.onnx", 64)


def torch_probabilities(net, X):
    with torch.no_grad():
        return torch.softmax(net(torch.as_tensor(X, dtype=torch.float32)).double(), 1).numpy()


def test_exported_mlp_matches_torch(digits_data, digits_mlp, mlp_onnx):
    X, y = digits_data
    model = wrap(str(mlp_onnx), task="classification")
    assert isinstance(model, OnnxModel)
    out = model(X)  # float64 in, cast to the graph's float32 input
    assert model.output == "logits"  # read from the first call: the rows were not probabilities
    np.testing.assert_allclose(out, torch_probabilities(digits_mlp, X), atol=1e-5)
    assert (out.argmax(1) == y).mean() > 0.9
    assert model.n_outputs == 10


def test_session_and_model_proto_and_batches(digits_data, digits_mlp, mlp_onnx):
    X, _ = digits_data
    session = ort.InferenceSession(str(mlp_onnx), providers=["CPUExecutionProvider"])
    expected = torch_probabilities(digits_mlp, X[:100])
    by_session = wrap(session, task="classification", output="logits", batch_size=30)
    np.testing.assert_allclose(by_session(X[:100]), expected, atol=1e-5)
    by_proto = wrap(onnx.load(str(mlp_onnx)), task="classification", output="logits")
    np.testing.assert_allclose(by_proto(X[:100]), expected, atol=1e-5)
    from_path = load_model(mlp_onnx, task="classification", output="logits")
    # same bytes, same fingerprint, whichever way they came in
    assert from_path.fingerprint() == by_proto.fingerprint() == by_session.fingerprint()


def test_softmax_graph_inferred_as_classification(tmp_path, digits_data, digits_mlp):
    X, _ = digits_data
    net = torch.nn.Sequential(digits_mlp, torch.nn.Softmax(dim=1)).eval()
    model = load_model(export(net, tmp_path / "soft.onnx", 64))
    assert model.task is None  # an unlabelled graph: read from the first call
    out = model(X[:20])
    assert model.task == "classification" and model.n_outputs == 10
    np.testing.assert_allclose(out, torch_probabilities(digits_mlp, X[:20]), atol=1e-5)


def test_regression_graph(tmp_path, diabetes_data):
    X, _ = diabetes_data
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torch.nn.Linear(10, 1).eval()
    model = wrap(export(net, tmp_path / "reg.onnx", 10), task="regression")
    out = model(X[:9])
    assert out.shape == (9,)
    with torch.no_grad():
        np.testing.assert_allclose(out, net(torch.as_tensor(X[:9]).float())[:, 0], rtol=1e-5)


def zipmap_model(labels=(3, 7)):
    """What skl2onnx writes for a classifier: a label output and a ZipMap of probabilities."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 2])
    label = helper.make_tensor_value_info("output_label", TensorProto.INT64, ["N"])
    seq = helper.make_sequence_type_proto(
        helper.make_map_type_proto(
            TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, [])
        )
    )
    proba = helper.make_value_info("output_probability", seq)
    nodes = [
        helper.make_node("Softmax", ["X"], ["p"], axis=1),
        helper.make_node("ArgMax", ["p"], ["am"], axis=1, keepdims=0),
        helper.make_node("Gather", ["classes", "am"], ["output_label"], axis=0),
        helper.make_node(
            "ZipMap",
            ["p"],
            ["output_probability"],
            domain="ai.onnx.ml",
            classlabels_int64s=list(labels),
        ),
    ]
    classes = helper.make_tensor("classes", TensorProto.INT64, [len(labels)], list(labels))
    graph = helper.make_graph(nodes, "zipmap", [x], [label, proba], initializer=[classes])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=9)


def test_zipmap_output_becomes_probabilities_with_classes():
    model = wrap(zipmap_model())
    assert model.task == "classification"
    Z = np.array([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])
    out = model(Z)
    e = np.exp(Z - Z.max(1, keepdims=True))
    np.testing.assert_allclose(out, e / e.sum(1, keepdims=True), atol=1e-6)
    np.testing.assert_array_equal(model.classes_, [3, 7])


def test_fixed_batch_graph_is_fed_row_by_row():
    x = helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 3])
    y = helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [1, 3])
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["probabilities"], axis=1)], "g", [x], [y]
    )
    model = wrap(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    )
    assert model.batch_size == 1 and model.task == "classification"
    out = model(np.arange(15.0).reshape(5, 3))
    np.testing.assert_allclose(out.sum(1), 1.0)
    assert out.shape == (5, 3)


def test_errors():
    x1 = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 2])
    x2 = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 2])
    out = helper.make_tensor_value_info("s", TensorProto.FLOAT, ["N", 2])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["s"])], "g", [x1, x2], [out])
    two_inputs = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    with pytest.raises(ModelError, match=r"has 2 inputs \(a, b\); wrap supports one input"):
        wrap(two_inputs)
    with pytest.raises(ModelError, match=r"Model file 'nowhere.onnx' does not exist"):
        wrap("nowhere.onnx")
    with pytest.raises(
        ParameterError, match=r"'output_name' parameter of wrap must be one of 'output_label'"
    ):
        wrap(zipmap_model(), output_name="scores")
    with pytest.raises(ModelError, match=r"onnxruntime could not load"):
        OnnxModel(b"not an onnx model")
