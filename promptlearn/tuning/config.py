"""The tuning methods' configs and their registry, without torch.

A tuning method is a folder of this package (PEFT's layout): ``config.py`` holds its config, a dataclass subclass
of :class:`TuningConfig` (its options, their defaults, its learning rate, the CLI flag of each option through
:func:`cli_option`); ``model.py`` holds its :class:`~promptlearn.tuning.base.PromptModule`; ``__init__.py``
registers the pair (:func:`register`), naming the module class by its import path so that importing a method, or
reading every method's config (``promptlearn train``'s flags are generated from them), imports no torch. The module
class is imported on first use (:func:`module_class`).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..core.config import ConfigGroup
from ..core.errors import ConfigError


@dataclass
class TuningConfig(ConfigGroup):
    """Base of the tuning methods' configs: a dataclass with plain JSON values. ``learning_rate``: AdamW's, for
    :meth:`~promptlearn.PromptClassifier.fit` (each method's default is the literature's usual starting point
    for it, not tuned here)."""

    source: ClassVar[str] = ""  # the method's registered name
    fills_soft_slots: ClassVar[bool] = False  # whether the template's [SOFT] slots are this method's vectors
    learning_rate: float = 1e-5

    def check(self) -> None:
        """Raise :class:`~promptlearn.core.errors.ConfigError` for a value out of range."""
        if isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, (int, float)) or not (
                self.learning_rate > 0):
            raise ConfigError(f"{type(self).__name__}(learning_rate=...) must be a number > 0, got "
                              f"{self.learning_rate!r}")
        self.validate()

    def validate(self) -> None:
        """The method's own range checks (a :class:`~promptlearn.core.errors.ConfigError` for a bad value)."""

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> TuningConfig:
        values = dict(values or {})
        given = values.pop("source", cls.source)
        if given != cls.source:
            raise ConfigError(f"options for source {given!r} given to source {cls.source!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown} for source {cls.source!r}; it takes {sorted(names)}")
        config = cls(**values)
        config.check()
        return config


def cli_option(default: Any, flag: str, help: str, **argparse_options: Any) -> Any:
    """A config field the ``promptlearn train`` command exposes as ``flag`` (its type, ``store_true`` for a bool,
    comes from the field; ``choices``, ``metavar`` go to argparse; ``implies={"init": "text"}`` sets other options
    when the flag is given and they are not). The CLI's flags are generated from these (``promptlearn.cli``)."""
    return dataclasses.field(default=default, metadata={"flag": flag, "help": help, **argparse_options})


#: The tuning methods: name -> (config class, module class or its ``"package.module:Class"`` path; None for
#: ``manual``, which injects nothing). Each method's package registers itself with :func:`register`.
REGISTRY: dict[str, tuple[type[TuningConfig], str | type | None]] = {}
_RESOLVED: dict[str, type | None] = {}


def register(config: type[TuningConfig], module: str | type | None) -> None:
    """Make the tuning method ``config.source`` known: its config class and the module class it builds, given as
    ``"package.module:Class"`` (imported on first use, so registering imports no torch) or as the class itself."""
    if not config.source:
        raise ConfigError(f"{config.__name__} has no source name (its class attribute 'source')")
    if isinstance(module, str) and (module.count(":") != 1 or not all(module.split(":"))):
        raise ConfigError(f"the module of tuning method {config.source!r} must be named 'package.module:Class', "
                          f"got {module!r}")
    REGISTRY[config.source] = (config, module)
    _RESOLVED.pop(config.source, None)


def module_class(name: str) -> type | None:
    """The :class:`~promptlearn.tuning.base.PromptModule` class of tuning method ``name`` (None for ``manual``),
    imported the first time it is asked for."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown tuning method {name!r}; choose one of {', '.join(REGISTRY)}")
    if name not in _RESOLVED:
        module = REGISTRY[name][1]
        if isinstance(module, str):
            path, _, attribute = module.partition(":")
            try:
                module = getattr(importlib.import_module(path), attribute)
            except AttributeError:
                raise ConfigError(f"tuning method {name!r} is registered with {REGISTRY[name][1]!r}, but "
                                  f"{path} has no {attribute!r}") from None
        _RESOLVED[name] = module
    return _RESOLVED[name]
