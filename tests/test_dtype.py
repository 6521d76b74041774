"""``dtype=`` / ``--dtype``: half-precision models score in float32 and train with float32 master weights.

The agreement of bfloat16 with float32 on real models (SST-2 test argmaxes) is measured by
``python -m benchmarks.dtype_agreement`` (benchmarks/RESULTS.md); here the tiny local models check the mechanics.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from promptlearn import ConfigError, PromptClassifier
from promptlearn.applications.adapt import adapt
from promptlearn.estimators.finetune import FineTuneClassifier
from promptlearn.estimators.probe import ProbeClassifier
from promptlearn.cli import main
from promptlearn.models.precision import MixedPrecision

TEMPLATE = "{{ text }} It was [MASK]."
VERBALIZER = {"negative": ["bad", "awful"], "positive": ["great"]}
TEXTS = ["a good movie , the actors were great .", "bad film", "i think the story was boring and slow .", "fine",
         "great fun", "awful acting"] * 2
LABELS = ["positive", "negative", "negative", "positive", "positive", "negative"] * 2


def _dtype(classifier) -> torch.dtype:
    return next(classifier.model_.model.parameters()).dtype


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_llama_dir"])
def test_bfloat16_scores_are_float32_finite_and_close(request, fixture):
    path = str(request.getfixturevalue(fixture))
    full = PromptClassifier(path, TEMPLATE, VERBALIZER, show_progress=False)
    half = PromptClassifier(path, TEMPLATE, VERBALIZER, dtype="bfloat16", show_progress=False)
    p32, p16 = full.predict_proba(TEXTS), half.predict_proba(TEXTS)
    assert _dtype(full) == torch.float32 and _dtype(half) == torch.bfloat16
    assert p16.dtype in (np.float32, np.float64) and np.isfinite(p16).all()
    np.testing.assert_allclose(p16.sum(axis=1), 1.0, atol=1e-6)
    assert not np.array_equal(p16, p32)  # really computed in bfloat16
    np.testing.assert_allclose(p16, p32, atol=0.05)


def test_unknown_dtype_is_a_one_line_error(tiny_bert_dir):
    with pytest.raises(ConfigError, match="unknown dtype 'float8'"):
        PromptClassifier(str(tiny_bert_dir), TEMPLATE, VERBALIZER, dtype="float8").predict_proba(TEXTS[:1])


def test_model_object_is_converted_only_when_asked(tiny_bert_dir):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(tiny_bert_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    PromptClassifier(model, TEMPLATE, VERBALIZER, tokenizer=tokenizer).predict_proba(TEXTS[:2])
    assert next(model.parameters()).dtype == torch.float32
    PromptClassifier(model, TEMPLATE, VERBALIZER, tokenizer=tokenizer, dtype="bfloat16").predict_proba(TEXTS[:2])
    assert next(model.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_gpt2_dir"])
def test_bfloat16_fit_keeps_float32_master_weights_and_returns_to_bfloat16(request, fixture, monkeypatch):
    path = str(request.getfixturevalue(fixture))
    clf = PromptClassifier(path, TEMPLATE, VERBALIZER, dtype="bfloat16", learning_rate=1e-3, max_steps=3,
                           train_batch_size=4, show_progress=False)
    seen: list[tuple[torch.dtype, bool]] = []
    original = MixedPrecision.autocast

    def spy(self):  # the forward runs under autocast while the trainable weights are float32
        seen.append((next(p for p in self.module.parameters() if p.requires_grad).dtype, self.half))
        return original(self)

    monkeypatch.setattr(MixedPrecision, "autocast", spy)
    before = {k: v.detach().float().clone() for k, v in clf.model_.model.state_dict().items()}
    clf.fit(TEXTS, LABELS)
    assert seen and all(dtype == torch.float32 and half for dtype, half in seen)
    assert _dtype(clf) == torch.bfloat16
    after = clf.model_.model.state_dict()
    assert any(not torch.equal(before[k], after[k].float()) for k in before)  # it trained
    assert np.isfinite(clf.predict_proba(TEXTS)).all()


def test_float16_training_is_refused(tiny_bert_dir):
    clf = PromptClassifier(str(tiny_bert_dir), TEMPLATE, VERBALIZER, dtype="float16", max_steps=1,
                           show_progress=False)
    with pytest.raises(ConfigError, match="float16 needs loss scaling"):
        clf.fit(TEXTS, LABELS)


def test_saved_classifier_records_and_restores_its_dtype(tiny_bert_dir, tmp_path):
    clf = PromptClassifier(str(tiny_bert_dir), TEMPLATE, VERBALIZER, dtype=torch.bfloat16, show_progress=False)
    expected = clf.predict_proba(TEXTS)
    clf.save(tmp_path / "zero")
    assert json.loads((tmp_path / "zero" / "config.json").read_text())["params"]["dtype"] == "bfloat16"
    loaded = PromptClassifier.load(tmp_path / "zero", model=str(tiny_bert_dir))  # a local base model: named
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), expected)
    assert _dtype(loaded) == torch.bfloat16
    assert _dtype(PromptClassifier.load(tmp_path / "zero", model=str(tiny_bert_dir), dtype="float32")) == torch.float32
    clf.set_params(max_steps=1, train_batch_size=4).fit(TEXTS, LABELS)  # weights saved in the folder, bfloat16
    clf.save(tmp_path / "trained")
    again = PromptClassifier.load(tmp_path / "trained")
    assert _dtype(again) == torch.bfloat16
    np.testing.assert_array_equal(again.predict_proba(TEXTS), clf.predict_proba(TEXTS))


def test_cli_dtype_option(tiny_bert_dir, tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in zip(TEXTS, LABELS)))
    verbalizer = tmp_path / "v.json"
    verbalizer.write_text(json.dumps(VERBALIZER))
    common = ["--model", str(tiny_bert_dir), "--template", TEMPLATE, "--verbalizer", str(verbalizer)]
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    out = tmp_path / "out.jsonl"
    assert main(["classify", *common, "--input", str(texts), "--output", str(out), "--dtype", "bfloat16"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = PromptClassifier(str(tiny_bert_dir), TEMPLATE, VERBALIZER, dtype="bfloat16").predict_proba(TEXTS)
    np.testing.assert_allclose([[r["p(negative)"], r["p(positive)"]] for r in rows], expected, atol=1e-6)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["classify", *common, "--input", str(texts), "--dtype", "float8"])
    assert exc.value.code == 2
    assert "invalid choice: 'float8'" in capsys.readouterr().err
    # train records the dtype; evaluate --model-dir uses it unless --dtype says otherwise
    saved = tmp_path / "saved"
    assert main(["train", *common, "--train", str(data), "--output", str(saved), "--dtype", "bfloat16",
                 "--max-steps", "1"]) == 0
    assert json.loads((saved / "config.json").read_text())["params"]["dtype"] == "bfloat16"
    assert main(["evaluate", "--model-dir", str(saved), "--data", str(data)]) == 0


def test_baselines_and_adapt_take_a_dtype(tiny_bert_dir, tiny_bert_encoder_dir, tmp_path):
    tune = FineTuneClassifier(str(tiny_bert_dir), dtype="bfloat16", max_steps=2, train_batch_size=4,
                              show_progress=False).fit(TEXTS, LABELS)
    assert next(tune.model_.parameters()).dtype == torch.bfloat16
    assert np.isfinite(tune.predict_proba(TEXTS)).all()
    probe = ProbeClassifier(str(tiny_bert_encoder_dir), dtype="bfloat16", show_progress=False).fit(TEXTS, LABELS)
    assert next(probe.encoder_.parameters()).dtype == torch.bfloat16
    assert np.isfinite(probe.predict_proba(TEXTS)).all()
    summary = adapt(str(tiny_bert_encoder_dir), TEXTS, tmp_path / "mlm", head_steps=1, steps=2, batch_size=4,
                    max_length=16, dtype="bfloat16", show_progress=False)
    assert summary["dtype"] == "bfloat16" and np.isfinite(summary["full_loss"])
    assert PromptClassifier(str(tmp_path / "mlm"), TEMPLATE, VERBALIZER).predict_proba(TEXTS[:2]).shape == (2, 2)
