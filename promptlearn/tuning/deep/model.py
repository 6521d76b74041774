"""The module of P-tuning v2 / prefix tuning (see :mod:`promptlearn.tuning.deep`)."""

from __future__ import annotations

import torch
from torch import nn

from ...models import compat
from ...core.errors import ConfigError
from ..base import BuildContext, PromptModule, attention_shape, check_prefix_support, embedding_of, prefix_cache, \
    seeded
from .config import DeepPromptConfig


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
