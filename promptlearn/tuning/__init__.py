"""How a prompt is parameterised: one module per kind, one small interface (:mod:`.base`).

=========== ===================================== =========================================
source      config                                trainable parameters
=========== ===================================== =========================================
``manual``  :class:`ManualConfig`                 none of its own (``fit`` trains the model)
``soft``    :class:`SoftPromptConfig`             the ``[SOFT]`` slots' input embeddings
``ptuning`` :class:`PTuningConfig`                a prompt encoder producing those embeddings
``deep``    :class:`DeepPromptConfig`             key/value prefixes at every layer (+ linear head)
``lora``    :class:`LoraPromptConfig`             LoRA matrices (PEFT)
``adapter`` :class:`AdapterPromptConfig`          another PEFT tuner, (IA)^3 by default
``bitfit``  :class:`BitFitConfig`                 offsets of the model's biases
=========== ===================================== =========================================

:func:`source_config` turns ``(source, options)`` into a config; :func:`build_prompt` makes the
:class:`PromptModule` for a loaded model; a :class:`PromptSet` of modules is what a scorer serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.errors import ConfigError
from .base import BuildContext, PromptModule, PromptSet, SourceConfig, check_prefix_support
from .deep import DeepPrompt, DeepPromptConfig
from .manual import ManualConfig, ManualPrompt
from .peft import AdapterPromptConfig, BitFit, BitFitConfig, LoraPromptConfig, PeftPrompt
from .soft import DEFAULT_SOFT_TOKENS, PTuningConfig, PTuningPrompt, SoftPrompt, SoftPromptConfig

CONFIGS: dict[str, type[SourceConfig]] = {
    "manual": ManualConfig, "soft": SoftPromptConfig, "ptuning": PTuningConfig, "deep": DeepPromptConfig,
    "lora": LoraPromptConfig, "adapter": AdapterPromptConfig, "bitfit": BitFitConfig,
}
MODULES: dict[str, type[PromptModule]] = {
    "soft": SoftPrompt, "ptuning": PTuningPrompt, "deep": DeepPrompt, "lora": PeftPrompt, "adapter": PeftPrompt,
    "bitfit": BitFit,
}
SOURCES = tuple(CONFIGS)
SOFT_SOURCES = ("soft", "ptuning")  # the sources that fill [SOFT] slots
# Starting points for AdamW (the CLI's defaults): the literature's usual ranges, not tuned here.
LEARNING_RATES = {"manual": 1e-5, "soft": 3e-2, "ptuning": 1e-3, "deep": 1e-2, "lora": 5e-4, "adapter": 3e-3,
                  "bitfit": 1e-3}

__all__ = [
    "AdapterPromptConfig", "BitFit", "BitFitConfig", "BuildContext", "CONFIGS", "DEFAULT_SOFT_TOKENS", "DeepPrompt",
    "DeepPromptConfig", "LEARNING_RATES", "LoraPromptConfig", "ManualConfig", "ManualPrompt", "PTuningConfig",
    "PTuningPrompt", "PeftPrompt",
    "PromptModule", "PromptSet", "SOFT_SOURCES", "SOURCES", "SoftPrompt", "SoftPromptConfig", "SourceConfig",
    "build_prompt", "check_prefix_support", "source_config",
]


def source_config(source: str, options: Mapping[str, Any] | SourceConfig | None = None) -> SourceConfig:
    """The config of ``source`` from a dict of options (or a config object, returned checked)."""
    if source not in CONFIGS:
        raise ConfigError(f"unknown prompt source {source!r}; choose one of {', '.join(SOURCES)}")
    if isinstance(options, SourceConfig):
        if options.source != source:
            raise ConfigError(f"source={source!r} was given a {type(options).__name__} (for {options.source!r})")
        options.validate()
        return options
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(f"source_options must be a dict or a config object, got {type(options).__name__}")
    return CONFIGS[source].from_dict(options)


def build_prompt(config: SourceConfig, context: BuildContext) -> PromptModule | None:
    """The prompt module of ``config`` for ``context.model`` (None for the manual prompt)."""
    if config.source == "manual":
        return None
    return MODULES[config.source](config, context)
