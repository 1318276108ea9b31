"""Every registered perturbation belongs to a modality whose contract file covers it."""

from __future__ import annotations

from pathlib import Path

from perturbkit import perturbations

HERE = Path(__file__).parent


def test_every_modality_has_a_contract_file() -> None:
    for name in perturbations.list():
        modality = perturbations.describe(name)["modality"]
        path = HERE / f"test_{modality}_contract.py"
        assert path.exists(), f"{name} has modality {modality!r} but {path.name} does not exist"
        assert f"'{name}'" in path.read_text() or f'"{name}"' in path.read_text(), (
            f"{name} is registered but {path.name} has no entry for it"
        )
