"""Every code block of docs/optim.md runs, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

DOC = Path(__file__).resolve().parents[2] / "docs" / "optim.md"


def test_every_python_block_of_the_optim_docs_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 6
    namespace: dict = {}
    threads = torch.get_num_threads()
    # the snippets build models with torch.nn.Linear, which draws from the global RNG,
    # as user code does; keep the suite's global state as it was
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for i, code in enumerate(blocks):
            try:
                exec(compile(code, f"{DOC.name}[block {i}]", "exec"), namespace)
            except Exception as exc:  # pragma: no cover - the failure message
                pytest.fail(f"docs/optim.md block {i} failed: {exc!r}")
    assert torch.get_num_threads() == threads
    out = capsys.readouterr().out
    assert "The 'sigma' parameter of GaussianGradientNoise must be a float" in out
