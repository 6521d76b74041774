"""Configuration groups as scikit-learn sees them: ``get_params`` for a dataclass, and ``replace`` for a copy
with changes (an unknown name is one :class:`~promptlearn.core.errors.ConfigError` listing the known ones).

An estimator holding such a group exposes its options as nested parameters (``training__epochs``) to
``get_params(deep=True)``, ``set_params``, ``clone`` and ``GridSearchCV``."""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import ConfigError


class ConfigGroup:
    """Mixin for a dataclass of options."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` (the object itself is left as it is)."""
        names = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ConfigError(f"{type(self).__name__} has no option(s) {unknown}; it takes {names}")
        return dataclasses.replace(self, **changes)
