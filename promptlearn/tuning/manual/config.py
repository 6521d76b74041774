"""The manual prompt's config (torch-free; the method is described in :mod:`promptlearn.tuning.manual`)."""

from __future__ import annotations

from dataclasses import dataclass

from ...core.errors import ConfigError
from ..config import TuningConfig, cli_option


@dataclass
class ManualConfig(TuningConfig):
    """The template as written; :meth:`~promptlearn.PromptClassifier.fit` trains the model's own weights.

    ``trainable``: which of them (``all``, ``no_embeddings``, ``bottom_frozen:N``, ``top:N``). ``mlm_weight``:
    PET's auxiliary language-model loss on unlabelled text, ``(1 - mlm_weight) * CE + mlm_weight * LM`` (PET
    used 1e-4; 0, the default, turns it off)."""

    source = "manual"
    learning_rate: float = 1e-5
    trainable: str = cli_option("all", "--trainable", "which weights train: all (default), no_embeddings, "
                                "bottom_frozen:N (embeddings and the N lowest layers frozen), top:N (only the N top "
                                "layers and the head)", metavar="SPEC")
    mlm_weight: float = cli_option(0.0, "--mlm-weight", "PET's auxiliary LM loss on --unlabeled text: (1-w)*CE + "
                                   "w*LM (PET used 1e-4; default 0: off)", metavar="W")

    def validate(self) -> None:
        if not isinstance(self.trainable, str):
            raise ConfigError(f"ManualConfig(trainable=...) must be a string such as 'all', got {self.trainable!r}")
        if isinstance(self.mlm_weight, bool) or not isinstance(self.mlm_weight, (int, float)) or not (
                0 <= self.mlm_weight <= 1):
            raise ConfigError(f"ManualConfig(mlm_weight=...) must be a number in [0, 1], got {self.mlm_weight!r}")
