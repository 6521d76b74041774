"""The modules of LoRA, PEFT adapters and BitFit (see :mod:`promptlearn.tuning.peft`)."""

from __future__ import annotations

import re
import warnings
from typing import Any

import torch
from torch import nn

from ...core.errors import ConfigError
from ..base import BuildContext, PromptModule, seeded, unique_name
from .config import AdapterPromptConfig, BitFitConfig, LoraPromptConfig, _require_peft
from .layers import is_tuner_layer, layer_adapters


def _key(name: str) -> str:
    return name.replace(".", ":")


class PeftPrompt(PromptModule):
    """A PEFT adapter (LoRA, (IA)^3, ...) injected into the base model under its own name."""

    changes_model = True

    def __init__(self, config: LoraPromptConfig | AdapterPromptConfig, context: BuildContext) -> None:
        super().__init__(config, context)
        self.source = config.source  # type: ignore[misc]
        peft = _require_peft()
        model = context.model
        self.adapter_name = unique_name("promptlearn")
        peft_config = config.peft_config()
        try:
            with seeded(context.seed), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*multiple adapters.*")  # one per prompt, by design
                warnings.filterwarnings("ignore", message=".*fan_in_fan_out.*")  # GPT-2's Conv1D: PEFT adapts
                peft.inject_adapter_in_model(peft_config, model, adapter_name=self.adapter_name)
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"PEFT could not add a {config.source} adapter to {type(model).__name__}: {exc}; "
                              "name the layers with target_modules") from None
        marker = f".{self.adapter_name}"
        weights = {name: p for name, p in model.named_parameters()
                   if marker + "." in name + "." or name.endswith(marker)}
        if not weights:
            raise ConfigError(f"PEFT added no trainable weights to {type(model).__name__}; check target_modules")
        # The adapter's weights live in the base model; registering them here makes them this module's parameters
        # (what the Trainer trains and counts) without copying them.
        self.weights = nn.ParameterDict({_key(n): p for n, p in weights.items()})
        model.__dict__.pop("_promptlearn_active", None)  # PEFT may have switched adapters while injecting
        self.activate()

    def activate(self) -> None:
        model = self.base
        if model.__dict__.get("_promptlearn_active") == self.adapter_name:
            return
        for layer in (m for m in model.modules() if is_tuner_layer(m)):
            if self.adapter_name in layer_adapters(layer):
                layer.set_adapter(self.adapter_name)
                layer.enable_adapters(True)
            else:
                layer.enable_adapters(False)
        model.__dict__["_promptlearn_active"] = self.adapter_name
        for parameter in self.parameters():  # PEFT's switches touch requires_grad; the trainer decides that
            parameter.requires_grad_(True)

    def prompt_state(self) -> dict[str, torch.Tensor]:
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(self.base, adapter_name=self.adapter_name)
        return {k: v.detach().cpu().contiguous() for k, v in state.items()}

    def load_prompt_state(self, state: Any) -> None:
        from peft import set_peft_model_state_dict

        expected = self.prompt_state()
        if set(expected) != set(state) or any(tuple(expected[k].shape) != tuple(state[k].shape) for k in expected):
            raise ConfigError(f"the saved {self.source!r} adapter does not fit this model and configuration")
        result = set_peft_model_state_dict(self.base, dict(state), adapter_name=self.adapter_name)
        unexpected = getattr(result, "unexpected_keys", None)
        if unexpected:
            raise ConfigError(f"the saved {self.source!r} adapter has weights this model lacks: {unexpected[:3]}")


class BitFit(PromptModule):
    """Bias-only fine-tuning as trainable offsets on the frozen base model's biases."""

    source = "bitfit"
    changes_model = True

    def __init__(self, config: BitFitConfig, context: BuildContext) -> None:
        super().__init__(config, context)
        pattern = re.compile(config.pattern) if config.pattern else None
        parameters = {_plain(n): p for n, p in context.model.named_parameters() if not _is_adapter_weight(n)}
        names = [n for n in parameters
                 if n.rsplit(".", 1)[-1] == "bias" and (pattern is None or pattern.search(n))]
        if not names:
            raise ConfigError(f"{type(context.model).__name__} has no bias parameters"
                              + (f" matching {config.pattern!r}" if config.pattern else ""))
        self.names = names
        self.offsets = nn.ParameterDict({_key(n): nn.Parameter(torch.zeros_like(parameters[n], dtype=torch.float32))
                                         for n in names})

    def parameter_overrides(self) -> dict[str, torch.Tensor]:
        # Looked up at every pass: a PEFT adapter added to the model later renames its layers' biases.
        current = {_plain(n): (n, p) for n, p in self.base.named_parameters() if not _is_adapter_weight(n)}
        overrides = {}
        for name in self.names:
            actual, parameter = current[name]
            overrides[actual] = parameter + self.offsets[_key(name)].to(parameter.dtype)
        return overrides


def _plain(name: str) -> str:
    """A parameter's name as in the model without PEFT layers (PEFT keeps the original in ``base_layer``)."""
    return re.sub(r"(\.base_layer)+\.", ".", name)


def _is_adapter_weight(name: str) -> bool:
    return any(part.startswith("promptlearn") for part in name.split("."))
