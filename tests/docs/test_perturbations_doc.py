"""docs/perturbations.md is generated from the registry and must be up to date."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_perturbations_doc_is_current() -> None:
    ns = runpy.run_path(str(ROOT / "tools" / "gen_perturbations_doc.py"), run_name="gen")
    expected = ns["render"]()
    actual = (ROOT / "docs" / "perturbations.md").read_text()
    assert actual == expected, "run: .venv/bin/python tools/gen_perturbations_doc.py"
