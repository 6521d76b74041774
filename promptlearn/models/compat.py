"""Every difference between the ``transformers`` releases promptlearn supports, in one place.

Supported: ``transformers>=5.0,<6`` (declared in pyproject.toml; ``.ci/run`` runs the whole test suite on
the floor, 5.0.0, and on the newest release). Nothing outside this module may test a version or probe a
transformers object for an attribute name to tell releases apart: it asks this module instead.

Each difference is detected once, on first use, from the installed package itself (not from its version
number), and each shim says which releases it covers. When the floor moves past a shim's old branch,
delete the branch.

The key/value cache's name (``CACHE_NAME``)
    transformers 5.0 - 5.23 call the cache ``past_key_values``: the keyword a model's ``forward`` takes and
    the field of its output. 5.24 renamed both to ``cache`` (``past_key_values`` is still accepted with a
    deprecation warning until 5.40). The rename is dangerous in one direction: a model of 5.0 - 5.23 given
    ``cache=`` silently drops it into ``**kwargs`` and runs without the cache. Detected from the output
    dataclasses' fields, which were renamed in the same release as the keyword.

Building a cache from per-layer keys and values (:func:`dynamic_cache`, :func:`cache_layers`)
    ``DynamicCache(ddp_cache_data=[(keys, values), ...], config=config)`` and ``cache.layers[i].keys`` /
    ``.values`` are the same in 5.0 - 5.25, as are the ``batch_repeat_interleave`` / ``batch_select_indices``
    methods the causal scorer uses; they are reached through here so that a future change has one place to go.

Parameter names in a saved ``model.safetensors`` (:func:`state_dict_name`)
    ``save_pretrained`` of transformers 5.0 - 5.5 writes BERT-style LayerNorm parameters under their legacy
    names ``LayerNorm.gamma`` / ``LayerNorm.beta``; 5.15 and later write ``weight`` / ``bias`` (releases between
    were not checked). ``from_pretrained`` of every 5.x reads both, so only code that reads a checkpoint's tensors
    by name without transformers (tests comparing saved weights) needs this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

# Importing transformers takes about a second, and ``import promptlearn`` (the CLI's start-up among others) must
# not pay it: the detected values below are computed on first use (PEP 562), once, then kept as plain globals.
_DETECTED = ("CACHE_NAME", "TRANSFORMERS_VERSION", "DynamicCache")


def __getattr__(name: str) -> Any:
    if name not in _DETECTED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import transformers
    from packaging.version import Version
    from transformers.modeling_outputs import BaseModelOutputWithPast

    # The installed release (for messages and environment records only; behaviour follows detected features).
    globals()["TRANSFORMERS_VERSION"] = Version(transformers.__version__)
    # -- the key/value cache's name: 5.0 - 5.23 "past_key_values"; 5.24 and later "cache" (the keyword and the
    # output field were renamed in the same release).
    globals()["CACHE_NAME"] = "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"
    globals()["DynamicCache"] = transformers.DynamicCache
    return globals()[name]


def gguf_dequantize_options() -> dict[str, Any]:
    """``from_pretrained`` options that de-quantize every GGUF block: later 5.x releases can keep blocks packed
    (``GgufConfig``, with the ``kernels`` package) unless told otherwise; earlier ones always de-quantize."""
    try:
        from transformers import GgufConfig
    except ImportError:
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _detected(name: str) -> Any:
    """A detected value from inside this module (a bare global name would not reach ``__getattr__``)."""
    return globals()[name] if name in globals() else __getattr__(name)


CACHE_NAMES = frozenset({"cache", "past_key_values"})
"""Both spellings, for code that must leave a cache out of a model's inputs whichever release made them."""


def with_cache(inputs: dict[str, Any], cache: Any) -> dict[str, Any]:
    """``inputs`` (a model's keyword arguments, changed in place and returned) carrying ``cache``."""
    inputs[_detected("CACHE_NAME")] = cache
    return inputs


def cache_kwarg(cache: Any) -> dict[str, Any]:
    """The keyword argument that hands ``cache`` to a model's ``forward``: ``model(..., **cache_kwarg(c))``."""
    return {_detected("CACHE_NAME"): cache}


def input_cache(inputs: Mapping[str, Any]) -> Any:
    """The cache a model's keyword arguments carry, or ``None``."""
    return inputs.get(_detected("CACHE_NAME"))


def output_cache(output: Any) -> Any:
    """The key/value cache a model's output holds (``None`` when it was run without ``use_cache``)."""
    return getattr(output, _detected("CACHE_NAME"), None)


# -- caches built from, and read back as, per-layer keys and values -------------------------------------------
def dynamic_cache(layers: Iterable[tuple[torch.Tensor, torch.Tensor]], config: Any,
                  cache_class: type | None = None) -> Any:
    """A ``DynamicCache`` (or its subclass ``cache_class``) holding ``layers``: one ``(keys, values)`` pair per
    layer, each ``[batch, kv_heads, length, head_dim]``. Same constructor in 5.0 - 5.25."""
    cls = cache_class if cache_class is not None else _detected("DynamicCache")
    return cls(ddp_cache_data=list(layers), config=config)


def cache_layers(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The ``(keys, values)`` of each layer of a ``DynamicCache``. Same layout in 5.0 - 5.25."""
    return [(layer.keys, layer.values) for layer in cache.layers]


# -- parameter names in a checkpoint save_pretrained wrote -----------------------------------------------------
_LEGACY_NAMES = ((".LayerNorm.gamma", ".LayerNorm.weight"), (".LayerNorm.beta", ".LayerNorm.bias"))


def state_dict_name(saved_name: str) -> str:
    """The ``state_dict`` name of a tensor read from a ``model.safetensors`` that ``save_pretrained`` wrote."""
    for legacy, current in _LEGACY_NAMES:
        if saved_name.endswith(legacy):
            return saved_name[:-len(legacy)] + current
    return saved_name


__all__ = ["CACHE_NAME", "CACHE_NAMES", "DynamicCache", "TRANSFORMERS_VERSION", "cache_kwarg", "cache_layers",
           "dynamic_cache", "input_cache", "output_cache", "state_dict_name", "with_cache"]
