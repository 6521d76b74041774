"""The model card a saved folder carries (README.md): the hub's front matter, the body's facts, the evaluation
figures tied to the weights they were measured on, and loading that never reads the card."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import transformers
from huggingface_hub import ModelCard

from promptlearn import ConfigError, PromptClassifier, PromptlearnError, TrainingOptions
from promptlearn.core.metrics import classification_report
from promptlearn.estimators.model_card import (
    CARD_FILE,
    EVAL_FILE,
    build_card,
    content_fingerprint,
    record_evaluation,
    write_card,
)

TEMPLATE = "{{ text }} It was [MASK]."
VERBALIZER = {"negative": ["bad", "awful"], "positive": ["great"]}
X = ["a good movie , the actors were great .", "bad film", "i think the story was boring and slow .", "fine",
     "great fun", "awful acting"]
Y = ["positive", "negative", "negative", "positive", "positive", "negative"]


def _soft(path, **options):
    return PromptClassifier(model=str(path), template=TEMPLATE, verbalizer=VERBALIZER, tuning="soft",
                            training=TrainingOptions(max_steps=2, batch_size=2), device="cpu", seed=3, **options)


def _card(folder):
    card = ModelCard.load(folder / CARD_FILE)  # the hub's own parser: the front matter must be valid for it
    return card.data.to_dict(), card.text


def _report(truth, predicted, **extra):
    report = classification_report(truth, predicted, ["negative", "positive"])
    report.update(extra)
    return report


@pytest.fixture
def soft_folder(tiny_bert_dir, tmp_path):
    clf = _soft(tiny_bert_dir).fit(X, Y)
    folder = clf.save(tmp_path / "sst2-soft", card={"language": "en", "license": "apache-2.0",
                                                    "tags": ["sentiment"], "datasets": ["glue"]})
    return clf, folder


def test_card_front_matter_and_body(soft_folder):
    clf, folder = soft_folder
    data, body = _card(folder)
    assert data["library_name"] == "promptlearn" and data["pipeline_tag"] == "text-classification"
    assert data["language"] == ["en"] and data["license"] == "apache-2.0" and data["datasets"] == ["glue"]
    assert data["tags"][:3] == ["promptlearn", "prompt-based", "few-shot"] and "sentiment" in data["tags"]
    assert "soft-prompt" in data["tags"]
    assert "base_model" not in data  # a local folder is not a hub name
    assert "metrics" not in data and "model-index" not in data  # not evaluated
    assert f"\n{clf.template_.source}\n" in body  # the template as scored ([SOFT:n] in front)
    assert "| negative | bad, awful |" in body and "| positive | great |" in body
    n_parameters = clf.prompt_.n_parameters()
    size = (folder / "prompt.safetensors").stat().st_size
    assert f"{n_parameters} trainable parameters" in body and f"({size / 1000:.1f} kB, `prompt.safetensors`)" in body
    assert "- **Training data:** 6 labelled examples (negative 3, positive 3)" in body
    assert "- **Seed:** 3" in body
    assert f"transformers {transformers.__version__}" in body and f"torch {torch.__version__}" in body
    assert 'PromptClassifier.from_pretrained("' in body and "Not evaluated yet" in body
    config = json.loads((folder / "config.json").read_text())
    assert config["card"]["training"] == {"examples": 6, "per_class": {"negative": 3, "positive": 3},
                                          "trained_parameters": n_parameters}


def test_card_names_a_hub_base_model_and_short_names(soft_folder):
    _, folder = soft_folder
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    for recorded, expected in (("FacebookAI/roberta-large", "FacebookAI/roberta-large"),
                               ("smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct"), ("/abs/local/model", None)):
        config["base_model"] = config["model"] = recorded
        config_path.write_text(json.dumps(config))
        write_card(folder)
        data, body = _card(folder)
        assert data.get("base_model") == expected
        assert (f"https://huggingface.co/{expected}" in body) if expected else ("a local language model" in body)


def test_card_fields_are_checked(tiny_bert_dir, tmp_path):
    clf = PromptClassifier(model=str(tiny_bert_dir), template=TEMPLATE, verbalizer=VERBALIZER)
    for card, words in (({"library_name": "x"}, "written by promptlearn"), ({"metrics": ["f1"]}, "written by"),
                        ({"tags": [1]}, "list of strings"), ({"license": 2}, "must be a string"),
                        ({"base_model": "./here"}, "not a hub repository id"), ({"a b": 1}, "not a front-matter"),
                        ({"language": object()}, "must hold text"), (["en"], "must be a dict")):
        with pytest.raises(ConfigError, match=words) as info:
            clf.save(tmp_path / "never", card=card)
        assert "\n" not in str(info.value)
    assert not (tmp_path / "never").exists()  # checked before anything is written


def test_card_is_markdown_safe(tiny_bert_dir, tmp_path):
    """A template with backticks and a class name with '|' cannot break the card's code block or table."""
    template = "```{{ text }}``` It | was [MASK]."
    clf = PromptClassifier(model=str(tiny_bert_dir), template=template, verbalizer={"a|b": ["bad"], "c": ["great"]})
    folder = clf.save(tmp_path / "odd", card={"model_name": "odd one", "description": "Odd text."})
    data, body = _card(folder)
    assert data["library_name"] == "promptlearn"
    assert f"````\n{template}\n````" in body and "| a\\|b | bad |" in body
    assert body.startswith("\n# odd one\n\nOdd text.\n") or "# odd one\n\nOdd text." in body
    assert "nothing trained" in body and "none recorded" in body  # zero-shot: nothing trained, no training data


