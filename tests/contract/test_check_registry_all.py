"""``check_registry(modality=m)`` passes on its default batch for every modality."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from perturbkit import perturbations
from perturbkit.testing import check_registry
from perturbkit.testing.checks import _default_batch

HAS_LEXICON = (
    Path("/usr/share/mythes/th_en_US_v2.dat").exists()
    or Path("/usr/share/wordnet/data.noun").exists()
)
MODALITIES = ("tabular", "image", "text", "audio")


def _skip_without_extras(modality: str) -> None:
    if modality == "image" and importlib.util.find_spec("torch") is None:
        pytest.skip("image perturbations need torch (the image extra)")
    if modality == "text" and not HAS_LEXICON:
        pytest.skip("synonym_substitution needs an offline thesaurus: apt-get install mythes-en-us")


@pytest.mark.parametrize("modality", MODALITIES)
def test_check_registry_passes_on_the_default_batch(modality: str) -> None:
    _skip_without_extras(modality)
    names = check_registry(modality=modality)
    assert names == perturbations.list(modality)
    assert names, f"no {modality} perturbation is registered"


@pytest.mark.parametrize("modality", MODALITIES)
def test_default_batches_are_seeded_and_fresh(modality: str) -> None:
    a, b, c = _default_batch(modality, 0), _default_batch(modality, 0), _default_batch(modality, 1)
    assert a is not b
    if modality == "text":
        assert a == b and a and all(isinstance(s, str) for s in a)
        assert any(ch.isdigit() for s in a for ch in s)
        assert any(ch in ".,;:!?" for s in a for ch in s)
        return
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    if modality == "audio":
        assert a.shape == (4, 2048) and a.dtype == np.float32
        assert np.abs(a).max() <= 1.0 and np.abs(a).max() > 0.1
    if modality == "image":
        assert a.shape[:2] == (4, 3) and a.ndim == 4 and a.dtype == np.float32
        assert a.min() >= 0.0 and a.max() <= 1.0


def test_unknown_modality_without_x_names_it() -> None:
    with pytest.raises(ValueError, match="'weights'"):
        check_registry(modality="weights")
