"""scikit-learn's estimator protocol for a classifier, without importing scikit-learn.

``import sklearn.base`` costs about 2 s on a small CPU (it pulls in scipy); a command-line call that only
scores pays it before its first prediction. :class:`ClassifierProtocol` gives an estimator what scikit-learn's
tools ask of one -- ``get_params`` / ``set_params`` over the constructor's parameters (nested ``group__option``
names included), ``_get_param_names``, a ``repr`` of the parameters that differ from their defaults, and the
classifier tags -- and imports scikit-learn only when one of its tools asks for the tags (``clone``,
``GridSearchCV``, ``Pipeline`` and ``cross_val_score`` work as with ``BaseEstimator``; tests/test_options.py).
"""

from __future__ import annotations

import inspect
from typing import Any


class ClassifierProtocol:
    """The scikit-learn estimator protocol (``BaseEstimator`` + ``ClassifierMixin``'s type) for a classifier."""

    _estimator_type = "classifier"  # what scikit-learn before 1.6 reads

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The constructor's parameter names, sorted (``**kwargs`` are not parameters)."""
        if cls.__init__ is object.__init__:
            return []
        parameters = [p for p in inspect.signature(cls.__init__).parameters.values()
                      if p.name != "self" and p.kind is not p.VAR_KEYWORD]
        if any(p.kind is p.VAR_POSITIONAL for p in parameters):
            raise RuntimeError(f"{cls.__name__}'s constructor takes *args; an estimator names its parameters")
        return sorted(p.name for p in parameters)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The parameters by name; with ``deep``, those of parameter objects that have ``get_params`` as well,
        as ``name__option``."""
        params: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{key}", option) for key, option in value.get_params().items())
            params[name] = value
        return params

    def set_params(self, **params: Any) -> Any:
        """Set parameters by name (a nested ``name__option`` is passed on to that parameter's ``set_params``)."""
        names = set(self._get_param_names())
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, delimiter, option = key.partition("__")
            if name not in names:
                raise ValueError(f"Invalid parameter {name!r} for estimator {type(self).__name__}. Valid parameters "
                                 f"are: {sorted(names)!r}.")
            if delimiter:
                nested.setdefault(name, {})[option] = value
            else:
                setattr(self, name, value)
        for name, options in nested.items():
            getattr(self, name).set_params(**options)
        return self

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        shown = []
        for name in self._get_param_names():
            value, default = getattr(self, name, None), defaults[name].default
            if value is not default and repr(value) != repr(default):
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __sklearn_tags__(self) -> Any:
        """A classifier's tags (scikit-learn 1.6 and later ask for them; imported only then)."""
        from sklearn.base import BaseEstimator, ClassifierMixin

        class Tagged(ClassifierMixin, BaseEstimator):
            pass

        return Tagged().__sklearn_tags__()