def test_evaluation_figures_follow_the_weights(soft_folder, tiny_bert_dir, tmp_path):
    clf, folder = soft_folder
    report = _report([0, 1, 1, 0], [0, 1, 0, 0], n_examples=4, data=str(tmp_path / "SST-2" / "16-13"),
                     split="test", variant="raw",
                     variants={"raw": {"accuracy": 0.75, "macro_f1": 0.7333}, "calibrated": {"accuracy": 0.5,
                                                                                           "macro_f1": 0.4}})
    record_evaluation(folder, report)
    data, body = _card(folder)
    assert data["metrics"] == ["accuracy", "f1"]
    metrics = {m["type"]: m["value"] for m in data["model-index"][0]["results"][0]["metrics"]}
    assert metrics == {"accuracy": 0.75, "f1": round(report["macro_f1"], 4)}
    assert data["model-index"][0]["results"][0]["dataset"] == {"name": "SST-2/16-13", "type": "SST-2/16-13",
                                                              "split": "test"}
    assert "| SST-2/16-13 | test | 4 | 75.00 % | 73.33 % | raw (also calibrated: 50.00 % / 40.00 %) |" in body
    assert str(tmp_path) not in body  # a local path is shortened, never published whole
    # a second dataset is added; the same dataset and split again replaces its row
    record_evaluation(folder, _report([0, 1], [0, 1]), dataset="sst2", split="validation")
    record_evaluation(folder, _report([0, 1, 1, 0], [1, 1, 1, 0], n_examples=4), dataset="SST-2/16-13",
                      split="test")
    results = json.loads((folder / EVAL_FILE).read_text())["results"]
    assert [(r["dataset"], r["split"], r["accuracy"]) for r in results] == [("sst2", "validation", 1.0),
                                                                            ("SST-2/16-13", "test", 0.75)]
    assert "| sst2 | validation | 2 | 100.00 % |" in _card(folder)[1]
    # saving the same classifier again keeps the figures (same content) and the new card fields
    clf.save(folder, overwrite=True, card={"license": "mit"})
    data, body = _card(folder)
    assert data["license"] == "mit" and data["language"] == ["en"] and len(data["model-index"][0]["results"]) == 2
    # other weights: the figures are dropped, not shown for weights they were not measured on
    clf.set_params(training__max_steps=1).fit(X[:4], Y[:4])
    clf.save(folder, overwrite=True)
    data, body = _card(folder)
    assert not (folder / EVAL_FILE).exists() and "model-index" not in data and "Not evaluated yet" in body
    assert "- **Training data:** 4 labelled examples" in body
    # figures copied in from another folder do not match this one's content: ignored
    other = _soft(tiny_bert_dir).fit(X, Y).save(tmp_path / "other")
    record_evaluation(other, report)
    shutil.copy(other / EVAL_FILE, folder / EVAL_FILE)
    assert content_fingerprint(other) != content_fingerprint(folder)
    assert "Not evaluated yet" in build_card(folder)


def test_evaluation_report_is_checked(soft_folder, tmp_path):
    _, folder = soft_folder
    with pytest.raises(PromptlearnError, match="'accuracy' is None, not a number in"):
        record_evaluation(folder, {"macro_f1": 0.5})
    with pytest.raises(PromptlearnError, match="missing config.json"):
        record_evaluation(tmp_path, _report([0], [0]))


def test_fully_trained_model_card(tiny_bert_dir, tmp_path):
    clf = PromptClassifier(model=str(tiny_bert_dir), template=TEMPLATE, verbalizer=VERBALIZER, device="cpu",
                           training=TrainingOptions(max_steps=1, batch_size=2)).fit(X, Y)
    folder = clf.save(tmp_path / "full")
    body = _card(folder)[1]
    total = sum(p.numel() for p in clf.model_.model.parameters())
    assert "the whole model is saved" in body and "parameters were trained" in body and f"of {total}" in body


