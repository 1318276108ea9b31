"""Data flows one way (DESIGN.md): each module imports only the layers above it.

The check reads every module's import statements (module level and inside
functions, so lazy imports count too) and compares them with the allowed
layers below. A new top-level module must be placed in a layer here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "perturbkit"

PLUMBING = {"_types", "_rng", "_validation", "_extras", "_version", "_params", "exceptions"}
# layer name -> the top-level parts of perturbkit it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    **{p: PLUMBING for p in PLUMBING},
    "models": PLUMBING,
    "metrics": PLUMBING,
    "store": PLUMBING,
    "calc": PLUMBING,
    "perturbations": PLUMBING,
    "attacks": PLUMBING | {"models", "perturbations"},
    "testing": PLUMBING | {"perturbations", "models"},
    "engine": PLUMBING | {"models", "perturbations", "metrics", "store", "analysis"},
    "analysis": PLUMBING | {"models", "perturbations", "metrics", "engine", "store"},
    "optim": PLUMBING | {"perturbations", "models"},
    "report": PLUMBING | {"engine", "analysis", "metrics", "perturbations"},
    "data": PLUMBING,
    "experiment": None,  # type: ignore[dict-item]  # calls the public API, like the CLI
    "demo": None,  # type: ignore[dict-item]  # top of the stack: anything
    "cli": None,  # type: ignore[dict-item]
    "web": None,  # type: ignore[dict-item]
    "__init__": None,  # type: ignore[dict-item]
}
# The engine may use analysis only for thresholds, which imports nothing above plumbing.
ENGINE_ANALYSIS = {"analysis.thresholds"}


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py"))


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    pkg = path.relative_to(SRC).parent.parts
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("perturbkit")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(pkg[: len(pkg) - node.level + 1])
                mod = ".".join(["perturbkit", *base, *([node.module] if node.module else [])])
                out.add(mod)
            elif node.module and node.module.startswith("perturbkit"):
                out.add(node.module)
                if node.module == "perturbkit":
                    out |= {f"perturbkit.{a.name}" for a in node.names}
    return out


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_layers(path: Path) -> None:
    layer = _layer(path)
    assert layer in ALLOWED, f"{path.relative_to(SRC)}: place layer {layer!r} in ALLOWED"
    allowed = ALLOWED[layer]
    if allowed is None:
        return
    for mod in _imports(path):
        parts = mod.split(".")
        if len(parts) == 1:
            pytest.fail(f"{path.relative_to(SRC)} imports the package root 'perturbkit'")
        target = parts[1]
        if target == layer:
            continue
        assert target in allowed, (
            f"{path.relative_to(SRC)} (layer {layer}) imports {mod}; allowed: {sorted(allowed)}"
        )
        if layer == "engine" and target == "analysis":
            assert ".".join(parts[1:3]) in ENGINE_ANALYSIS, f"engine may not import {mod}"
