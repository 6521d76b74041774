"""The configs of prompt tuning and P-tuning (torch-free; the methods are described in
:mod:`promptlearn.tuning.soft`)."""

from __future__ import annotations

from dataclasses import dataclass

from ...core.errors import ConfigError
from ..config import TuningConfig, cli_option

SOFT_INITS = ("vocab", "label_words", "text", "random")
DEFAULT_SOFT_TOKENS = 8


@dataclass
class SoftPromptConfig(TuningConfig):
    """Prompt tuning: ``n_tokens`` (only for a template without ``[SOFT]`` slots: how many to prepend,
    default 8), ``init`` (``vocab``, ``label_words``, ``text`` with ``init_text``, or ``random``)."""

    source = "soft"
    fills_soft_slots = True
    learning_rate: float = 3e-2
    n_tokens: int | None = cli_option(None, "--soft-tokens", "with a template without [SOFT] slots: prepend "
                                      "[SOFT:N] (default 8)", metavar="N")
    init: str = cli_option("vocab", "--soft-init", "start from random vocabulary embeddings (default), the label "
                           "words', --soft-init-text's, or random noise (weak)", choices=SOFT_INITS)
    init_text: str | None = cli_option(None, "--soft-init-text", "the text whose token embeddings start the soft "
                                       "prompt", implies={"init": "text"})

    def validate(self) -> None:
        if self.n_tokens is not None and (isinstance(self.n_tokens, bool) or int(self.n_tokens) < 1):
            raise ConfigError(f"n_tokens must be >= 1, got {self.n_tokens!r}")
        if self.init not in SOFT_INITS:
            raise ConfigError(f"init must be one of {SOFT_INITS}, got {self.init!r}")
        if self.init == "text" and not (self.init_text or "").strip():
            raise ConfigError("init='text' needs init_text (the words whose embeddings start the soft prompt)")


@dataclass
class PTuningConfig(TuningConfig):
    """P-tuning: ``encoder`` (``lstm`` or ``mlp``), ``hidden_size`` (the encoder's width; default: the
    embedding size), ``n_tokens`` as for prompt tuning, ``save_encoder`` (save the encoder, to train on
    after loading, instead of only the vectors it produces)."""

    source = "ptuning"
    fills_soft_slots = True
    learning_rate: float = 1e-3
    n_tokens: int | None = cli_option(None, "--soft-tokens", "as for soft", metavar="N")
    encoder: str = cli_option("lstm", "--ptuning-encoder", "the prompt encoder (default lstm)",
                              choices=("lstm", "mlp"))
    hidden_size: int | None = cli_option(None, "--encoder-hidden", "encoder width (default: the embedding size)",
                                         metavar="N")
    save_encoder: bool = cli_option(False, "--ptuning-save-encoder", "save the encoder (to train on after "
                                    "loading), not only the vectors it produces")

    def validate(self) -> None:
        if self.n_tokens is not None and (isinstance(self.n_tokens, bool) or int(self.n_tokens) < 1):
            raise ConfigError(f"n_tokens must be >= 1, got {self.n_tokens!r}")
        if self.encoder not in ("lstm", "mlp"):
            raise ConfigError(f"encoder must be 'lstm' or 'mlp', got {self.encoder!r}")
        if self.hidden_size is not None and int(self.hidden_size) < 2:
            raise ConfigError(f"hidden_size must be >= 2, got {self.hidden_size!r}")
