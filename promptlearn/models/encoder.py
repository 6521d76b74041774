"""A frozen encoder: the base model of a ``transformers`` checkpoint, in eval mode, turning texts into vectors.

:class:`FrozenEncoder` loads the base model of a name / folder (with ``AutoModel``: masked-LM, causal-LM and plain
encoder checkpoints all work; the language-model head is not used) or takes a loaded model object with its
tokenizer, and pools the last hidden states of batches of texts (one field, or two as a sentence pair) into one
fixed-length vector per text: ``mean`` over the attention mask, ``cls`` (the first real token) or ``last`` (the
last real token). :class:`~promptlearn.ProbeClassifier` classifies these features;
:class:`~promptlearn.SentenceEncoder` uses them for ``similar`` demonstration selection.

The tokenizer helpers (:func:`load_tokenizer`, :func:`encode_batch`) serve the
fine-tuning baseline too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..core.errors import ModelLoadError, PromptlearnError
from .kinds import ensure_pad_token
from .loader import _not_found_message, model_dtype, resolve_device, resolve_local

POOLINGS = ("mean", "cls", "last")


def token_window(tokenizer: Any, max_length: int) -> int:
    limit = getattr(tokenizer, "model_max_length", None)
    return min(max_length, int(limit)) if isinstance(limit, int) and 0 < limit < 1_000_000 else max_length


def load_tokenizer(source: str, name: Any, gguf: str | None) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=False, **({"gguf_file": gguf} if gguf else {}))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(_not_found_message(str(name), source, exc)) from None


def dtype_option(dtype: Any) -> dict[str, Any]:
    """``from_pretrained``'s dtype option for a ``dtype`` parameter (nothing when unset)."""
    return {} if dtype is None else {"dtype": model_dtype(dtype)}


def row_batches(n: int, size: int) -> list[list[int]]:
    """The row indices ``0 .. n-1`` in consecutive batches of at most ``size``."""
    return [list(range(start, min(start + size, n))) for start in range(0, n, size)]


def encode_batch(texts: Sequence[Sequence[str]], rows: Sequence[int], tokenizer: Any, device: str,
                 max_length: int) -> dict[str, Any]:
    """One padded batch of the examples ``rows`` (a sentence pair when there are two fields)."""
    first = [texts[0][i] for i in rows]
    second = [texts[1][i] for i in rows] if len(texts) > 1 else None
    batch = tokenizer(first, second, truncation=True, max_length=token_window(tokenizer, max_length),
                      padding=True, return_tensors="pt")
    return {k: v.to(device) for k, v in batch.items()}


class FrozenEncoder:
    """An encoder (``model``, the base model, frozen in eval mode), its ``tokenizer`` and the ``device`` it runs on."""

    def __init__(self, model: Any, tokenizer: Any, device: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device

    @classmethod
    def load(cls, model: Any, *, tokenizer: Any = None, device: str | None = None,
             dtype: Any = None) -> FrozenEncoder:
        """The base model of ``model`` (a name, a folder or a loaded model object, which then needs ``tokenizer``),
        on ``device`` with weights in ``dtype``, frozen and in eval mode."""
        device = resolve_device(device)
        if isinstance(model, (str, os.PathLike)):
            from transformers import AutoModel

            source, gguf = resolve_local(str(model))
            tokenizer = tokenizer if tokenizer is not None else load_tokenizer(source, model, gguf)
            try:
                encoder = AutoModel.from_pretrained(source, trust_remote_code=False, **dtype_option(dtype),
                                                    **({"gguf_file": gguf} if gguf else {}))
            except (OSError, ValueError, KeyError) as exc:
                raise ModelLoadError(_not_found_message(str(model), source, exc)) from None
            where = f"model {str(model)!r}"
        else:
            if tokenizer is None:
                raise PromptlearnError("a model object needs its tokenizer: pass tokenizer= as well")
            encoder, where = model, f"model object {type(model).__name__}"
        ensure_pad_token(tokenizer, where)
        encoder = getattr(encoder, "base_model", encoder)  # the hidden states, not the LM head's logits
        encoder.to(device)
        if model_dtype(dtype) not in (None, "auto"):
            encoder.to(model_dtype(dtype))
        encoder.eval()
        return cls(encoder, tokenizer, device)

    def features(self, texts: Sequence[Sequence[str]], *, pooling: str = "mean", max_length: int = 256,
                 batch_size: int = 32, show_progress: bool = False) -> Any:
        """The pooled last hidden states ``[n_texts, hidden_size]`` (float32 tensor on the encoder's device) of
        ``texts``: one list of strings per field (two fields: sentence pairs), in batches of ``batch_size``,
        truncated to ``max_length`` tokens; a progress bar when ``show_progress``."""
        import torch
        from tqdm.auto import tqdm

        encoder, tokenizer, device = self.model, self.tokenizer, self.device
        n = len(texts[0])
        hidden = int(getattr(encoder.config, "hidden_size", 0) or 0)
        chunks = []
        with torch.inference_mode():
            for rows in tqdm(row_batches(n, batch_size), desc="features", disable=not show_progress):
                batch = encode_batch(texts, rows, tokenizer, device, max_length)
                states = encoder(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].to(states.dtype)
                if pooling == "mean":
                    pooled = (states * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
                else:
                    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
                    if pooling == "cls":  # the first real token (padding may be on the left)
                        index = torch.where(mask > 0, positions, mask.shape[1]).min(1).values
                    else:  # the last real token
                        index = torch.where(mask > 0, positions, -1).max(1).values
                    pooled = states[torch.arange(len(rows), device=states.device), index.clamp(min=0)]
                chunks.append(pooled)
        return torch.cat(chunks) if chunks else torch.zeros((0, hidden), device=device)
