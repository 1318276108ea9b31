"""Write docs/perturbations.md from the registry (a test checks it is up to date).

Run:  .venv/bin/python tools/gen_perturbations_doc.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from perturbkit import perturbations

OUT = Path(__file__).resolve().parents[1] / "docs" / "perturbations.md"


def render() -> str:
    lines = [
        "# Perturbations",
        "",
        "Generated from the registry by `tools/gen_perturbations_doc.py`; "
        "`perturbkit perturbations` prints the same table.",
        "Stored results record `name@version`; a changed behaviour bumps the version.",
        "",
    ]
    by_modality: dict[str, list[dict]] = {}
    for name in perturbations.list():
        d = perturbations.describe(name)
        by_modality.setdefault(d["modality"], []).append(d)
    for modality in sorted(by_modality):
        lines += [
            f"## {modality}",
            "",
            "| name@version | one unit of magnitude | max | parameters | what it does |",
            "|---|---|---|---|---|",
        ]
        for d in by_modality[modality]:
            params = ", ".join(f"`{k}={v!r}`" for k, v in d["params"].items()) or "none"
            mx = "" if d["max_magnitude"] is None else f"{d['max_magnitude']:g}"
            summary = d["summary"].replace("|", "\\|")
            unit = d["unit"].replace("|", "\\|")
            params = params.replace("|", "\\|")
            lines.append(f"| `{d['id']}` | {unit} | {mx} | {params} | {summary} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}", file=sys.stderr)
