"""promptlearn: prompt-based zero- and few-shot text classification (PET / LM-BFF style)."""

from .baselines import FineTuneClassifier, ProbeClassifier
from .calibration import contextual_calibration
from .classifier import PromptClassifier
from .errors import (ChecksumError, ConfigError, DataError, MissingFieldError, ModelLoadError, PromptlearnError, TemplateError,
                     TruncationError, UnknownLabelError, VerbalizerError, WrongModelKindError)
from .models import LoadedModel, load_model
from .scorer import CausalLMScorer, MaskedLMScorer, make_scorer
from .template import Prompt, Segment, Template
from .verbalizer import Verbalizer

__version__ = "0.1.0"

__all__ = [
    "CausalLMScorer", "ChecksumError", "ConfigError", "DataError", "LoadedModel", "MaskedLMScorer", "MissingFieldError",
    "ModelLoadError", "Prompt", "PromptClassifier", "PromptlearnError", "Segment", "Template", "TemplateError",
    "TruncationError", "UnknownLabelError", "Verbalizer", "VerbalizerError", "WrongModelKindError",
    "contextual_calibration", "load_model", "make_scorer", "__version__",
    "FineTuneClassifier", "ProbeClassifier",
]
