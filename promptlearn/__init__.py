"""promptlearn: prompt-based zero- and few-shot text classification (PET / LM-BFF style).

Names are imported on first use (PEP 562), so ``import promptlearn`` and the light modules
(``promptlearn.core.template``, ``promptlearn.core.verbalizer``) load without torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "adapt": "applications.adapt",
    "PromptBank": "estimators.bank",
    "FineTuneClassifier": "estimators.finetune", "ProbeClassifier": "estimators.probe",
    "contextual_calibration": "core.calibration",
    "PromptClassifier": "estimators.classifier",
    "record_evaluation": "estimators.model_card", "push_to_hub": "estimators.hub",
    "OnnxClassifier": "onnx.runtime", "export_onnx": "onnx.export",
    "DemonstrationSelector": "pipeline.demonstrations", "SentenceEncoder": "pipeline.demonstrations",
    "PromptEnsemble": "estimators.ensemble",
    "ChatTemplateError": "core.errors", "ChecksumError": "core.errors", "ConfigError": "core.errors", "DataError": "core.errors",
    "DemonstrationError": "core.errors", "DemonstrationTooLongError": "core.errors", "MissingFieldError": "core.errors",
    "ModelLoadError": "core.errors", "PromptlearnError": "core.errors", "SavedFolderError": "core.errors", "TemplateError": "core.errors",
    "TrainingError": "core.errors", "TruncationError": "core.errors", "UnknownLabelError": "core.errors",
    "UnsafeFolderError": "core.errors", "VerbalizerError": "core.errors",
    "WrongModelKindError": "core.errors",
    "LoadedModel": "models.loader", "load_model": "models.loader",
    "CausalLMScorer": "scorer", "MaskedLMScorer": "scorer", "make_scorer": "scorer",
    "Candidate": "applications.search", "PromptSearch": "applications.search", "SearchResult": "applications.search", "write_results": "applications.search",
    "Prompt": "core.template", "Segment": "core.template", "Template": "core.template",
    "DemonstrationOptions": "estimators.options", "ScoringOptions": "estimators.options",
    "TrainingOptions": "estimators.options",
    "ManualConfig": "tuning", "TuningConfig": "tuning", "tuning_config": "tuning",
    "AdapterPromptConfig": "tuning", "BitFitConfig": "tuning", "DeepPromptConfig": "tuning",
    "LoraPromptConfig": "tuning", "PTuningConfig": "tuning", "PromptModule": "tuning", "SoftPromptConfig": "tuning",
    "Trainer": "pipeline.training", "TrainingConfig": "pipeline.training",
    "Verbalizer": "core.verbalizer",
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
