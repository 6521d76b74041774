"""The two model kinds promptlearn scores with -- masked LMs (fill a [MASK]) and causal LMs (score a continuation) --
told from a model's config, and the tokenizer checks each kind needs.

Used by the model loader (:mod:`promptlearn.models.loader`), the GGUF cache (:mod:`promptlearn.models.gguf_cache`)
and the estimators that take a model already loaded.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import ModelLoadError, WrongModelKindError

KINDS = ("auto", "masked", "causal")


def detect_kind(config: Any, where: str) -> str:
    """``masked`` or ``causal`` from a config's architectures, with a clear error for anything else."""
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, MODEL_FOR_MASKED_LM_MAPPING

    architectures = list(getattr(config, "architectures", None) or [])
    if any(a.endswith("ForMaskedLM") for a in architectures):
        return "masked"
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return "causal"
    if getattr(config, "is_encoder_decoder", False):
        raise WrongModelKindError(f"{where} is an encoder-decoder model ({config.model_type}); promptlearn scores "
                                  "with masked LMs (BERT, RoBERTa, ...) or causal LMs (GPT-2, Llama, ...)")
    if architectures and not any(a.endswith("Model") for a in architectures):
        raise WrongModelKindError(f"{where} holds a {architectures[0]}, not a masked or causal language model; "
                                  "load a checkpoint with its language-model head")
    if type(config) in MODEL_FOR_CAUSAL_LM_MAPPING and type(config) not in MODEL_FOR_MASKED_LM_MAPPING:
        return "causal"
    if type(config) in MODEL_FOR_MASKED_LM_MAPPING:
        return "masked"
    raise WrongModelKindError(f"{where} ({config.model_type}) is neither a masked nor a causal language model")


def prepare_tokenizer(tokenizer: Any, kind: str, where: str) -> None:
    """Check a tokenizer suits the model kind; give causal tokenizers a pad token."""
    if kind == "masked" and tokenizer.mask_token is None:
        raise WrongModelKindError(f"{where}: the tokenizer has no mask token, so it cannot fill a [MASK]")
    ensure_pad_token(tokenizer, where)


def ensure_pad_token(tokenizer: Any, where: str) -> None:
    """Give a tokenizer without a pad token its eos (or unk) token to pad batches with."""
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ModelLoadError(f"{where}: the tokenizer has no pad, eos or unk token to pad batches with")
        tokenizer.pad_token = fallback
