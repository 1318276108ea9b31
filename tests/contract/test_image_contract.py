"""Every registered image perturbation keeps the shared contract (check_perturbation).

The names come from the registry (discovery) and ``EXPECTED`` lists the
parameter variants to check for each: a new image perturbation without an
entry here fails ``test_every_image_perturbation_has_a_test_entry``.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from perturbkit import perturbations
from perturbkit.perturbations import Combine, Compose, Perturbation
from perturbkit.testing import check_perturbation, check_registry

torch = pytest.importorskip("torch")

# name -> parameter variants to run the contract on (first: defaults).
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "image_gaussian_noise": [{}, {"layout": "NHWC"}],
    "shot_noise": [{}, {"layout": "NHWC"}],
    "impulse_noise": [{}, {"layout": "NHWC"}],
    "gaussian_blur": [{}, {"layout": "NHWC"}],
    "motion_blur": [{}, {"layout": "NHWC"}],
    "defocus_blur": [{}, {"layout": "NHWC"}],
    "brightness": [{}, {"layout": "NHWC"}],
    "contrast": [{}, {"layout": "NHWC"}],
    "saturation": [{}, {"direction": "down"}, {"direction": "up", "layout": "NHWC"}],
    "hue_shift": [{}, {"direction": "positive"}, {"direction": "negative", "layout": "NHWC"}],
    "color_temperature": [{}, {"direction": "warm"}, {"direction": "cool", "layout": "NHWC"}],
    "jpeg_compression": [{}, {"layout": "NHWC"}]
    + ([{"codec": "simplejpeg"}] if importlib.util.find_spec("simplejpeg") else []),
    "pixelate": [{}, {"layout": "NHWC"}],
    "lens_distortion": [{}, {"kind": "barrel"}, {"kind": "pincushion", "layout": "NHWC"}],
    "rotation": [{}, {"direction": "clockwise"}, {"direction": "counterclockwise"}],
    "translation": [{}, {"layout": "NHWC"}],
    "zoom": [{}, {"direction": "in"}, {"direction": "out", "layout": "NHWC"}],
    "elastic_transform": [{}, {"layout": "NHWC"}],
}

SETTINGS = settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_every_image_perturbation_has_a_test_entry() -> None:
    registered = set(perturbations.list("image"))
    missing = sorted(registered - set(EXPECTED))
    stale = sorted(set(EXPECTED) - registered)
    assert not missing, f"add contract entries to EXPECTED for: {missing}"
    assert not stale, f"EXPECTED lists perturbations that are not registered: {stale}"


def test_image_perturbations_are_severities() -> None:
    for name in perturbations.list("image"):
        info = perturbations.describe(name)
        assert info["max_magnitude"] == 5.0, name
        assert "severity" in info["unit"], name
        assert "severity" in perturbations.get_class(name).__doc__, name  # the parameter table


@st.composite
def images(draw: st.DrawFn, *, layout: str, rgb: bool) -> np.ndarray:
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n = draw(st.integers(1, 4))
    c = 3 if rgb else draw(st.sampled_from([1, 3]))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    shape = (n, c, h, w) if layout == "NCHW" else (n, h, w, c)
    elements = st.floats(0.0, 1.0, width=np.dtype(dtype).itemsize * 8)
    return draw(hnp.arrays(dtype, shape, elements=elements))


@pytest.mark.parametrize("name", perturbations.list("image"))
@SETTINGS
@given(data=st.data())
def test_contract(name: str, data: st.DataObject) -> None:
    if name not in EXPECTED:
        pytest.fail(f"{name} is registered but has no EXPECTED entry in this file")
    params = data.draw(st.sampled_from(EXPECTED[name]), label="params")
    p = perturbations.get(name, **params)
    X = data.draw(images(layout=p.layout, rgb=p.needs_rgb), label="X")  # type: ignore[attr-defined]
    m = st.floats(1e-3, 5.0, allow_nan=False, allow_infinity=False)
    mags = data.draw(st.tuples(m, m).map(sorted).map(tuple), label="magnitudes")
    seed = data.draw(st.integers(0, 2**32), label="seed")
    check_perturbation(p, X, magnitudes=mags, seed=seed)


@pytest.mark.parametrize("name", perturbations.list("image"))
def test_contract_on_torch_tensors_and_float16(name: str) -> None:
    gen = np.random.default_rng(1)
    X = gen.random((3, 3, 10, 9))
    p = perturbations.get(name)
    check_perturbation(p, torch.from_numpy(X.astype(np.float32)), magnitudes=(1.0, 3.0))
    check_perturbation(p, X.astype(np.float16), magnitudes=(2.0, 5.0))


def test_check_registry_on_images() -> None:
    X = np.random.default_rng(2).random((4, 3, 16, 16)).astype(np.float32)
    assert check_registry(X, modality="image", magnitudes=(1.0, 4.5)) == perturbations.list("image")


@pytest.mark.parametrize(
    "group",
    [
        Compose(["defocus_blur", "image_gaussian_noise", "jpeg_compression"]),
        Compose(["brightness", "contrast"]),  # deterministic pipeline
        Compose([{"name": "rotation", "params": {"direction": "clockwise"}}, "pixelate"]),
        Combine(["motion_blur", "shot_noise"]),
        Combine(["hue_shift", "saturation"], weights=[1, 0.5]),
    ],
    ids=lambda g: g.label,
)
def test_contract_of_image_pipelines(group: Perturbation) -> None:
    X = np.random.default_rng(5).random((3, 3, 12, 10))
    check_perturbation(group, X, magnitudes=(0.5, 2.0, 5.0))
    check_perturbation(group, X.astype(np.float32))
