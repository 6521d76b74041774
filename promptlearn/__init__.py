"""promptlearn: prompt-based zero- and few-shot text classification (PET / LM-BFF style).

Names are imported on first use (PEP 562), so ``import promptlearn`` and the light modules
(``promptlearn.template``, ``promptlearn.verbalizer``) load without torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "adapt": "adapt",
    "PromptBank": "bank",
    "FineTuneClassifier": "baselines", "ProbeClassifier": "baselines",
    "contextual_calibration": "calibration",
    "PromptClassifier": "classifier",
    "DemonstrationSelector": "demonstrations", "SentenceEncoder": "demonstrations",
    "PromptEnsemble": "ensemble",
    "ChatTemplateError": "errors", "ChecksumError": "errors", "ConfigError": "errors", "DataError": "errors",
    "DemonstrationError": "errors", "DemonstrationTooLongError": "errors", "MissingFieldError": "errors",
    "ModelLoadError": "errors", "PromptlearnError": "errors", "SavedFolderError": "errors", "TemplateError": "errors",
    "TrainingError": "errors", "TruncationError": "errors", "UnknownLabelError": "errors",
    "UnsafeFolderError": "errors", "VerbalizerError": "errors",
    "WrongModelKindError": "errors",
    "LoadedModel": "models", "load_model": "models",
    "CausalLMScorer": "scorer", "MaskedLMScorer": "scorer", "make_scorer": "scorer",
    "Candidate": "search", "PromptSearch": "search", "SearchResult": "search", "write_results": "search",
    "Prompt": "template", "Segment": "template", "Template": "template",
    "AdapterPromptConfig": "prompts", "BitFitConfig": "prompts", "DeepPromptConfig": "prompts",
    "LoraPromptConfig": "prompts", "PTuningConfig": "prompts", "PromptModule": "prompts", "SoftPromptConfig": "prompts",
    "Trainer": "training", "TrainingConfig": "training",
    "Verbalizer": "verbalizer",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'promptlearn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
