"""P-tuning v2 (Liu et al., 2022) / prefix tuning (Li & Liang, 2021): trainable key/value prefixes at
every layer.

Each layer's self-attention sees ``prefix_length`` extra keys and values before the input's own; the
input tokens keep their usual positions (the prefix has none), so the prefix takes no room in the
model's window. The prefixes enter through the model's key/value cache (see
:mod:`promptlearn.tuning.base`), the same way for masked LMs (BERT, RoBERTa) and causal LMs.

* ``init="vocab"`` (default) starts the prefixes at the keys and values the model itself computes
  for ``prefix_length`` random vocabulary tokens (Li & Liang's initialisation by real activations);
  ``init="random"`` draws them from a normal distribution with standard deviation ``init_std`` (P-tuning
  v2's plain embedding init uses 1.0).
* ``reparameterize=True``: prefix tuning's MLP reparameterisation — trainable ``[prefix_length,
  embedding_dim]`` inputs (started at random vocabulary embeddings) through ``Linear -> tanh ->
  Linear`` (``hidden_size`` wide) give every layer's keys and values. More parameters to train, all saved.
* ``readout="verbalizer"`` (default) reads the class scores from the label words at the mask, as every
  other prompt does; ``readout="linear"`` is P-tuning v2's own: a new linear head (trained with the
  prefixes) on the hidden state the LM head reads at the mask (causal LMs: at the position that would
  predict the label word), so label words play no part beyond naming the classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..models import compat
from ..core.errors import ConfigError
from .base import BuildContext, PromptModule, SourceConfig, attention_shape, check_prefix_support, embedding_of, \
    prefix_cache, seeded

READOUTS = ("verbalizer", "linear")


@dataclass
class DeepPromptConfig(SourceConfig):
    """P-tuning v2: ``prefix_length`` keys/values per layer; ``init`` (``vocab`` or ``random`` with
    ``init_std``); ``reparameterize`` (prefix tuning's MLP, ``hidden_size`` wide); ``readout``
    (``verbalizer`` or ``linear``)."""

    source = "deep"
    prefix_length: int = 8
    init: str = "vocab"
    init_std: float = 1.0
    reparameterize: bool = False
    hidden_size: int = 512
    readout: str = "verbalizer"

    def validate(self) -> None:
        if isinstance(self.prefix_length, bool) or int(self.prefix_length) < 1:
            raise ConfigError(f"prefix_length must be >= 1, got {self.prefix_length!r}")
        if self.init not in ("vocab", "random"):
            raise ConfigError(f"init must be 'vocab' or 'random', got {self.init!r}")
        if not float(self.init_std) > 0:
            raise ConfigError(f"init_std must be > 0, got {self.init_std!r}")
        if int(self.hidden_size) < 1:
            raise ConfigError(f"hidden_size must be >= 1, got {self.hidden_size!r}")
        if self.readout not in READOUTS:
            raise ConfigError(f"readout must be one of {READOUTS}, got {self.readout!r}")


def _sampled_tokens(context: BuildContext, n: int, generator: torch.Generator) -> list[int]:
    rows = context.model.get_input_embeddings().weight.shape[0]
    special = set(getattr(context.tokenizer, "all_special_ids", []) or [])
    vocabulary = [i for i in range(min(rows, len(context.tokenizer))) if i not in special]
    picks = torch.randint(len(vocabulary), (n,), generator=generator)
    return [vocabulary[int(i)] for i in picks]


def activations(model: object, token_ids: list[int]) -> torch.Tensor:
    """The keys and values ``[layers, 2, kv_heads, len(token_ids), head_dim]`` the model computes for a text."""
    n_layers, kv_heads, head_dim = attention_shape(model)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    empty = torch.zeros((1, kv_heads, 0, head_dim), device=device, dtype=dtype)
    cache = prefix_cache([(empty, empty.clone()) for _ in range(n_layers)],
                         torch.zeros((1, 0), dtype=torch.long, device=device), model.config)
    ids = torch.as_tensor([token_ids], device=device)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(input_ids=ids, attention_mask=torch.ones_like(ids), **compat.cache_kwarg(cache))
    finally:
        model.train(was_training)
    layers = compat.cache_layers(cache)
    if len(layers) != n_layers or any(k is None or k.shape[-2] != len(token_ids) for k, _ in layers):
        raise ConfigError(f"could not read {type(model).__name__}'s keys and values for init='vocab'; use "
                          "init='random'")
    return torch.stack([torch.stack([k[0], v[0]]) for k, v in layers]).float()


class DeepPrompt(PromptModule):
    """Trainable key/value prefixes at every layer (optionally through an MLP), and an optional linear readout."""

    source = "deep"

    def __init__(self, config: DeepPromptConfig, context: BuildContext) -> None:
        super().__init__(config, context)
        model = context.model
        check_prefix_support(model)
        self.n_layers, self.kv_heads, self.head_dim = attention_shape(model)
        self.prefix_length = length = int(config.prefix_length)
        device = next(model.parameters()).device
        generator = torch.Generator().manual_seed(context.seed)
        with seeded(context.seed):
            if config.reparameterize:
                dim = int(model.get_input_embeddings().weight.shape[1])
                self.tokens = nn.Parameter(embedding_of(model, _sampled_tokens(context, length, generator)))
                width = self.n_layers * 2 * self.kv_heads * self.head_dim
                self.mlp = nn.Sequential(nn.Linear(dim, config.hidden_size), nn.Tanh(),
                                         nn.Linear(config.hidden_size, width))
            elif config.init == "vocab":
                self.prefix_kv = nn.Parameter(activations(model, _sampled_tokens(context, length, generator)))
            else:
                shape = (self.n_layers, 2, self.kv_heads, length, self.head_dim)
                self.prefix_kv = nn.Parameter(torch.randn(shape, generator=generator) * float(config.init_std))
            if config.readout == "linear":
                if context.n_classes < 2:
                    raise ConfigError("a linear readout needs the number of classes (two or more)")
                head = model.get_output_embeddings()
                features = getattr(head, "in_features", None) or int(head.weight.shape[1])
                self.readout = nn.Linear(features, context.n_classes)
        self.to(device)

    def prefix(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.config.reparameterize:
            flat = self.mlp(self.tokens)  # [P, layers * 2 * heads * dim]
            kv = flat.view(self.prefix_length, self.n_layers, 2, self.kv_heads, self.head_dim).permute(1, 2, 3, 0, 4)
        else:
            kv = self.prefix_kv
        return [(kv[layer, 0], kv[layer, 1]) for layer in range(self.n_layers)]
