"""The modules of prompt tuning and P-tuning (see :mod:`promptlearn.tuning.soft`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...core.errors import ConfigError
from ..base import BuildContext, PromptModule, embedding_of, seeded
from .config import PTuningConfig, SoftPromptConfig


def _vocabulary(context: BuildContext) -> list[int]:
    rows = context.model.get_input_embeddings().weight.shape[0]
    special = set(getattr(context.tokenizer, "all_special_ids", []) or [])
    return [i for i in range(min(rows, len(context.tokenizer))) if i not in special]


def initial_vectors(config: SoftPromptConfig, context: BuildContext, n: int) -> torch.Tensor:
    """The ``[n, dim]`` starting vectors of a soft prompt under ``config.init``."""
    model = context.model
    generator = torch.Generator().manual_seed(context.seed)
    vocabulary = _vocabulary(context)

    def sampled(count: int) -> torch.Tensor:
        if count <= 0:
            return embedding_of(model, [])
        picks = torch.randperm(len(vocabulary), generator=generator)[:count]
        if len(picks) < count:  # a vocabulary smaller than the prompt: draw with replacement
            picks = torch.randint(len(vocabulary), (count,), generator=generator)
        return embedding_of(model, [vocabulary[int(i)] for i in picks])

    if config.init == "vocab":
        return sampled(n)
    if config.init == "label_words":
        words = list(dict.fromkeys(tuple(ids) for ids in context.label_token_ids))[:n]
        vectors = [embedding_of(model, ids).mean(dim=0) for ids in words]
        rest = sampled(n - len(vectors))
        return torch.cat([torch.stack(vectors), rest]) if vectors else rest
    if config.init == "text":
        ids = list(context.tokenizer(config.init_text, add_special_tokens=False)["input_ids"])
        if not ids:
            raise ConfigError(f"init_text {config.init_text!r} tokenizes to nothing")
        return embedding_of(model, [ids[i % len(ids)] for i in range(n)])
    weight = model.get_input_embeddings().weight.detach().float()
    return torch.randn((n, weight.shape[1]), generator=generator) * float(weight.std())


class SoftPrompt(PromptModule):
    """Prompt tuning: the soft slots' vectors are the parameters."""

    source = "soft"

    def __init__(self, config: SoftPromptConfig, context: BuildContext) -> None:
        super().__init__(config, context)
        if context.n_soft < 1:
            raise ConfigError("a soft prompt needs [SOFT] slots in the template")
        self.n_soft = context.n_soft
        device = context.model.get_input_embeddings().weight.device
        self.embedding = nn.Parameter(initial_vectors(config, context, self.n_soft).to(device))

    def soft_vectors(self) -> torch.Tensor:
        return self.embedding


class PTuningPrompt(PromptModule):
    """P-tuning: a prompt encoder turns trainable inputs into the soft vectors.

    ``lstm`` (Liu et al.'s): a two-layer bidirectional LSTM (``hidden_size // 2`` per direction) and a
    two-layer MLP (``Linear -> ReLU -> Linear``); ``mlp``: ``Linear -> ReLU -> Linear -> ReLU -> Linear``.
    The encoder is only needed while training: as PEFT does, the saved state is the vectors it produces
    (``[n_soft, dim]``, kilobytes), and a loaded prompt serves them directly (training it further is then
    prompt tuning of those vectors) unless ``save_encoder=True``.
    """

    source = "ptuning"

    def __init__(self, config: PTuningConfig, context: BuildContext) -> None:
        super().__init__(config, context)
        if context.n_soft < 1:
            raise ConfigError("P-tuning needs [SOFT] slots in the template")
        self.n_soft = context.n_soft
        weight = context.model.get_input_embeddings().weight
        dim = int(weight.shape[1])
        hidden = int(config.hidden_size or dim)
        self.register_parameter("vectors", None)  # set when loaded from saved vectors
        with seeded(context.seed):
            self.inputs = nn.Parameter(torch.randn((self.n_soft, dim)))
            if config.encoder == "lstm":
                self.lstm = nn.LSTM(dim, hidden // 2, num_layers=2, bidirectional=True, batch_first=True)
                self.mlp = nn.Sequential(nn.Linear(2 * (hidden // 2), hidden), nn.ReLU(), nn.Linear(hidden, dim))
            else:
                self.lstm = None
                self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                         nn.Linear(hidden, dim))
        self.to(weight.device)

    def soft_vectors(self) -> torch.Tensor:
        if self.vectors is not None:
            return self.vectors
        x = self.inputs
        if self.lstm is not None:
            x = self.lstm(x.unsqueeze(0))[0].squeeze(0)
        return self.mlp(x)

    def prompt_state(self) -> dict[str, torch.Tensor]:
        if self.config.save_encoder and self.vectors is None:
            return super().prompt_state()
        with torch.no_grad():
            return {"vectors": self.soft_vectors().detach().cpu().float().contiguous()}

    def load_prompt_state(self, state: Any) -> None:
        if set(state) != {"vectors"}:
            super().load_prompt_state(state)
            return
        vectors = state["vectors"]
        if tuple(vectors.shape) != (self.n_soft, self.inputs.shape[1]):
            raise ConfigError(f"the saved P-tuning vectors have shape {tuple(vectors.shape)}, this template and model "
                              f"need {(self.n_soft, self.inputs.shape[1])}")
        device = self.inputs.device
        del self.inputs, self.lstm, self.mlp  # the encoder's job is done: serve its output
        self.lstm = None
        self.vectors = nn.Parameter(vectors.to(device).clone())
