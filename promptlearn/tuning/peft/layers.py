"""PEFT's tuner layers in a model: which adapters a layer holds, and switching every adapter off.

:class:`~promptlearn.tuning.peft.model.PeftPrompt` switches its own adapter on through these;
:meth:`PromptSet.forward <promptlearn.tuning.PromptSet.forward>` switches another prompt's adapter off for a
pass that does not use it. PEFT itself is imported only when a model is inspected.
"""

from __future__ import annotations

from typing import Any


def deactivate_adapters(model: Any) -> None:
    """Switch every PEFT adapter in ``model`` off (the base model runs as it was)."""
    for layer in (m for m in model.modules() if is_tuner_layer(m)):
        layer.enable_adapters(False)
    model.__dict__["_promptlearn_active"] = None


def is_tuner_layer(module: Any) -> bool:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return isinstance(module, BaseTunerLayer)


def layer_adapters(layer: Any) -> set[str]:
    names: set[str] = set()
    for attribute in getattr(layer, "adapter_layer_names", ()):
        container = getattr(layer, attribute, None)
        if hasattr(container, "keys"):
            names.update(container.keys())
    return names
