"""The tiny test checkpoints behave like the real models they stand in for."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
)

try:
    from . import tiny_models  # type: ignore[no-redef]
except ImportError:
    import tiny_models  # type: ignore[no-redef]

MASKED = ["tiny_bert_dir", "tiny_roberta_dir"]
CAUSAL = ["tiny_gpt2_dir", "tiny_llama_dir"]
EXPECTED_ARCH = {
    "tiny_bert_dir": "BertForMaskedLM",
    "tiny_roberta_dir": "RobertaForMaskedLM",
    "tiny_gpt2_dir": "GPT2LMHeadModel",
    "tiny_llama_dir": "LlamaForCausalLM",
    "tiny_bert_encoder_dir": "BertModel",
    "tiny_seqcls_dir": "BertForSequenceClassification",
}


def _toks(tok, text, **kw):
    return tok.convert_ids_to_tokens(tok(text, **kw)["input_ids"])


# ------------------------------------------------------------------------------------------------
# Every folder loads back with the Auto classes
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", MASKED + CAUSAL)
def test_lm_folders_load_back_cleanly(fixture, request):
    path = request.getfixturevalue(fixture)
    auto = AutoModelForMaskedLM if fixture in MASKED else AutoModelForCausalLM
    model, info = auto.from_pretrained(path, output_loading_info=True)
    tok = AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == EXPECTED_ARCH[fixture]
    assert model.config.architectures == [EXPECTED_ARCH[fixture]]
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert not model.training  # transformers 5 from_pretrained returns the model in eval mode
    assert model.get_input_embeddings().num_embeddings == len(tok)
    assert tok.model_max_length == (64 if fixture in MASKED else 128)
    assert tok.pad_token_id is not None

    # A padded batch, one row at the tokenizer's maximum length, runs through the model.
    enc = tok(["word " * 200, "It was great."], return_tensors="pt", padding=True, truncation=True)
    assert enc["input_ids"].shape[1] == tok.model_max_length
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape == (*enc["input_ids"].shape, len(tok))
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("fixture", ["tiny_bert_encoder_dir", "tiny_seqcls_dir"])
def test_non_lm_folders_load_back(fixture, request):
    from transformers import AutoModel, AutoModelForSequenceClassification

    path = request.getfixturevalue(fixture)
    auto = AutoModel if fixture == "tiny_bert_encoder_dir" else AutoModelForSequenceClassification
    model, info = auto.from_pretrained(path, output_loading_info=True)
    assert type(model).__name__ == EXPECTED_ARCH[fixture]
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert AutoConfig.from_pretrained(path).architectures == [EXPECTED_ARCH[fixture]]
    assert AutoTokenizer.from_pretrained(path).mask_token == "[MASK]"


# ------------------------------------------------------------------------------------------------
# Tokenizers
# ------------------------------------------------------------------------------------------------


def test_bert_tokenizer(tiny_bert_dir):
    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    assert tok.mask_token == "[MASK]"
    assert [tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id] == [
        0, 1, 2, 3, 4
    ]
    assert tok.bos_token is None and tok.eos_token is None
    ids = tok("hello [MASK] .")["input_ids"]
    assert ids.count(tok.mask_token_id) == 1
    assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "hello", "[MASK]", ".", "[SEP]"]
    # uncased, leading spaces are irrelevant
    assert _toks(tok, "It was GREAT.") == ["[CLS]", "it", "was", "great", ".", "[SEP]"]
    for word in ("great", "good", "bad"):
        assert _toks(tok, word, add_special_tokens=False) == [word]
        assert _toks(tok, " " + word, add_special_tokens=False) == [word]
    assert _toks(tok, "terrible", add_special_tokens=False) == ["terr", "##ible"]
    assert _toks(tok, "wonderful", add_special_tokens=False) == ["wonder", "##ful"]
    assert "terrible" not in tok.get_vocab() and "wonderful" not in tok.get_vocab()
    assert tok.unk_token_id not in tok("zebra quixotically 42")["input_ids"]  # letters/digits as pieces


def test_roberta_tokenizer(tiny_roberta_dir):
    tok = AutoTokenizer.from_pretrained(tiny_roberta_dir)
    assert (tok.bos_token, tok.cls_token, tok.eos_token, tok.sep_token) == ("<s>", "<s>", "</s>", "</s>")
    assert [tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    assert tok.mask_token == "<mask>" and tok.mask_token_id == len(tok) - 1
    assert tok.added_tokens_decoder[tok.mask_token_id].lstrip is True

    assert tok("hello <mask>.")["input_ids"].count(tok.mask_token_id) == 1
    ids = tok("It was <mask>.")["input_ids"]
    toks = tok.convert_ids_to_tokens(ids)
    assert toks == ["<s>", "It", "Ġwas", "<mask>", ".", "</s>"]
    assert toks[toks.index("<mask>") - 1] == "Ġwas"  # the space before <mask> went into the mask

    for word in ("great", "good", "bad"):
        assert len(tok(" " + word, add_special_tokens=False)["input_ids"]) == 1, word
    assert _toks(tok, " great", add_special_tokens=False) == ["Ġgreat"]
    assert len(tok(" terrible", add_special_tokens=False)["input_ids"]) > 1
    assert len(tok(" wonderful", add_special_tokens=False)["input_ids"]) > 1
    # byte-level BPE is space sensitive: "great" without a leading space is a different token
    assert tok("great", add_special_tokens=False)["input_ids"] != tok(" great", add_special_tokens=False)[
        "input_ids"
    ]

    config = AutoConfig.from_pretrained(tiny_roberta_dir)
    assert config.pad_token_id == 1 and config.max_position_embeddings == tok.model_max_length + 2


def test_gpt2_tokenizer_adds_nothing(tiny_gpt2_dir):
    tok = AutoTokenizer.from_pretrained(tiny_gpt2_dir)
    assert tok.bos_token == tok.eos_token == tok.pad_token == "<|endoftext|>"
    assert tok.bos_token_id == tok.eos_token_id == tok.pad_token_id
    assert tok.mask_token is None
    assert _toks(tok, "It was great.") == ["It", "Ġwas", "Ġgreat", "."]  # no BOS, no EOS
    assert _toks(tok, " great") == ["Ġgreat"] and _toks(tok, " good") == ["Ġgood"]
    assert len(tok(" terrible")["input_ids"]) > 1
    assert tok.padding_side == "right"


def test_llama_tokenizer_adds_bos(tiny_llama_dir, tiny_gpt2_dir):
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    gpt2 = AutoTokenizer.from_pretrained(tiny_gpt2_dir)
    assert tok.get_vocab() == gpt2.get_vocab()  # same tokenizer ...
    ids = tok("It was great.")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1  # ... plus a leading BOS
    assert ids[1:] == gpt2("It was great.")["input_ids"]
    assert tok("It was great.", add_special_tokens=False)["input_ids"] == ids[1:]
    assert tok.pad_token_id is not None
    config = AutoConfig.from_pretrained(tiny_llama_dir)
    assert config.bos_token_id == tok.bos_token_id
    assert (config.num_attention_heads, config.num_key_value_heads) == (4, 2)
    # transformers 5 quirk: add_bos_token is not saved (the BOS lives in tokenizer.json's
    # post-processor), so the reloaded attribute says False although BOS is added.
    print("llama tokenizer add_bos_token after reload:", tok.add_bos_token)


# ------------------------------------------------------------------------------------------------
# Wrong kinds of checkpoint
# ------------------------------------------------------------------------------------------------


def test_encoder_without_mlm_head_reports_missing_keys(tiny_bert_encoder_dir):
    model, info = AutoModelForMaskedLM.from_pretrained(tiny_bert_encoder_dir, output_loading_info=True)
    print("AutoModelForMaskedLM on a BertModel checkpoint, loading info:")
    print(json.dumps({k: sorted(map(str, v)) for k, v in info.items()}, indent=2))
    assert type(model).__name__ == "BertForMaskedLM"
    missing = set(info["missing_keys"])
    assert {
        "cls.predictions.bias",
        "cls.predictions.transform.dense.weight",
        "cls.predictions.transform.dense.bias",
        "cls.predictions.transform.LayerNorm.weight",
        "cls.predictions.transform.LayerNorm.bias",
    } <= missing
    assert all(k.startswith("cls.predictions.") for k in missing)
    # the decoder weight is tied to the (present) word embeddings, so it is never reported missing
    assert "cls.predictions.decoder.weight" not in missing
    assert set(info["unexpected_keys"]) == {"pooler.dense.weight", "pooler.dense.bias"}
    assert AutoConfig.from_pretrained(tiny_bert_encoder_dir).architectures == ["BertModel"]


def test_seqcls_checkpoint_is_not_a_language_model(tiny_seqcls_dir):
    config = AutoConfig.from_pretrained(tiny_seqcls_dir)
    assert config.architectures == ["BertForSequenceClassification"]
    assert config.id2label == {0: "negative", 1: "positive"}
    # AutoModelForMaskedLM does not refuse it: it loads, with a freshly initialised MLM head.
    model, info = AutoModelForMaskedLM.from_pretrained(tiny_seqcls_dir, output_loading_info=True)
    print("AutoModelForMaskedLM on a BertForSequenceClassification checkpoint, loading info:")
    print(json.dumps({k: sorted(map(str, v)) for k, v in info.items()}, indent=2))
    assert "cls.predictions.transform.dense.weight" in info["missing_keys"]
    assert {"classifier.weight", "classifier.bias"} <= set(info["unexpected_keys"])
    # Nor does AutoModelForCausalLM (BERT maps to BertLMHeadModel): check config.architectures.
    model, info = AutoModelForCausalLM.from_pretrained(tiny_seqcls_dir, output_loading_info=True)
    assert type(model).__name__ == "BertLMHeadModel"
    assert "cls.predictions.transform.dense.weight" in info["missing_keys"]


def test_masked_lm_loads_as_causal_lm_without_complaint(tiny_bert_dir, tiny_gpt2_dir):
    """transformers maps BERT configs to BertLMHeadModel, and the MLM head keys match exactly, so
    loading info cannot tell a masked LM from a causal LM: the library must look at
    config.architectures (or is_decoder)."""
    model, info = AutoModelForCausalLM.from_pretrained(tiny_bert_dir, output_loading_info=True)
    assert type(model).__name__ == "BertLMHeadModel"
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.config.architectures == ["BertForMaskedLM"] and not model.config.is_decoder
    with pytest.raises(ValueError, match="Unrecognized configuration class"):
        AutoModelForMaskedLM.from_pretrained(tiny_gpt2_dir)


# ------------------------------------------------------------------------------------------------
# Determinism
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(tiny_models.BUILDERS))
def test_builders_are_deterministic(name, tmp_path):
    build = tiny_models.BUILDERS[name]
    first = build(tmp_path / "a")
    tiny_models._trained_bpe.cache_clear()  # retrain the BPE too
    second = build(tmp_path / "b")
    w1, w2 = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    assert w1.keys() == w2.keys()
    for key in w1:
        assert torch.equal(w1[key], w2[key]), key
    assert (first / "tokenizer.json").read_bytes() == (second / "tokenizer.json").read_bytes()
    assert (first / "config.json").read_text() == (second / "config.json").read_text()
    # a different seed gives different weights
    third = build(tmp_path / "c", seed=tiny_models.SEED + 1)
    w3 = load_file(third / "model.safetensors")
    assert any(not torch.equal(w1[k], w3[k]) for k in w1)
