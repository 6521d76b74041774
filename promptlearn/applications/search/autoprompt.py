"""AutoPrompt's gradient-guided trigger search (Shin et al., 2020) on a frozen model.

The template is ``<text> [T1] ... [Tn] [MASK].`` (causal LMs: no full stop, the mask ends the prompt).
Each iteration picks a trigger slot, takes the gradient of the loss with respect to the input embedding
at that slot (summed over a batch of training examples), ranks every allowed token by the first-order
loss change ``-(e_token . gradient)`` (HotFlip), re-scores the best ``n_candidates`` exactly on the batch,
and swaps in the best one if it lowers the loss. The loss is the negative log-likelihood of the
examples' label words (``objective="likelihood"``, AutoPrompt's) or the cross-entropy over the classes
(``"cross_entropy"``, PET's). Triggers are whole-word tokens, so the result is ordinary template text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ...core.calibration import log_normalize
from ...core.errors import ConfigError
from ...scorer import vocabulary_size
from ...core.template import Template
from ...models.distributed import show_progress as progress_shown
from ...core.verbalizer import Verbalizer
from .scoring import Budget
from .templates import body, check_fields
from .vocabulary import whole_word_ids

OBJECTIVES = ("likelihood", "cross_entropy")
_INITIAL = ("the", "it", "and", "is", "of")


@dataclass
class HotFlipResult:
    """The triggers found, the loss on all training examples before and after, and every accepted swap."""

    words: list[str]
    initial_words: list[str]
    initial_loss: float
    loss: float
    templates: list[tuple[str, float]] = field(default_factory=list)  # (source, batch loss) after each swap
    history: list[dict[str, Any]] = field(default_factory=list)


def trigger_template(fields: Sequence[str], words: Sequence[str], kind: str) -> str:
    """``{{ text }} w1 w2 w3 [MASK].`` (masked LMs) or ``... [MASK]`` (causal LMs)."""
    return body(fields) + " " + " ".join(words) + (" [MASK]." if kind == "masked" else " [MASK]")


def _losses(scorer: Any, sources: Sequence[str], examples: Sequence[dict], gold: np.ndarray, verbalizer: Verbalizer,
            objective: str) -> np.ndarray:
    prompts = [p for source in sources for p in (lambda t: [t.render(e) for e in examples])(Template(source))]
    scores = scorer.score(prompts, verbalizer).reshape(len(sources), len(examples), -1)
    if objective == "cross_entropy":
        scores = log_normalize(scores)
    return -scores[:, np.arange(len(examples)), gold].mean(axis=1)


def _find_last(row: list[int], pattern: list[int]) -> int | None:
    for start in range(len(row) - len(pattern), -1, -1):
        if row[start:start + len(pattern)] == pattern:
            return start
    return None


def _trigger_gradient(scorer: Any, source: str, examples: Sequence[dict], gold: np.ndarray, verbalizer: Verbalizer,
                      trigger_ids: list[int], objective: str) -> torch.Tensor | None:
    """d loss / d (input embedding) at each trigger position, averaged over the examples, ``[n, H]``."""
    model = scorer.model
    template = Template(source)
    prompts = [template.render(e) for e in examples]
    captured: list[tuple[torch.Tensor, torch.Tensor]] = []

    def hook(module: Any, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if captured or not torch.is_grad_enabled():  # a causal LM's continuation pass; the head's shortcut check
            return None
        leaf = output.detach().requires_grad_(True)
        captured.append((args[0].detach(), leaf))
        return leaf

    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    handle = model.get_input_embeddings().register_forward_hook(hook)
    try:
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        with torch.enable_grad():
            scores = scorer.class_log_scores(prompts, verbalizer)
            if objective == "cross_entropy":
                scores = torch.log_softmax(scores, dim=1)
            loss = -scores[torch.arange(len(prompts)), torch.as_tensor(gold, device=scores.device)].mean()
            loss.backward()
    finally:
        handle.remove()
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(flags[name])
    if not captured or captured[0][1].grad is None:
        return None
    ids, leaf = captured[0]
    total = torch.zeros((len(trigger_ids), leaf.shape[-1]), dtype=torch.float32)
    found = 0
    for r in range(ids.shape[0]):
        start = _find_last(ids[r].tolist(), trigger_ids)
        if start is not None:
            total += leaf.grad[r, start:start + len(trigger_ids)].float().cpu()
            found += 1
    return total / found if found else None


def hotflip(scorer: Any, examples: Sequence[dict], labels: Sequence[int], verbalizer: Verbalizer,
            fields: Sequence[str], *, n_triggers: int = 3, iterations: int = 8, n_candidates: int = 8,
            batch_size: int = 16, objective: str = "likelihood", seed: int = 0, budget: Budget | None = None,
            show_progress: bool | None = None) -> HotFlipResult:
    """AutoPrompt's trigger search (see the module's description); the model is not changed."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if n_triggers < 1 or n_candidates < 1:
        raise ConfigError("n_triggers and n_candidates must be >= 1")
    check_fields(fields)
    tokenizer = scorer.tokenizer
    kind = getattr(scorer, "kind", "masked")
    embeddings = scorer.model.get_input_embeddings().weight.detach().float().cpu()
    vocab_size = min(vocabulary_size(scorer.model), embeddings.shape[0])
    banned = {w.lower() for words in verbalizer.words for w in words} | {c.lower() for c in verbalizer.classes}
    words = {t: w for t, w in whole_word_ids(tokenizer, vocab_size, "the", " ", skip_stop_words=False).items()
             if w.lower() not in banned}
    if not words:
        raise ConfigError("no whole-word tokens in this tokenizer's vocabulary to use as triggers")
    allowed = np.zeros(embeddings.shape[0], dtype=bool)
    allowed[list(words)] = True
    by_word = {w: t for t, w in sorted(words.items())}
    first = next((by_word[w] for w in _INITIAL if w in by_word), min(words))
    triggers = [first] * n_triggers
    gold_all = np.asarray(labels)
    rng = np.random.default_rng(seed)
    result = HotFlipResult(words=[], initial_words=[words[t] for t in triggers], initial_loss=0.0, loss=0.0)
    show = progress_shown(show_progress if show_progress is not None else scorer.show_progress)
    for iteration in tqdm(range(iterations), desc="autoprompt", disable=not show):
        if budget is not None and budget.expired():
            break
        batch = (np.sort(rng.choice(len(examples), batch_size, replace=False)) if len(examples) > batch_size
                 else np.arange(len(examples)))
        slot = int(rng.integers(n_triggers))
        batch_examples, gold = [examples[i] for i in batch], gold_all[batch]
        source = trigger_template(fields, [words[t] for t in triggers], kind)
        gradient = _trigger_gradient(scorer, source, batch_examples, gold, verbalizer, list(triggers), objective)
        if gradient is None:  # the trigger words did not tokenize back to themselves: nothing to follow
            result.history.append({"iteration": iteration, "slot": slot, "swapped": False, "note": "no gradient"})
            continue
        flip = -(embeddings @ gradient[slot]).numpy()
        flip[~allowed] = -np.inf
        flip[triggers[slot]] = -np.inf
        picks = [int(t) for t in np.lexsort((np.arange(flip.size), -flip))[:n_candidates] if np.isfinite(flip[t])]
        options = [list(triggers[:slot]) + [t] + list(triggers[slot + 1:]) for t in picks]
        sources = [source] + [trigger_template(fields, [words[t] for t in option], kind) for option in options]
        losses = _losses(scorer, sources, batch_examples, gold, verbalizer, objective)
        best = int(np.argmin(losses[1:])) + 1 if len(losses) > 1 else 0
        swapped = best > 0 and losses[best] < losses[0]
        result.history.append({"iteration": iteration, "slot": slot, "loss": round(float(losses[0]), 6),
                               "best_candidate": words[picks[best - 1]] if best > 0 else None,
                               "best_loss": round(float(losses[best]), 6), "swapped": bool(swapped)})
        if swapped:
            triggers = options[best - 1]
            result.templates.append((sources[best], float(losses[best])))
    result.words = [words[t] for t in triggers]
    initial = trigger_template(fields, result.initial_words, kind)
    final = trigger_template(fields, result.words, kind)
    before, after = _losses(scorer, [initial, final], list(examples), gold_all, verbalizer, objective)
    result.initial_loss, result.loss = float(before), float(after)
    return result
