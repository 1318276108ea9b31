"""Lazy imports of optional dependencies, with a message naming the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from perturbkit.exceptions import MissingExtraError

_EXTRA_OF = {
    "torch": "torch",
    "onnxruntime": "onnx",
    "onnx": "onnx",
    "skops": "skops",
    "skops.io": "skops",
    "pyarrow": "parquet",
    "simplejpeg": "image",
    "PIL": "image",
    "cv2": "image",
}

_PACKAGE_OF = {"cv2": "opencv-python-headless", "PIL": "pillow"}


def require(module: str, *, feature: str) -> ModuleType:
    """Import ``module`` or raise a one-line error naming the pip extra.

    ``feature`` is what needed it, e.g. ``"The torch adapter"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRA_OF.get(module, module.split(".")[0])
        package = _PACKAGE_OF.get(module, module.split(".")[0])
        raise MissingExtraError(
            f"{feature} needs {package}: pip install 'perturbkit[{extra}]'."
        ) from exc
