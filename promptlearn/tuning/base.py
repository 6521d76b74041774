"""The interface every prompt source implements, and the forward pass that injects them (the torch half of
:mod:`promptlearn.tuning`; the configs and the registry are in :mod:`.config`, without torch).

A *prompt source* says how a prompt is parameterised (PEFT-style config / model split):

* a small dataclass **config** (:class:`~promptlearn.tuning.config.TuningConfig` subclasses: JSON-serialisable,
  saved with the classifier; in the method's ``config.py``), and
* a :class:`PromptModule` (in its ``model.py``), a ``torch.nn.Module`` holding **only the trainable parameters**. The
  scorer asks it for (a) the input embeddings of the template's ``[SOFT]`` slots
  (:meth:`PromptModule.soft_vectors`), (b) per-layer key/value prefixes
  (:meth:`PromptModule.prefix`), and, for the sources that change the model itself (LoRA / adapters
  through PEFT, BitFit), for the parameter values a forward pass uses
  (:meth:`PromptModule.parameter_overrides`, :meth:`PromptModule.activate`). It saves and loads its
  parameters (:meth:`PromptModule.prompt_state`), so an artifact holds kilobytes, not the base model.

How rows reach their prompt: the scorer writes a ``[SOFT]`` slot as a *placeholder id* (a negative
number that encodes the prompt's index in the :class:`PromptSet` and the slot's index), and in a
batch that mixes prompts it marks the first token of a row whose prompt has no soft slot with that
prompt's index (:mod:`promptlearn.scorer.token_ids`). Negative ids never collide with a vocabulary id,
follow a row through sorting, padding and truncation unchanged, and :meth:`PromptSet.forward` decodes
them right before the model runs. A row without any mark uses the set's first prompt.

Deep prompts enter every layer as a key/value cache (``DynamicCache``) the attention layers extend:
transformers 5 encoders (BERT, RoBERTa, ...) accept a cache whose length the 2-D attention mask
covers (the path PEFT's prefix tuning uses), decoders do anyway. The real tokens keep the positions
they have without a prefix (position ids are passed explicitly), so a prefix costs no room in the
model's window. :func:`check_prefix_support` verifies on the model itself that a masked-out prefix
changes nothing and a visible one changes the output; a model that fails is refused.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..models import compat
from ..core.errors import ConfigError, TemplateError
from ..scorer.token_ids import Decoded, decode_ids
from .config import TuningConfig
from .peft.layers import deactivate_adapters

logger = logging.getLogger(__name__)

# -- building a module ------------------------------------------------------------------------------
@dataclass
class BuildContext:
    """What a prompt module may need when it is created for a model."""

    model: Any
    tokenizer: Any
    kind: str                                        # "masked" or "causal"
    n_soft: int = 0                                  # soft vectors the template's [SOFT] slots take
    label_token_ids: Sequence[Sequence[int]] = ()    # every label word's token ids, class order
    n_classes: int = 0
    seed: int = 0


# -- modules ------------------------------------------------------------------------------------------
class PromptModule(nn.Module):
    """The trainable parameters of one prompt, and what the scorer asks of them.

    The base model is referenced, not registered: ``parameters()`` and ``state_dict()`` hold the
    prompt's parameters only, while ``train()`` / ``eval()`` also switch the base model (dropout).
    """

    source: ClassVar[str] = ""
    changes_model: ClassVar[bool] = False  # LoRA / adapters / BitFit: the whole forward pass is this prompt's

    def __init__(self, config: TuningConfig, context: BuildContext) -> None:
        super().__init__()
        self.config = config
        self.n_soft = 0
        self.prefix_length = 0
        self.readout: nn.Module | None = None
        self.__dict__["_base"] = context.model

    @property
    def base(self) -> Any:
        return self.__dict__["_base"]

    def train(self, mode: bool = True) -> PromptModule:
        super().train(mode)
        self.base.train(mode)
        return self

    # what the scorer asks for
    def soft_vectors(self) -> torch.Tensor:
        """The ``[n_soft, embedding_dim]`` input embeddings of the template's soft slots, in slot order."""
        raise TemplateError(f"a {self.source!r} prompt has no soft vectors; [SOFT] slots need tuning='soft' or "
                            "'ptuning'")

    def prefix(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, the ``(key, value)`` prefix, each ``[kv_heads, prefix_length, head_dim]``."""
        return []

    def parameter_overrides(self) -> dict[str, torch.Tensor] | None:
        """Base-model parameters to replace for a forward pass (``name -> tensor``); None: none."""
        return None

    def activate(self) -> None:
        """Make this prompt's weights the ones the (modified) base model uses."""

    # training and persistence
    def freeze_base(self) -> None:
        """Freeze every base-model parameter and make the prompt's own trainable."""
        self.base.requires_grad_(False)
        for parameter in self.parameters():
            parameter.requires_grad_(True)

    def prompt_state(self) -> dict[str, torch.Tensor]:
        """The tensors :meth:`load_prompt_state` needs (written as safetensors)."""
        return {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}

    def load_prompt_state(self, state: Mapping[str, torch.Tensor]) -> None:
        own = self.state_dict()
        if set(own) != set(state) or any(tuple(own[k].shape) != tuple(state[k].shape) for k in own):
            differ = sorted(set(own) ^ set(state)) or [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
            raise ConfigError(f"the saved {self.source!r} prompt does not fit this model and configuration "
                              f"(tensors that differ: {differ[:3]})")
        self.load_state_dict({k: v for k, v in state.items()})

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def seeded(seed: int) -> Any:
    """A context in which torch's global generator is seeded, restored afterwards (parameter init)."""
    class _Seeded:
        def __enter__(self) -> None:
            self._fork = torch.random.fork_rng(devices=[])
            self._fork.__enter__()
            torch.manual_seed(seed)

        def __exit__(self, *exc: Any) -> None:
            self._fork.__exit__(*exc)

    return _Seeded()


def embedding_of(model: Any, token_ids: Sequence[int]) -> torch.Tensor:
    """The input embeddings ``[len(token_ids), dim]`` the model's embedding module gives (scaled ones included)."""
    layer = model.get_input_embeddings()
    ids = torch.as_tensor(list(token_ids), dtype=torch.long, device=layer.weight.device)
    with torch.no_grad():
        return layer(ids).detach().float().clone()


def attention_shape(model: Any) -> tuple[int, int, int]:
    """(layers, key/value heads, head dim) of a transformer's self-attention."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    layers = getattr(config, "num_hidden_layers", None)
    heads = getattr(config, "num_attention_heads", None)
    hidden = getattr(config, "hidden_size", None)
    if not (layers and heads and hidden):
        raise ConfigError(f"cannot read the number of layers, heads and hidden size of {type(model).__name__}")
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    return int(layers), int(kv_heads), int(head_dim)


# -- the forward pass ---------------------------------------------------------------------------------
def _prefix_cache_class() -> type:
    class PrefixCache(compat.DynamicCache):
        """A DynamicCache that starts with deep-prompt prefixes and keeps their per-row attention mask in step
        when the scorer selects or repeats its rows."""

        prefix_mask: torch.Tensor

        def batch_repeat_interleave(self, repeats: int) -> None:
            super().batch_repeat_interleave(repeats)
            self.prefix_mask = self.prefix_mask.repeat_interleave(repeats, dim=0)

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            super().batch_select_indices(indices)
            self.prefix_mask = self.prefix_mask[indices]

    return PrefixCache


_PREFIX_CACHE: type | None = None


def prefix_cache(layers: list[tuple[torch.Tensor, torch.Tensor]], mask: torch.Tensor, config: Any) -> Any:
    global _PREFIX_CACHE
    if _PREFIX_CACHE is None:
        _PREFIX_CACHE = _prefix_cache_class()
    cache = compat.dynamic_cache(layers, config, _PREFIX_CACHE)
    cache.prefix_mask = mask
    return cache


# Models whose position ids start after the padding index (as in the scorer).
_POSITION_OFFSET_MODELS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "longformer"}


def _position_ids(model: Any, batch: int, length: int, device: torch.device) -> torch.Tensor:
    """The position ids the model gives a right-padded input without a cache."""
    config = model.config
    offset = (config.pad_token_id + 1) if config.model_type in _POSITION_OFFSET_MODELS else 0
    return (offset + torch.arange(length, device=device)).unsqueeze(0).expand(batch, length)


class PromptSet:
    """The prompt modules a scorer serves: one for a classifier, several for a :class:`~promptlearn.PromptBank`.

    Each row of a batch names its module through placeholder ids (see the module docstring); soft and deep
    prompts of different rows mix freely in one forward pass. Sources that change the model (LoRA, adapters,
    BitFit) apply to the whole pass, so a batch holds rows of at most one of them.
    """

    def __init__(self, modules: Sequence[PromptModule]) -> None:
        self.modules = list(modules)

    def forward(self, model: Any, inputs: dict[str, Any]) -> Any:
        inputs = dict(inputs)
        ids = inputs.pop("input_ids")
        decoded = decode_ids(ids)
        rows = decoded.row_sources.tolist()
        used = sorted(set(rows))
        if used and used[-1] >= len(self.modules):
            raise ConfigError(f"a row names prompt {used[-1]}, but only {len(self.modules)} are loaded")
        changing = [k for k in used if self.modules[k].changes_model]
        if changing and len(used) > 1:
            raise ConfigError("rows of a LoRA/adapter/BitFit prompt cannot share a forward pass with other prompts")
        if changing:
            self.modules[changing[0]].activate()
        if model.__dict__.get("_promptlearn_active") not in (None, getattr(self.modules[changing[0]], "adapter_name",
                                                                                None) if changing else None):
            deactivate_adapters(model)  # another prompt's PEFT adapter: off for this pass
        if bool(decoded.soft.any()):
            inputs["inputs_embeds"] = self._embed(model, decoded)
        else:
            inputs["input_ids"] = decoded.token_ids
        prefix_length = max(self.modules[k].prefix_length for k in used) if used else 0
        if prefix_length:
            self._add_prefix(model, inputs, rows, used, prefix_length)
        elif getattr(compat.input_cache(inputs), "prefix_mask", None) is not None:
            self._extend_mask(inputs, compat.input_cache(inputs).prefix_mask)
        overrides = self.modules[changing[0]].parameter_overrides() if changing else None
        if overrides:
            return torch.func.functional_call(model, overrides, args=(), kwargs=inputs, strict=False)
        return model(**inputs)

    def _embed(self, model: Any, decoded: Decoded) -> torch.Tensor:
        embeds = model.get_input_embeddings()(decoded.token_ids)
        for source in sorted(set(decoded.sources[decoded.soft].tolist())):
            module = self.modules[source]
            vectors = module.soft_vectors().to(embeds.dtype)
            where = decoded.soft & (decoded.sources == source)
            slots = decoded.slots[where]
            if int(slots.max()) >= vectors.shape[0]:
                raise TemplateError(f"a prompt has more soft vectors than its {module.source!r} source was built "
                                    f"with ({vectors.shape[0]}); the template's [SOFT] slots must not change "
                                    "between training and use")
            embeds = embeds.index_put(where.nonzero(as_tuple=True), vectors[slots])
        return embeds

    def _add_prefix(self, model: Any, inputs: dict[str, Any], rows: list[int], used: list[int], width: int) -> None:
        if compat.input_cache(inputs) is not None:  # a continuation after a prompted pass: the cache holds the prefix
            mask = getattr(compat.input_cache(inputs), "prefix_mask", None)
            if mask is None:
                raise ConfigError("a deep prompt was given a key/value cache it did not make")
            self._extend_mask(inputs, mask)
            return
        per_source = {k: self.modules[k].prefix() for k in used}
        n_layers, kv_heads, head_dim = attention_shape(model)
        reference = inputs.get("inputs_embeds", None)
        device = reference.device if reference is not None else inputs["input_ids"].device
        dtype = next(model.parameters()).dtype
        padded: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for k, layers in per_source.items():
            length = self.modules[k].prefix_length
            if not layers:
                zero = torch.zeros((kv_heads, width, head_dim), device=device, dtype=dtype)
                padded[k] = [(zero, zero)] * n_layers
                continue
            padded[k] = [(nn.functional.pad(key.to(dtype), (0, 0, 0, width - length)),
                          nn.functional.pad(value.to(dtype), (0, 0, 0, width - length))) for key, value in layers]
        layers = [(torch.stack([padded[k][layer][0] for k in rows]), torch.stack([padded[k][layer][1] for k in rows]))
                  for layer in range(n_layers)]
        lengths = torch.as_tensor([self.modules[k].prefix_length for k in rows], device=device)
        mask = (torch.arange(width, device=device).unsqueeze(0) < lengths.unsqueeze(1)).long()
        compat.with_cache(inputs, prefix_cache(layers, mask, model.config))
        if "position_ids" not in inputs or inputs["position_ids"] is None:
            shape = (inputs["inputs_embeds"] if "inputs_embeds" in inputs else inputs["input_ids"]).shape
            inputs["position_ids"] = _position_ids(model, shape[0], shape[1], device)
        self._extend_mask(inputs, mask)

    @staticmethod
    def _extend_mask(inputs: dict[str, Any], prefix_mask: torch.Tensor) -> None:
        attention = inputs.get("attention_mask")
        if attention is None:
            shape = (inputs["inputs_embeds"] if "inputs_embeds" in inputs else inputs["input_ids"]).shape
            attention = torch.ones(shape[:2], dtype=torch.long, device=prefix_mask.device)
        inputs["attention_mask"] = torch.cat([prefix_mask.to(attention.dtype), attention], dim=1)

    # -- linear readout -----------------------------------------------------------------------------
    def linear(self, source: int) -> bool:
        return self.modules[source].readout is not None

    def readout(self, features: torch.Tensor, sources: Sequence[int]) -> torch.Tensor:
        """Class log-probabilities ``[N, C]`` of each row's linear head on its features."""
        out = []
        for row, source in enumerate(sources):
            head = self.modules[source].readout
            if head is None:
                raise ConfigError("a row without a linear readout reached the linear readout")
            out.append(head(features[row:row + 1].to(head.weight.dtype)))
        widths = {int(o.shape[1]) for o in out}
        if len(widths) > 1:
            raise ConfigError("linear readouts with different numbers of classes in one call")
        return torch.log_softmax(torch.cat(out).float(), dim=-1) if out else features.new_zeros((0, 0))


def check_prefix_support(model: Any) -> None:
    """Refuse a model whose attention ignores or mishandles a key/value prefix (checked on the model itself):
    a prefix hidden by the attention mask must change nothing, a visible one must change the output."""
    n_layers, kv_heads, head_dim = attention_shape(model)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    ids = torch.tensor([[5, 6, 7]], device=device)
    attention = torch.ones_like(ids)
    positions = _position_ids(model, 1, 3, device)
    generator = torch.Generator().manual_seed(0)
    layers = [(torch.randn((1, kv_heads, 2, head_dim), generator=generator).to(device, dtype),
               torch.randn((1, kv_heads, 2, head_dim), generator=generator).to(device, dtype) * 10)
              for _ in range(n_layers)]

    def run(mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return model(input_ids=ids, attention_mask=attention, position_ids=positions).logits
        cache = prefix_cache([(k.clone(), v.clone()) for k, v in layers], mask, model.config)
        return model(input_ids=ids, attention_mask=torch.cat([mask, attention], dim=1), position_ids=positions,
                     **compat.cache_kwarg(cache)).logits

    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            plain = run(None)
            hidden = run(torch.zeros((1, 2), dtype=torch.long, device=device))
            visible = run(torch.ones((1, 2), dtype=torch.long, device=device))
    except Exception as exc:  # noqa: BLE001 - any failure means the mechanism does not hold for this model
        raise ConfigError(f"deep prompts do not work with {type(model).__name__}: a key/value prefix failed "
                          f"({type(exc).__name__}: {exc})") from None
    finally:
        model.train(was_training)
    if not torch.allclose(plain, hidden, atol=1e-4, rtol=1e-4) or torch.allclose(plain, visible, atol=1e-6):
        raise ConfigError(f"deep prompts do not work with {type(model).__name__}: its attention ignores or "
                          "mishandles a key/value prefix")


_NAMES = itertools.count()


def unique_name(prefix: str) -> str:
    return f"{prefix}{next(_NAMES)}"
