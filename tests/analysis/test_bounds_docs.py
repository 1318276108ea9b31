"""docs/bounds.md: every python snippet runs, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

# Third-party imports that touch Python's global random state on first import
# happen here, before the RNG guard fixture starts.
import sklearn.datasets  # noqa: F401

PAGE = Path(__file__).resolve().parents[2] / "docs" / "bounds.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_bounds_page_snippets_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = BLOCK.findall(PAGE.read_text())
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    ns: dict[str, object] = {"__name__": "doc_bounds"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"docs/bounds.md[block {i}]", "exec"), ns)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"docs/bounds.md, python block {i} failed: {exc!r}") from exc
    assert (tmp_path / "curves.png").is_file()


def test_bounds_page_has_no_placeholders() -> None:
    text = PAGE.read_text()
    assert not re.search(r"\b[A-Z]+_(TABLE|TEXT|RATIOS)\b", text)
