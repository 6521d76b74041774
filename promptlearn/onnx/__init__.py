"""ONNX export of a saved prompt classifier and a torch-free runtime to serve it.

``export_onnx`` (:mod:`.export`, needs torch) writes a folder; :class:`OnnxClassifier` (:mod:`.runtime`) loads it
and predicts with onnxruntime, tokenizers and numpy. Names are imported on first use, so ``import
promptlearn.onnx`` and the runtime never import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"OnnxClassifier": ".runtime", "is_onnx_folder": ".runtime", "export_onnx": ".export",
         "ExportError": ".export"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
