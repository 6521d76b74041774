"""load_model on tiny local checkpoints: kind detection and one clear error for everything else."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from transformers import AutoTokenizer

from promptlearn import ConfigError, LoadedModel, ModelLoadError, PromptlearnError, WrongModelKindError, load_model


@pytest.mark.parametrize("fixture, kind, architecture", [
    ("tiny_bert_dir", "masked", "BertForMaskedLM"),
    ("tiny_roberta_dir", "masked", "RobertaForMaskedLM"),
    ("tiny_gpt2_dir", "causal", "GPT2LMHeadModel"),
    ("tiny_llama_dir", "causal", "LlamaForCausalLM"),
])
def test_kind_detected(request, fixture, kind, architecture):
    path = request.getfixturevalue(fixture)
    loaded = load_model(str(path))
    assert isinstance(loaded, LoadedModel)
    assert loaded.kind == kind
    assert type(loaded.model).__name__ == architecture
    assert loaded.name == str(path)
    assert not loaded.model.training
    assert loaded.tokenizer.pad_token is not None
    if kind == "masked":
        assert loaded.tokenizer.mask_token is not None


@pytest.mark.parametrize("fixture, kind", [("tiny_bert_dir", "masked"), ("tiny_gpt2_dir", "causal")])
def test_explicit_matching_kind(request, fixture, kind):
    assert load_model(str(request.getfixturevalue(fixture)), kind=kind).kind == kind


def test_pathlib_path_accepted(tiny_bert_dir):
    assert load_model(tiny_bert_dir).kind == "masked"


def test_encoder_without_mlm_head(tiny_bert_encoder_dir):
    with pytest.raises(WrongModelKindError) as info:
        load_model(str(tiny_bert_encoder_dir))
    message = str(info.value)
    assert "masked-LM head" in message
    assert str(tiny_bert_encoder_dir) in message


def test_sequence_classification_checkpoint(tiny_seqcls_dir):
    with pytest.raises(WrongModelKindError) as info:
        load_model(str(tiny_seqcls_dir))
    assert "BertForSequenceClassification" in str(info.value)
    assert str(tiny_seqcls_dir) in str(info.value)


@pytest.mark.parametrize("kind", ["auto", "masked"])
def test_sequence_classification_checkpoint_any_kind(tiny_seqcls_dir, kind):
    # Forcing the kind must not load a random-initialised MLM head silently.
    with pytest.raises(WrongModelKindError):
        load_model(str(tiny_seqcls_dir), kind=kind)


def test_nonexistent_local_path(tmp_path):
    missing = tmp_path / "no" / "such" / "model"
    with pytest.raises(ModelLoadError) as info:
        load_model(str(missing))
    assert str(missing) in str(info.value)


def test_nonexistent_relative_path():
    with pytest.raises(ModelLoadError, match="no_such_dir"):
        load_model("./no_such_dir")


def test_empty_folder(tmp_path):
    with pytest.raises(ModelLoadError) as info:
        load_model(str(tmp_path))
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("name", ["no-such-org/no-such-model", "no-such-model-name"])
def test_unknown_hub_name_fails_fast_offline(name):
    start = time.perf_counter()
    with pytest.raises(ModelLoadError) as info:
        load_model(name)
    assert time.perf_counter() - start < 10
    assert name in str(info.value)
    assert "Traceback" not in str(info.value)


def test_missing_gguf_file(tmp_path):
    with pytest.raises(ModelLoadError, match="model.gguf"):
        load_model(str(tmp_path / "model.gguf"))


def test_bad_kind_argument(tiny_bert_dir):
    with pytest.raises(ConfigError, match="kind"):
        load_model(str(tiny_bert_dir), kind="seq2seq")


@pytest.mark.parametrize("fixture", ["tiny_gpt2_dir", "tiny_llama_dir"])
def test_masked_kind_on_causal_folder_is_clean(request, fixture):
    path = request.getfixturevalue(fixture)
    with pytest.raises((WrongModelKindError, ModelLoadError)) as info:
        load_model(str(path), kind="masked")
    assert isinstance(info.value, PromptlearnError)
    assert str(path) in str(info.value)


def test_causal_tokenizer_without_pad_token_gets_one(tiny_gpt2_dir, tmp_path):
    folder = tmp_path / "gpt2-no-pad"
    shutil.copytree(tiny_gpt2_dir, folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.pop("pad_token", None)
    config_path.write_text(json.dumps(config), encoding="utf-8")
    assert AutoTokenizer.from_pretrained(folder).pad_token is None  # the precondition holds

    loaded = load_model(str(folder))
    assert loaded.kind == "causal"
    assert loaded.tokenizer.pad_token is not None
    assert loaded.tokenizer.pad_token_id == loaded.tokenizer.eos_token_id

    # ... and it can pad a batch of different lengths.
    from promptlearn import PromptClassifier

    clf = PromptClassifier(str(folder), "{{ text }} It was [MASK].", {"neg": ["bad"], "pos": ["good"]}, batch_size=4)
    probs = clf.predict_proba(["a", "a much longer text about a good movie ."])
    assert probs.shape == (2, 2)
