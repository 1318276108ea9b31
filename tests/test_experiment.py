"""Experiment files: validation with field paths and line numbers, paths, running."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import sklearn.datasets  # noqa: F401 - its first import touches Python's global random (rich)

import perturbkit as pk
from perturbkit.experiment import (
    DEFAULT_STORE,
    Experiment,
    ExperimentError,
    load_experiment,
    run_experiment,
    write_experiment_report,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

BASE = """
name: base
model:
  entry_point: models.py:breast_cancer_classifier
  call: true
data:
  dataset: breast_cancer
  limit: 120
magnitudes: [0, 0.1, 0.5]
perturbations:
  - gaussian_noise
  - name: missing_values
    params: {fill: mean}
    magnitudes: [0, 0.1, 0.3]
repeats: 2
seed: 3
metrics: [accuracy, accuracy_drop, flip_rate]
"""


def _write(folder: Path, text: str, name: str = "exp.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def _error(folder: Path, text: str) -> str:
    with pytest.raises(ExperimentError) as exc:
        load_experiment(_write(folder, text))
    msg = str(exc.value)
    assert "\n" not in msg, msg
    assert isinstance(exc.value, pk.PerturbkitError) and isinstance(exc.value, ValueError)
    return msg


def test_load_valid_experiment(tmp_path):
    exp = load_experiment(_write(tmp_path, BASE))
    assert exp.run_name == "base" and exp.repeats == 2 and exp.seed == 3
    assert exp.base_dir == tmp_path.resolve() and exp.source == tmp_path / "exp.yaml"
    assert [p.name for p in exp.perturbations] == ["gaussian_noise", "missing_values"]
    perts, mags = exp.build_perturbations()
    assert [p.label for p in perts] == ["gaussian_noise", "missing_values(fill='mean')"]
    assert list(mags.values()) == [[0.0, 0.1, 0.5], [0.0, 0.1, 0.3]]
    assert exp.model_spec() == f"{tmp_path.resolve() / 'models.py'}:breast_cancer_classifier"
    assert exp.to_dict()["data"]["limit"] == 120


def test_name_defaults_to_the_file_stem(tmp_path):
    exp = load_experiment(_write(tmp_path, BASE.replace("name: base\n", ""), "my-exp.yaml"))
    assert exp.run_name == "my-exp"


def test_yaml_scientific_notation_is_a_number(tmp_path):
    exp = load_experiment(_write(tmp_path, BASE.replace("[0, 0.1, 0.5]", "[0, 1e-3, 0.5]")))
    assert exp.magnitudes == [0.0, 0.001, 0.5]


def test_store_and_report_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sub = tmp_path / "exp"
    sub.mkdir()
    exp = load_experiment(_write(sub, BASE))
    assert exp.store_url() == DEFAULT_STORE  # not written: relative to the current folder
    assert exp.store_url("sqlite:///other.db") == "sqlite:///other.db"
    assert exp.report_path() is None and exp.report_path("r.html") == Path("r.html")
    text = BASE + "store: sqlite:///runs/r.db\nreport: out/report.html\n"
    exp = load_experiment(_write(sub, text))
    assert exp.store_url() == f"sqlite:///{(sub.resolve() / 'runs/r.db').as_posix()}"
    assert exp.report_path() == sub.resolve() / "out" / "report.html"
    for given, want in [
        ("sqlite:////abs/x.db", "sqlite:////abs/x.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("runs.db", str(sub.resolve() / "runs.db")),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ]:
        exp = load_experiment(_write(sub, BASE + f"store: '{given}'\n"))
        assert exp.store_url() == want


def test_from_dict_without_a_file(tmp_path):
    data = {
        "model": {"entry_point": "models.py:breast_cancer_classifier", "call": True},
        "data": {"dataset": "iris"},
        "perturbations": [{"name": "gaussian_noise", "magnitudes": [0, 0.1]}],
    }
    exp = Experiment.from_dict(data, base_dir=tmp_path)
    assert exp.run_name == "experiment" and exp.base_dir == tmp_path.resolve()
    with pytest.raises(ExperimentError, match=r"^experiment: perturbations\[0\]\.magnitudes\[0\]"):
        Experiment.from_dict(
            {**data, "perturbations": [{"name": "gaussian_noise", "magnitudes": [-1]}]}
        )


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        # malformed YAML names its line
        (lambda t: t.replace("  call: true", "   call: true"), ["exp.yaml:4", "malformed YAML"]),
        (lambda t: t + "repeats: [1\n", ["malformed YAML"]),
        # unknown fields, nested and top level, with the allowed ones
        (
            lambda t: t.replace("  call: true", "  call: true\n  kinds: onnx"),
            ["exp.yaml:5:", "model.kinds: unknown field", "Did you mean 'kind'?", "Allowed: path"],
        ),
        (lambda t: t + "seeds: 3\n", ["seeds: unknown field", "Did you mean 'seed'?"]),
        (
            lambda t: t.replace("params: {fill: mean}", "params: {fill: mean}\n    mags: [1]"),
            ["perturbations[1].mags: unknown field", "Allowed: name, params, magnitudes, columns"],
        ),
        # perturbations: registry name, params, magnitudes
        (
            lambda t: t.replace("- gaussian_noise", "- gausian_noise"),
            ["exp.yaml:10:", "perturbations[0].name", "Did you mean 'gaussian_noise'?"],
        ),
        (
            lambda t: t.replace("{fill: mean}", "{fil: mean}"),
            ["perturbations[1].params", "no parameter 'fil'", "Did you mean 'fill'?"],
        ),
        (
            lambda t: t.replace("[0, 0.1, 0.3]", "[0, -0.1, 0.3]"),
            [
                "exp.yaml:13:",
                "perturbations[1].magnitudes[1]: must be a finite float >= 0. Got -0.1 instead.",
            ],
        ),
        (
            lambda t: t.replace("[0, 0.1, 0.5]", "[0, abc, 0.5]"),
            ["magnitudes[1]: must be a finite float >= 0. Got 'abc' instead."],
        ),
        (
            lambda t: t.replace("[0, 0.1, 0.5]", "[0, .nan, 0.5]"),
            ["magnitudes[1]: must be a finite float >= 0. Got nan instead."],
        ),
        (
            lambda t: t.replace("[0, 0.1, 0.3]", "[0, 0.1, 1.3]"),
            ["perturbations[1].magnitudes[2]", "in [0, 1] for missing_values", "Got 1.3"],
        ),
        (
            lambda t: t.replace("[0, 0.1, 0.3]", "[0, 0.1, 0.1]"),
            ["perturbations[1].magnitudes[2]", "repeats the magnitude 0.1"],
        ),
        (
            lambda t: t.replace("magnitudes: [0, 0.1, 0.5]\n", ""),
            ["perturbations[0].magnitudes: required", "noise standard deviation"],
        ),
        (
            lambda t: t.replace("  - gaussian_noise\n", "  - gaussian_noise\n  - gaussian_noise\n"),
            ["perturbations[1]: is the same perturbation as perturbations[0]"],
        ),
        (
            lambda t: t.replace(
                "perturbations:\n  - gaussian_noise\n  - name: missing_values\n"
                "    params: {fill: mean}\n    magnitudes: [0, 0.1, 0.3]\n",
                "perturbations: []\n",
            ),
            ["perturbations: must have at least 1 item"],
        ),
        # model and data sections
        (
            lambda t: t.replace("  entry_point: models.py:breast_cancer_classifier\n", ""),
            ["model: needs exactly one of 'path'", "neither"],
        ),
        (
            lambda t: t.replace("  call: true", "  call: true\n  path: m.onnx"),
            ["model: needs exactly one of 'path'", "both"],
        ),
        (
            lambda t: t.replace("  call: true", "  call: maybe"),
            ["model.call: must be a valid boolean", "Got 'maybe' instead."],
        ),
        (
            lambda t: t.replace("  call: true", "  call: true\n  task: clasification"),
            ["model.task: must be 'classification' or 'regression'"],
        ),
        (
            lambda t: t.replace("dataset: breast_cancer", "dataset: breast_cancr"),
            ["data.dataset: unknown data set", "Did you mean 'breast_cancer'?"],
        ),
        (lambda t: t.replace("limit: 120", "limit: 0"), ["data.limit: must be greater than or"]),
        (lambda t: t.replace("repeats: 2", "repeats: 2.5"), ["repeats: must be a valid integer"]),
        (lambda t: t.replace("repeats: 2", "repeats: 0"), ["repeats: must be greater than"]),
        (lambda t: t.replace("seed: 3", "seed: -1"), ["seed: must be greater than or equal"]),
        (
            lambda t: t.replace("name: base\n", "name: base\nname: other\n"),
            ["duplicate key 'name'"],
        ),
        (lambda t: "", ["an experiment must be a mapping", "Got nothing instead."]),
        (lambda t: "- a\n- b\n", ["an experiment must be a mapping", "Got a list instead."]),
    ],
)
def test_validation_errors(tmp_path, edit, needles):
    msg = _error(tmp_path, edit(textwrap.dedent(BASE).lstrip()))
    assert msg.startswith(str(tmp_path / "exp.yaml")), msg
    for n in needles:
        assert n in msg, (n, msg)


def test_several_errors_are_counted(tmp_path):
    text = textwrap.dedent(BASE).lstrip().replace("repeats: 2", "repeats: 0") + "bogus: 1\n"
    assert "(and 1 more)" in _error(tmp_path, text)


def test_missing_and_unreadable_file(tmp_path):
    with pytest.raises(ExperimentError, match="does not exist"):
        load_experiment(tmp_path / "nope.yaml")
    with pytest.raises(ExperimentError, match="is a folder"):
        load_experiment(tmp_path)
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ExperimentError, match="could not be read"):
        load_experiment(tmp_path / "bin.yaml")


def _models(folder: Path) -> None:
    (folder / "models.py").write_text((EXAMPLES / "models.py").read_text())


def test_run_experiment_end_to_end(tmp_path):
    _models(tmp_path)
    exp = load_experiment(_write(tmp_path, BASE))
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run_experiment(exp, store=url, progress=False)
    assert result.meta["status"] == "complete" and result.meta["name"] == "base"
    assert result.meta["n_rows"] == 120
    assert set(result.table["metric"]) == {"accuracy", "accuracy_drop", "flip_rate"}
    assert result.meta["command"] == f"perturbkit run {exp.command()[15:]} --store {url}"
    stored = pk.load_run(result.run_id, url)
    assert (
        stored.meta["experiment"]["seed"] == 3 and stored.meta["command"] == result.meta["command"]
    )
    np.testing.assert_array_equal(stored.table["value"], result.table["value"])
    # the seed makes it reproducible: a second run gives the same numbers
    again = run_experiment(exp, store=url, progress=False)
    assert again.run_id != result.run_id
    np.testing.assert_array_equal(again.table["value"], result.table["value"])
    path = write_experiment_report(exp, result, tmp_path / "r.html")
    assert path is not None and result.run_id in path.read_text()
    assert write_experiment_report(exp, result) is None  # no report: in the file


def test_run_experiment_resume(tmp_path):
    _models(tmp_path)
    exp = load_experiment(_write(tmp_path, BASE))
    with pk.Store(tmp_path / "runs.db") as store:
        first = run_experiment(exp, store=store, progress=False)
        resumed = run_experiment(exp, store=store, resume=True, progress=False)
        assert resumed.run_id == first.run_id
        assert len(store.list_runs()) == 1


def test_bad_model_and_data_name_the_field(tmp_path):
    _models(tmp_path)
    text = textwrap.dedent(BASE).lstrip()
    exp = load_experiment(_write(tmp_path, text.replace("breast_cancer_classifier", "nope")))
    with pytest.raises(pk.ModelError, match=r"exp\.yaml:3: model\.entry_point: .*no attribute"):
        run_experiment(exp, store=f"sqlite:///{tmp_path / 'r.db'}", progress=False)
    exp = load_experiment(
        _write(tmp_path, text.replace("dataset: breast_cancer", "path: nothere.csv"))
    )
    with pytest.raises(pk.DataError, match=r"exp\.yaml:6: data\.path: Data file .* does not exist"):
        run_experiment(exp, store=f"sqlite:///{tmp_path / 'r.db'}", progress=False)
    with pk.Store(tmp_path / "r.db") as st:
        assert st.list_runs().empty


def test_factory_errors_are_model_errors(tmp_path):
    (tmp_path / "models.py").write_text(
        "def broken():\n    raise RuntimeError('no GPU here')\n\nVALUE = 3\n"
    )
    text = textwrap.dedent(BASE).lstrip()
    exp = load_experiment(_write(tmp_path, text.replace("breast_cancer_classifier", "broken")))
    with pytest.raises(pk.ModelError, match="raised RuntimeError: no GPU here"):
        exp.load_model()
    exp = load_experiment(_write(tmp_path, text.replace("breast_cancer_classifier", "VALUE")))
    with pytest.raises(pk.ModelError, match="not a factory to call"):
        exp.load_model()


def test_factory_kwargs_and_module_entry_point(tmp_path):
    _models(tmp_path)
    text = textwrap.dedent(BASE).lstrip()
    weak = text.replace(
        "models.py:breast_cancer_classifier", "models:breast_cancer_classifier\n  kwargs: {C: 0.01}"
    )
    exp = load_experiment(_write(tmp_path, weak))
    assert exp.model_spec().endswith("models.py:breast_cancer_classifier")  # found beside it
    model = exp.load_model()
    default = load_experiment(_write(tmp_path, text, "default.yaml")).load_model()
    assert model.task == default.task == "classification"
    assert model.fingerprint() != default.fingerprint()  # the factory got C=0.01