def test_tampered_card_changes_nothing_that_loads(soft_folder, tiny_bert_dir):
    clf, folder = soft_folder
    expected = clf.predict_proba(X)
    (folder / CARD_FILE).write_text("---\nbase_model: evil/model\ntrust_remote_code: true\n---\n"
                                    "```python\nimport os; os.system('echo pwned')\n```\n")
    config = json.loads((folder / "config.json").read_text())
    config["card"] = {"fields": {"library_name": "evil"}, "training": "garbage", "versions": 3}
    (folder / "config.json").write_text(json.dumps(config))
    loaded = PromptClassifier.load(folder, model=str(tiny_bert_dir))
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=1e-6)
    assert loaded.trust_remote_code is False and loaded.card_ is None  # a damaged card entry is dropped
    (folder / CARD_FILE).unlink()
    np.testing.assert_allclose(PromptClassifier.load(folder, model=str(tiny_bert_dir)).predict_proba(X), expected,
                               rtol=1e-6)


def test_loaded_classifier_keeps_its_card_when_saved_again(soft_folder, tiny_bert_dir, tmp_path):
    _, folder = soft_folder
    loaded = PromptClassifier.load(folder, model=str(tiny_bert_dir))
    again = loaded.save(tmp_path / "again", card={"tags": ["movies"]})
    data, body = _card(again)
    assert data["language"] == ["en"] and "movies" in data["tags"] and "sentiment" not in data["tags"]
    assert "- **Training data:** 6 labelled examples (negative 3, positive 3)" in body
    assert content_fingerprint(again) == content_fingerprint(folder)  # the same content as the original


def test_ensemble_card(tiny_bert_dir, tmp_path):
    from promptlearn import PromptEnsemble

    members = [PromptClassifier(model=str(tiny_bert_dir), template=template, verbalizer=VERBALIZER, device="cpu")
               for template in (TEMPLATE, "{{ text }} All in all [MASK].")]
    ensemble = PromptEnsemble(members, combine="weighted", fit_members=False).fit(X, Y)
    folder = ensemble.save(tmp_path / "ens")
    data, body = _card(folder)
    assert data["library_name"] == "promptlearn" and "ensemble" in data["tags"] and "base_model" not in data
    assert "An ensemble of 2 classifiers" in body and "combined by `weighted`" in body
    for position, weight in enumerate(ensemble.weights_):
        assert f"| {position} | PromptClassifier | a local model | " in body and f"| {weight:.3f} |" in body
    assert "`{{ text }} All in all [MASK].`" in body and "from_pretrained(PromptEnsemble, \"ens\")" in body
    record_evaluation(folder, _report([0, 1], [0, 1]), dataset="sst2")
    assert "| sst2 |  | 2 | 100.00 % |" in _card(folder)[1]
    expected = ensemble.predict_proba(X)
    np.testing.assert_allclose(PromptEnsemble.load(folder, model=str(tiny_bert_dir)).predict_proba(X), expected,
                               rtol=1e-6)


def test_a_probe_folder_keeps_figures_without_a_card(tiny_bert_encoder_dir, tmp_path):
    from promptlearn import ProbeClassifier

    folder = ProbeClassifier(str(tiny_bert_encoder_dir)).fit(X, Y).save(tmp_path / "probe")
    assert record_evaluation(folder, _report([0, 1], [1, 1]), dataset="sst2") == folder / EVAL_FILE
    assert not (folder / CARD_FILE).exists()
    assert json.loads((folder / EVAL_FILE).read_text())["results"][0]["accuracy"] == 0.5


def test_evaluate_update_card_records_the_figures_it_printed(soft_folder, tiny_bert_dir, tmp_path, capsys):
    from promptlearn.cli import main

    _, folder = soft_folder
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"text": x, "label": y}) + "\n" for x, y in zip(X, Y)), encoding="utf-8")
    report = tmp_path / "report.json"
    assert main(["evaluate", "--model-dir", str(folder), "--model", str(tiny_bert_dir), "--data", str(data),
                 "--output", str(report), "--update-card", "-q"]) == 0
    printed = json.loads(report.read_text(encoding="utf-8"))
    (result,) = json.loads((folder / EVAL_FILE).read_text(encoding="utf-8"))["results"]
    assert result["accuracy"] == pytest.approx(printed["accuracy"]) and result["n_examples"] == len(X)
    data_fields, body = _card(folder)
    assert f"{100 * printed['accuracy']:.1f}" in body
    assert data_fields["model-index"][0]["results"][0]["metrics"][0]["value"] == pytest.approx(printed["accuracy"])


def test_update_card_needs_a_saved_folder(tiny_bert_dir, tmp_path, capsys):
    from promptlearn.cli import main

    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"text": x, "label": y}) + "\n" for x, y in zip(X, Y)), encoding="utf-8")
    code = main(["evaluate", "--model", str(tiny_bert_dir), "--template", TEMPLATE, "--verbalizer",
                 json.dumps(VERBALIZER), "--data", str(data), "--update-card"])
    assert code != 0 and "--update-card" in capsys.readouterr().err
