"""The training objective of prompt-based fine-tuning (PET / LM-BFF) over a :class:`PromptPipeline`.

``objective`` gives the :class:`~promptlearn.pipeline.training.Trainer` its loss: cross-entropy over the
verbalizer's class scores against hard labels or soft targets (distillation), with demonstrations drawn anew at
every step when the pipeline has them, plus PET's auxiliary masked-LM loss on unlabelled text when weighted in.
``token_budget_split`` splits a batch into forward/backward passes of bounded padded length.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import ConfigError
from ..core.template import Prompt
from ..models.precision import MixedPrecision
from .pipeline import PromptPipeline
from .training import language_model_loss

#: Padded tokens per training forward/backward pass on a CPU when no budget is given: at most ~0.6 GiB of
#: activations for SmolLM2-135M (1.25 MiB per token, measured). SST-2-length batches of 8 stay whole (splitting
#: them measured no lower); 8 prompts of 413 tokens peak at 3.7 GiB instead of 7.5 GiB.
DEFAULT_TRAIN_TOKENS_PER_PASS = 512


def objective(pipeline: PromptPipeline, examples: Sequence[Mapping[str, Any]], target: torch.Tensor, *,
              precision: MixedPrecision, demonstrations: bool, prompts: Sequence[Prompt] | None = None,
              encoded: list[Any] | None = None, auxiliary: Sequence[Prompt] | None = None,
              mlm_weight: float = 0.0) -> Callable[[list[int]], torch.Tensor]:
    """The loss of a batch of example indices: ``target`` holds class indices ``[n]`` or probabilities ``[n, C]``.

    ``prompts``: the examples' fixed prompts (rendered once), pre-encoded in ``encoded`` when given; None: each
    step assembles its batch with the pipeline, drawing a fresh demonstration set when ``demonstrations``
    (seeded by the trainer's per-step torch generator). ``auxiliary``: rendered unlabelled prompts for the
    masked-LM loss, mixed in as ``(1 - mlm_weight) * CE + mlm_weight * LM``."""
    scorer, verbalizer = pipeline.scorer, pipeline.verbalizer

    def loss_fn(indices: list[int]) -> torch.Tensor:
        if prompts is None:  # fresh demonstrations every step, drawn with the step's seeded torch generator
            set_index = int(torch.randint(2**31 - 1, ()).item()) if demonstrations else 0
            batch = pipeline.prompts([examples[i] for i in indices], set_index)
        else:
            batch = [prompts[i] for i in indices]
        with precision.autocast():
            if encoded is None:
                scores = scorer.class_log_scores(batch, verbalizer)
            else:
                scores = scorer.class_log_scores(batch, verbalizer, rows=[encoded[i] for i in indices])
        loss = F.cross_entropy(scores.float(), target[indices])
        if auxiliary:
            picks = torch.randint(len(auxiliary), (len(indices),)).tolist()  # seeded per step by the trainer
            with precision.autocast():
                lm = language_model_loss(pipeline.loaded, scorer, [auxiliary[i] for i in picks])
            loss = (1 - mlm_weight) * loss + mlm_weight * lm
        return loss

    return loss_fn


def dev_accuracy(pipeline: PromptPipeline, examples: Sequence[Mapping[str, Any]], labels: np.ndarray,
                 precision: MixedPrecision) -> Callable[[], float]:
    """The Trainer's ``evaluate``: accuracy of the pipeline's raw predictions on the dev examples."""

    def evaluate() -> float:
        with precision.autocast():
            predicted = pipeline.log_probs(examples, (False,))[0].argmax(axis=1)
        return float((predicted == labels).mean())

    return evaluate


def token_budget_split(encoded: list[Any] | None, budget: int | None,
                       device_type: str) -> Callable[[list[int]], list[list[int]]] | None:
    """The Trainer's ``split``: a batch's examples in consecutive parts of at most ``budget`` padded tokens (at
    least one example each), from the encoded rows' lengths; None when there is no limit or the prompts are not
    encoded once (demonstrations are drawn anew at every step). ``budget`` None: 512 on a CPU, no limit else."""
    if budget is None:
        budget = DEFAULT_TRAIN_TOKENS_PER_PASS if device_type == "cpu" else 0
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ConfigError(f"train_tokens_per_pass must be a number of tokens >= 0 (0: no limit) or None, got "
                          f"{budget!r}")
    lengths = [getattr(row, "length", None) for row in encoded or ()]
    if not budget or not lengths or None in lengths:
        return None

    def split(indices: list[int]) -> list[list[int]]:
        parts: list[list[int]] = [[]]
        longest = 0
        for index in indices:
            wider = max(longest, lengths[index])
            if parts[-1] and wider * (len(parts[-1]) + 1) > budget:
                parts.append([])
                wider = lengths[index]
            parts[-1].append(index)
            longest = wider
        return parts

    return split
