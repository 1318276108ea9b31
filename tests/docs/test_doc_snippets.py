"""Every Python snippet in the README and the docs runs (typer's docs_src idea, in place).

The ```python blocks of one page run in order in one namespace, in a
temporary working directory, so a page reads as one session.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

# Third-party imports that touch Python's global random state on first import
# (outside our control) happen here, before the RNG guard fixture starts.
import sklearn.datasets
import sklearn.linear_model  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["README.md", "docs/engine.md", "docs/bounds.md", "docs/text_audio.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("page", PAGES)
def test_snippets_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / page).read_text()
    blocks = BLOCK.findall(text)
    assert blocks, f"{page} has no python snippets"
    monkeypatch.chdir(tmp_path)
    ns: dict[str, object] = {"__name__": f"doc_{Path(page).stem}"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page}[block {i}]", "exec"), ns)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{page}, python block {i} failed: {exc!r}") from exc
