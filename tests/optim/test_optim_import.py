"""`import perturbkit` does not import perturbkit.optim (torch is an optional extra)."""

from __future__ import annotations

import subprocess
import sys


def test_import_perturbkit_does_not_import_optim():
    code = "import sys, perturbkit; print('perturbkit.optim' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_optim_without_torch_is_one_clear_line():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "try:\n"
        "    import perturbkit.optim\n"
        "except ImportError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == (
        "MissingExtraError perturbkit.optim needs torch: pip install 'perturbkit[torch]'."
    )
