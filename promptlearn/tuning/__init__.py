"""How a prompt is parameterised: one package per tuning method, one small interface (:mod:`.config`,
:mod:`.base`).

=========== ===================================== =========================================
method      config                                trainable parameters
=========== ===================================== =========================================
``manual``  :class:`ManualConfig`                 none of its own (``fit`` trains the model)
``soft``    :class:`SoftPromptConfig`             the ``[SOFT]`` slots' input embeddings
``ptuning`` :class:`PTuningConfig`                a prompt encoder producing those embeddings
``deep``    :class:`DeepPromptConfig`             key/value prefixes at every layer (+ linear head)
``lora``    :class:`LoraPromptConfig`             LoRA matrices (PEFT)
``adapter`` :class:`AdapterPromptConfig`          another PEFT tuner, (IA)^3 by default
``bitfit``  :class:`BitFitConfig`                 offsets of the model's biases
=========== ===================================== =========================================

Each method is a package (``manual/``, ``soft/``, ``deep/``, ``peft/``) holding its config in ``config.py`` (its
options and defaults, its learning rate among them, each option's CLI flag), its :class:`PromptModule` in
``model.py``, and in ``__init__.py`` the line that registers the pair (:func:`~.config.register`), the module
class named by its import path. Importing this package imports every method's config and no torch: the configs,
:data:`CONFIGS`, :data:`SOURCES`, :func:`tuning_config` are read without it (``promptlearn train``'s flags are
generated from them); the torch names (:class:`PromptModule`, :class:`PromptSet`, the module classes, ...) are
imported when first used. :func:`tuning_config` turns ``(name, options)`` into a config; :func:`build_prompt`
makes the :class:`PromptModule` for a loaded model; a :class:`PromptSet` of modules is what a scorer serves.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.errors import ConfigError
from .config import REGISTRY, TuningConfig, cli_option, module_class, register
# The methods register themselves when imported, in this order (the order SOURCES lists them in).
from .manual import ManualConfig  # isort: skip
from .soft import DEFAULT_SOFT_TOKENS, PTuningConfig, SoftPromptConfig  # isort: skip
from .deep import DeepPromptConfig  # isort: skip
from .peft import AdapterPromptConfig, BitFitConfig, LoraPromptConfig  # isort: skip

if TYPE_CHECKING:
    from .base import BuildContext, PromptModule, PromptSet, check_prefix_support
    from .deep.model import DeepPrompt
    from .manual.model import ManualPrompt
    from .peft.model import BitFit, PeftPrompt
    from .soft.model import PTuningPrompt, SoftPrompt

CONFIGS: dict[str, type[TuningConfig]] = {name: config for name, (config, _) in REGISTRY.items()}
SOURCES = tuple(CONFIGS)
SOFT_SOURCES = tuple(name for name, config in CONFIGS.items() if config.fills_soft_slots)
#: Each method's default learning rate (its config's), e.g. for the CLI's help.
LEARNING_RATES = {name: config.learning_rate for name, config in CONFIGS.items()}

#: The names that need torch, imported from these modules when first asked for (PEP 562).
_LAZY = {
    "BuildContext": ".base", "PromptModule": ".base", "PromptSet": ".base", "check_prefix_support": ".base",
    "ManualPrompt": ".manual.model", "SoftPrompt": ".soft.model", "PTuningPrompt": ".soft.model",
    "DeepPrompt": ".deep.model", "PeftPrompt": ".peft.model", "BitFit": ".peft.model",
}

__all__ = [
    "AdapterPromptConfig", "BitFit", "BitFitConfig", "BuildContext", "CONFIGS", "DEFAULT_SOFT_TOKENS", "DeepPrompt",
    "DeepPromptConfig", "LEARNING_RATES", "LoraPromptConfig", "ManualConfig", "ManualPrompt", "PTuningConfig",
    "PTuningPrompt", "PeftPrompt", "PromptModule", "PromptSet", "REGISTRY", "SOFT_SOURCES", "SOURCES", "SoftPrompt",
    "SoftPromptConfig", "TuningConfig", "as_tuning_config", "build_prompt", "check_prefix_support", "cli_option", "module_class",
    "register", "tuning_config",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name == "MODULES":  # name -> module class, every one imported (the registry names them by path)
        value = {source: module_class(source) for source in REGISTRY if REGISTRY[source][1] is not None}
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"MODULES"})


def tuning_config(source: str, options: Mapping[str, Any] | TuningConfig | None = None) -> TuningConfig:
    """The config of tuning method ``source`` from a dict of options (or a config object, returned checked)."""
    if source not in CONFIGS:
        raise ConfigError(f"unknown tuning method {source!r}; choose one of {', '.join(SOURCES)}")
    if isinstance(options, TuningConfig):
        if options.source != source:
            raise ConfigError(f"tuning method {source!r} was given a {type(options).__name__} (for "
                              f"{options.source!r})")
        options.check()
        return options
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(f"the options of tuning method {source!r} must be a dict or its config object, got "
                          f"{type(options).__name__}")
    return CONFIGS[source].from_dict(options)


def as_tuning_config(tuning: str | TuningConfig, owner: str = "") -> TuningConfig:
    """``tuning`` -- a method's name or its config -- as the method's checked config (``owner``: the estimator
    whose parameter it is, for the error message)."""
    if isinstance(tuning, TuningConfig):
        return tuning_config(tuning.source, tuning)
    if not isinstance(tuning, str):
        raise ConfigError(f"{owner + '(' if owner else ''}tuning=...{')' if owner else ''} must be a method's name "
                          f"(e.g. 'soft') or its config (e.g. SoftPromptConfig(n_tokens=8)), got "
                          f"{type(tuning).__name__}")
    return tuning_config(tuning)


def build_prompt(config: TuningConfig, context: BuildContext) -> PromptModule | None:
    """The prompt module of ``config`` for ``context.model`` (None for the manual prompt); imports the method's
    module class (and torch) the first time."""
    if config.source == "manual":
        return None
    return module_class(config.source)(config, context)
