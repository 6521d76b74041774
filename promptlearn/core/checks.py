"""Type checks of an estimator's parameters: a wrong type (``batch_size="8"``, ``epochs="3"``) is a
:class:`~promptlearn.core.errors.ConfigError` naming the parameter, not a ``TypeError`` from deep inside.

Checked when the parameters are used (scikit-learn's convention: ``__init__`` only stores them); a value's
range is checked where it is used, as before.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ConfigError


def _int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _str(value: Any) -> bool:
    return isinstance(value, str)


def _path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _names(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value)


def _strings(value: Any) -> bool:
    return isinstance(value, str) or _names(value)


def _device(value: Any) -> bool:
    return isinstance(value, str) or type(value).__name__ == "device"  # or a torch.device


_KINDS = {"int": (_int, "an integer"), "real": (_real, "a number"), "bool": (_bool, "True or False"),
          "str": (_str, "a string"), "path": (_path, "a path (string)"),
          "strings": (_strings, "a string or a list of strings"),
          "names": (_names, "a list of field names (e.g. ['text'])"),
          "device": (_device, "a device name such as 'cpu'")}

def check_types(estimator: Any, spec: Mapping[str, tuple[str, bool, bool]], *, fitting: bool = False) -> None:
    """Raise :class:`ConfigError` for the first parameter in ``spec`` (name -> (kind, None allowed, needed only by
    fit)) whose value on ``estimator`` (an estimator or an options group) has the wrong type; those needed only by
    ``fit`` are checked when ``fitting``."""
    name_of = type(estimator).__name__
    for name, (kind, optional, fit_only) in spec.items():
        if (fit_only and not fitting) or not hasattr(estimator, name):
            continue
        value = getattr(estimator, name)
        if value is None and optional:
            continue
        test, expected = _KINDS[kind]
        if not test(value):
            raise ConfigError(f"{name_of}({name}=...) must be {expected}{' or None' if optional else ''}, got "
                              f"{value!r} ({type(value).__name__})")
