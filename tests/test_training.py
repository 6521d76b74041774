"""Prompt-based fine-tuning (PromptClassifier.fit) and the shared training loop, on tiny local models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from promptlearn import PromptClassifier
from promptlearn.core.errors import ConfigError, DataError, UnknownLabelError
from promptlearn.core.errors import TrainingError
from promptlearn.pipeline.training import Trainer, TrainingConfig, freeze

POSITIVE = ["good movie .", "great film .", "a good story .", "great acting .", "the actors were good .",
            "a great story .", "good fun .", "great music ."]
NEGATIVE = ["bad movie .", "a bad film .", "bad story .", "bad acting .", "the actors were bad .",
            "a bad story .", "bad fun .", "bad music ."]
X = POSITIVE + NEGATIVE
Y = ["positive"] * len(POSITIVE) + ["negative"] * len(NEGATIVE)
VERBALIZER = {"negative": ["bad"], "positive": ["great"]}


def _classifier(path, **options):
    defaults = dict(template="{{ text }} it was [MASK] .", verbalizer=VERBALIZER, learning_rate=3e-3, epochs=20,
                    train_batch_size=4, seed=0, show_progress=False)
    defaults.update(options)
    return PromptClassifier(str(path), **defaults)


@pytest.mark.parametrize("fixture, template", [
    ("tiny_bert_dir", "{{ text }} it was [MASK] ."),
    ("tiny_roberta_dir", "{{ text }} It was [MASK]."),
    ("tiny_gpt2_dir", "Review: {{ text }}\nSentiment: [MASK]"),
    ("tiny_llama_dir", "Review: {{ text }}\nSentiment: [MASK]"),
])
def test_prompt_classifier_learns_a_separable_task(request, fixture, template):
    # 160 steps with warm-up: every tiny model reaches 100 % for seeds 0-3 (checked); 80 steps are not enough.
    clf = _classifier(request.getfixturevalue(fixture), epochs=40, warmup_ratio=0.1).set_params(template=template)
    before = clf.score(X, Y)
    clf.fit(X, Y)
    assert clf.score(X, Y) >= 0.95, (before, clf.training_result_.history[-3:])
    losses = [r["loss"] for r in clf.training_result_.history]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_multi_token_label_words_train(tiny_bert_dir):
    clf = _classifier(tiny_bert_dir, verbalizer={"negative": ["terrible"], "positive": ["wonderful"]}, epochs=40,
                      warmup_ratio=0.1)
    clf.fit(X, Y)
    assert clf.score(X, Y) >= 0.95


def test_same_seed_same_result_and_other_seed_differs(tiny_bert_dir):
    a = _classifier(tiny_bert_dir, max_steps=6).fit(X, Y).predict_proba(X)
    b = _classifier(tiny_bert_dir, max_steps=6).fit(X, Y).predict_proba(X)
    c = _classifier(tiny_bert_dir, max_steps=6, seed=1).fit(X, Y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_fit_leaves_global_torch_rng_alone(tiny_bert_dir):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _classifier(tiny_bert_dir, max_steps=3).fit(X, Y)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


def test_save_load_after_training_gives_identical_probabilities(tiny_bert_dir, tmp_path):
    clf = _classifier(tiny_bert_dir, max_steps=10).fit(X, Y)
    clf.save(tmp_path / "trained")
    assert (tmp_path / "trained" / "model" / "model.safetensors").is_file()
    config = json.loads((tmp_path / "trained" / "config.json").read_text())
    assert config["model"] is None and config["base_model"] == str(tiny_bert_dir)
    reloaded = PromptClassifier.load(tmp_path / "trained")
    np.testing.assert_array_equal(reloaded.predict_proba(X), clf.predict_proba(X))
    untrained = _classifier(tiny_bert_dir)
    assert not np.array_equal(untrained.predict_proba(X), clf.predict_proba(X))


def test_save_a_model_read_from_gguf(tiny_llama_dir, tmp_path):
    """A GGUF checkpoint (the packaged SmolLM2) is dequantized to float weights when loaded but stays marked as
    quantized, which save_pretrained refuses: it is saved as the float model it is, and the mark is kept."""
    from types import SimpleNamespace

    clf = PromptClassifier(str(tiny_llama_dir), "{{ text }} It was [MASK]", VERBALIZER, learning_rate=1e-3,
                           max_steps=2, train_batch_size=4, seed=0, show_progress=False)
    model = clf.model_.model
    marker = SimpleNamespace(quantization_config=SimpleNamespace(quant_method=SimpleNamespace(value="gguf")))
    model.hf_quantizer = marker
    model.config.quantization_config = {"quant_method": "gguf"}
    clf.fit(X, Y)
    clf.save(tmp_path / "trained")
    saved = json.loads((tmp_path / "trained" / "model" / "config.json").read_text())
    assert "quantization_config" not in saved
    assert model.hf_quantizer is marker and model.config.quantization_config == {"quant_method": "gguf"}
    reloaded = PromptClassifier.load(tmp_path / "trained")
    np.testing.assert_array_equal(reloaded.predict_proba(X), clf.predict_proba(X))


class _Killed(Exception):
    pass


def _kill_at_call(monkeypatch, n):
    calls = {"n": 0}
    original = Trainer._average_gradients

    def dying(self):
        calls["n"] += 1
        if calls["n"] == n:
            raise _Killed()
        return original(self)

    monkeypatch.setattr(Trainer, "_average_gradients", dying)


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_llama_dir"])
def test_kill_and_resume_equals_uninterrupted(request, fixture, tmp_path, monkeypatch):
    path = request.getfixturevalue(fixture)
    options = dict(max_steps=12, eval_every=4, checkpoint_dir=str(tmp_path / "run"))
    if fixture == "tiny_llama_dir":
        options["template"] = "Review: {{ text }}\nSentiment: [MASK]"
    dev = (X[::3], Y[::3])
    whole = _classifier(path, **{**options, "checkpoint_dir": str(tmp_path / "whole")}).fit(X, Y, dev=dev)
    _kill_at_call(monkeypatch, 10)  # dies during step 10: the checkpoint of step 8 survives
    with pytest.raises(_Killed):
        _classifier(path, **options).fit(X, Y, dev=dev)
    monkeypatch.undo()
    state = json.loads((tmp_path / "run" / "checkpoint" / "trainer_state.json").read_text())
    assert state["result"]["steps"] == 8
    resumed = _classifier(path, **options).fit(X, Y, dev=dev, resume=True)
    assert resumed.training_result_.steps == whole.training_result_.steps == 12
    assert resumed.training_result_.history == whole.training_result_.history
    np.testing.assert_array_equal(resumed.predict_proba(X), whole.predict_proba(X))


def test_dev_selection_keeps_best_weights_and_early_stopping(tiny_bert_dir):
    clf = _classifier(tiny_bert_dir, max_steps=40, eval_every=2, patience=2)
    clf.fit(X, Y, dev=(X, Y))
    result = clf.training_result_
    dev_scores = [r["dev"] for r in result.history if "dev" in r]
    assert result.best_metric == max(dev_scores)
    assert clf.score(X, Y) == pytest.approx(result.best_metric)
    assert result.stopped_early == (result.steps < 40)


def test_mlm_auxiliary_loss_is_off_by_default_and_changes_the_result(tiny_bert_dir):
    unlabeled = ["the movie was good .", "the film was bad .", "a story about music ."] * 3
    plain = _classifier(tiny_bert_dir, max_steps=6).fit(X, Y)
    ignored = _classifier(tiny_bert_dir, max_steps=6).fit(X, Y, unlabeled=unlabeled)  # mlm_weight=0: unused
    np.testing.assert_array_equal(plain.predict_proba(X), ignored.predict_proba(X))
    with_mlm = _classifier(tiny_bert_dir, max_steps=6, mlm_weight=0.5).fit(X, Y, unlabeled=unlabeled)
    assert not np.allclose(plain.predict_proba(X), with_mlm.predict_proba(X))
    with pytest.raises(DataError, match="unlabel"):
        _classifier(tiny_bert_dir, max_steps=2, mlm_weight=0.5).fit(X, Y)


def test_causal_auxiliary_loss_runs(tiny_gpt2_dir):
    clf = _classifier(tiny_gpt2_dir, max_steps=3, mlm_weight=0.5, template="Review: {{ text }}\nSentiment: [MASK]")
    clf.fit(X, Y, unlabeled=["a movie .", "a film ."])
    assert np.isfinite(clf.predict_proba(X)).all()


def test_layer_freezing(tiny_bert_dir):
    clf = _classifier(tiny_bert_dir, max_steps=3, trainable="top:1")
    model = clf.model_.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    clf.fit(X, Y)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert any(".layer.1." in n for n in changed)
    assert not any(".layer.0." in n or "embeddings" in n for n in changed)
    model2 = _classifier(tiny_bert_dir).model_.model
    freeze(model2, "no_embeddings")
    assert not model2.get_input_embeddings().weight.requires_grad
    assert all(p.requires_grad for n, p in model2.named_parameters() if ".layer." in n)
    for bad in ("top:9", "middle", "top:x"):
        with pytest.raises(ConfigError):
            freeze(model2, bad)


def test_bad_training_input(tiny_bert_dir, tmp_path):
    with pytest.raises(DataError, match="negative"):
        _classifier(tiny_bert_dir).fit(POSITIVE, ["positive"] * len(POSITIVE))
    with pytest.raises(UnknownLabelError):
        _classifier(tiny_bert_dir).fit(X, Y[:-1] + ["neutral"])
    with pytest.raises(UnknownLabelError):
        _classifier(tiny_bert_dir, max_steps=1).fit(X, Y, dev=(X[:2], ["positive", "maybe"]))
    with pytest.raises(ConfigError):
        _classifier(tiny_bert_dir, learning_rate=0).fit(X, Y)


def test_nan_loss_stops_with_a_message_and_keeps_last_good_checkpoint(tiny_bert_dir, tmp_path):
    clf = _classifier(tiny_bert_dir, max_steps=4, checkpoint_every=2, checkpoint_dir=str(tmp_path / "run"))
    clf.fit(X, Y)
    assert (tmp_path / "run" / "checkpoint" / "weights.safetensors").exists()
    model = torch.nn.Linear(2, 1)
    calls = {"n": 0}

    def loss_fn(indices):
        calls["n"] += 1
        return model(torch.ones(1, 2)).sum() * (float("nan") if calls["n"] == 3 else 1.0)

    trainer = Trainer(model, loss_fn, 4, TrainingConfig(max_steps=5, batch_size=2, checkpoint_every=1),
                      checkpoint_dir=tmp_path / "nan")
    with pytest.raises(TrainingError, match="not finite.*step 3.*last good checkpoint"):
        trainer.train()
    state = json.loads((tmp_path / "nan" / "checkpoint" / "trainer_state.json").read_text())
    assert state["result"]["steps"] == 2


def test_checkpoint_from_another_model_is_refused(tiny_bert_dir, tiny_roberta_dir, tmp_path):
    _classifier(tiny_bert_dir, max_steps=2, checkpoint_dir=str(tmp_path / "run")).fit(X, Y)
    other = _classifier(tiny_roberta_dir, max_steps=2, checkpoint_dir=str(tmp_path / "run"),
                        template="{{ text }} It was [MASK].")
    with pytest.raises(TrainingError, match="another model"):
        other.fit(X, Y, resume=True)
    changed = _classifier(tiny_bert_dir, max_steps=3, checkpoint_dir=str(tmp_path / "run"))
    with pytest.raises(TrainingError, match="hyper-parameters"):
        changed.fit(X, Y, resume=True)
