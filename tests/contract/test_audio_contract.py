"""Every registered audio perturbation keeps the shared contract (check_perturbation, unchanged).

``EXPECTED`` lists the parameter variants to check for each name; a new
audio perturbation without an entry fails ``test_every_audio_perturbation_has_an_entry``.
Batches are random clips at full scale, of any length down to one sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perturbkit import perturbations
from perturbkit.perturbations import Combine, Compose, Perturbation
from perturbkit.testing import check_perturbation, check_registry

# name -> parameter variants to run the contract on (first: defaults).
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "white_noise": [{}],
    "pink_noise": [{}],
    "gain": [{}, {"direction": "up"}],
    "clipping": [{}],
    "time_stretch": [{}, {"direction": "slower", "sample_rate": 8000}],
    "pitch_shift": [{}, {"direction": "down", "sample_rate": 22050}],
    "low_pass": [{}, {"order": 2}],
    "high_pass": [{}, {"order": 2, "sample_rate": 8000}],
    "reverb": [{}, {"wet": 0.2, "sample_rate": 8000}],
    "time_shift": [{}, {"mode": "roll", "sample_rate": 100}],
}

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_every_audio_perturbation_has_an_entry() -> None:
    registered = set(perturbations.list("audio"))
    missing, stale = sorted(registered - set(EXPECTED)), sorted(set(EXPECTED) - registered)
    assert not missing and not stale, f"missing: {missing}; stale: {stale}"


def test_units_are_documented() -> None:
    for name in perturbations.list("audio"):
        info = perturbations.describe(name)
        assert info["modality"] == "audio" and info["unit"] and info["summary"], name


@st.composite
def clips(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(1, 5))
    length = draw(st.sampled_from([1, 2, 7, 64, 511, 1600]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**16))
    gen = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["noise", "tone", "silence", "loud"]))
    if kind == "noise":
        X = gen.uniform(-1, 1, (n, length))
    elif kind == "tone":
        t = np.arange(length) / 8000
        X = 0.5 * np.sin(2 * np.pi * gen.uniform(50, 3000, (n, 1)) * t)
    elif kind == "silence":
        X = np.zeros((n, length))
    else:
        X = np.clip(gen.normal(0, 0.8, (n, length)), -1, 1)
    return X.astype(dtype)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@SETTINGS
@given(data=st.data())
def test_contract(name: str, data: st.DataObject) -> None:
    p = perturbations.get(name, **data.draw(st.sampled_from(EXPECTED[name]), label="params"))
    X = data.draw(clips(), label="X")
    hi = 3.0 if p.max_magnitude is None else float(p.max_magnitude)
    m = st.floats(1e-3, hi, allow_nan=False)
    mags = tuple(sorted(data.draw(st.tuples(m, m), label="magnitudes")))
    seed = data.draw(st.integers(0, 2**32), label="seed")
    check_perturbation(p, X, magnitudes=mags, seed=seed)


def test_check_registry_on_speech_length_clips() -> None:
    gen = np.random.default_rng(0)
    X = (0.3 * gen.standard_normal((4, 16000))).clip(-1, 1).astype(np.float32)
    assert check_registry(X, modality="audio") == perturbations.list("audio")
    assert check_registry(X[0], modality="audio") == perturbations.list("audio")  # one 1-D clip
    assert check_registry(X.astype(np.float16), modality="audio") == perturbations.list("audio")


@pytest.mark.parametrize(
    "group",
    [
        Compose(["gain", "white_noise", "low_pass"]),
        Compose(["reverb", "pitch_shift"], weights=[0.5, 2.0]),
        Combine(["pink_noise", "time_shift", "clipping"]),
        Combine(["time_stretch", "high_pass"]),  # deterministic pair
    ],
    ids=lambda g: g.label[:60],
)
def test_contract_of_audio_pipelines(group: Perturbation) -> None:
    X = np.random.default_rng(1).uniform(-0.5, 0.5, (3, 4000)).astype(np.float32)
    check_perturbation(group, X, magnitudes=(0.1, 0.4, 1.0))
