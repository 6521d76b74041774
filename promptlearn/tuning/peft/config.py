"""The configs of LoRA, PEFT adapters and BitFit (torch-free: PEFT is imported only to make a PEFT config; the
methods are described in :mod:`promptlearn.tuning.peft`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ...core.errors import ConfigError
from ..config import TuningConfig, cli_option


def _require_peft() -> Any:
    try:
        import peft
    except ImportError:
        raise ConfigError("LoRA and adapters need the PEFT library: pip install 'promptlearn[peft]' "
                          "(or pip install peft)") from None
    return peft


@dataclass
class LoraPromptConfig(TuningConfig):
    """LoRA through PEFT: ``r``, ``lora_alpha``, ``lora_dropout``, ``target_modules`` (None: PEFT's default
    for the architecture), ``options`` (more ``peft.LoraConfig`` fields)."""

    source = "lora"
    learning_rate: float = 5e-4
    r: int = cli_option(8, "--lora-r", "rank (default 8)", metavar="N")
    lora_alpha: float = cli_option(16, "--lora-alpha", "scaling alpha (default 16)")
    lora_dropout: float = cli_option(0.0, "--lora-dropout", "dropout (default 0)")
    target_modules: list[str] | str | None = cli_option(None, "--lora-targets", "comma-separated module names "
                                                        "(default: PEFT's for the architecture)", metavar="NAMES")
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if isinstance(self.r, bool) or int(self.r) < 1:
            raise ConfigError(f"r must be >= 1, got {self.r!r}")
        if not 0 <= float(self.lora_dropout) < 1:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")

    def peft_config(self) -> Any:
        peft = _require_peft()
        values = {"r": int(self.r), "lora_alpha": self.lora_alpha, "lora_dropout": float(self.lora_dropout),
                  "target_modules": self.target_modules, **self.options}
        try:
            return peft.LoraConfig(**values)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid LoRA options: {exc}") from None


@dataclass
class AdapterPromptConfig(TuningConfig):
    """Another PEFT tuner: ``method`` (a PEFT type such as ``ia3``, ``loha``, ``lokr``, ``oft``, ``vera``,
    ``ln_tuning``), ``options`` (its config's fields)."""

    source = "adapter"
    learning_rate: float = 3e-3
    method: str = cli_option("ia3", "--adapter-method", "a PEFT tuner such as ia3 (default), loha, lokr, oft, vera, "
                             "ln_tuning", metavar="PEFT_TYPE")
    options: dict[str, Any] = field(default_factory=dict)

    def peft_config(self) -> Any:
        _require_peft()
        from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

        key = str(self.method).upper()
        config_class = PEFT_TYPE_TO_CONFIG_MAPPING.get(key)
        prompt_learning = {"PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING", "MULTITASK_PROMPT_TUNING", "CPT",
                           "ADAPTION_PROMPT"}
        if config_class is None or key in prompt_learning:
            available = sorted(k.lower() for k in PEFT_TYPE_TO_CONFIG_MAPPING if k not in prompt_learning)
            raise ConfigError(f"adapter method {self.method!r} is not a PEFT tuner that injects into layers; choose "
                              f"one of {available} (soft / deep prompts are the 'soft', 'ptuning' and 'deep' "
                              "sources)")
        try:
            return config_class(**self.options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid options for adapter method {self.method!r}: {exc}") from None


@dataclass
class BitFitConfig(TuningConfig):
    """BitFit: only bias terms train; ``pattern`` (a regular expression searched in parameter names)
    restricts which (default: every bias)."""

    source = "bitfit"
    learning_rate: float = 1e-3
    pattern: str | None = cli_option(None, "--bitfit-pattern", "train only the biases whose names match",
                                     metavar="REGEX")

    def validate(self) -> None:
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ConfigError(f"bad BitFit pattern {self.pattern!r}: {exc}") from None
