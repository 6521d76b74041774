"""`promptlearn train` and `promptlearn evaluate --model-dir`, end to end on a tiny local model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptlearn import PromptClassifier
from promptlearn.cli import main
from promptlearn.io.tasks import shared_data_root
from promptlearn.core.errors import DataError
from promptlearn.pipeline.training import Trainer

ROWS = [("good movie .", "positive"), ("bad movie .", "negative"), ("great film .", "positive"),
        ("a bad film .", "negative"), ("a good story .", "positive"), ("bad story .", "negative"),
        ("great acting .", "positive"), ("bad acting .", "negative")]


@pytest.fixture
def files(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in ROWS))
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in ROWS[:4]))
    return train, dev


def _train_args(model, train, dev, output, *extra):
    return ["train", "--model", str(model), "--template", "{{ text }} it was [MASK] .", "--verbalizer",
            str(_verbalizer(output)),
            "--train", str(train), "--dev", str(dev), "--output", str(output), "--learning-rate", "3e-3",
            "--max-steps", "6", "--train-batch-size", "4", "--eval-every", "3", *extra]


def _verbalizer(output):
    path = output.parent / "verbalizer.json"
    path.write_text(json.dumps({"negative": ["bad"], "positive": ["great"]}))
    return path


def test_train_then_evaluate_model_dir(tiny_bert_dir, files, tmp_path, capsys):
    train, dev = files
    output = tmp_path / "run"
    assert main(_train_args(tiny_bert_dir, train, dev, output)) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 6 and summary["train_examples"] == len(ROWS)
    assert (output / "config.json").is_file() and (output / "model" / "model.safetensors").is_file()
    assert not (output / "checkpoint").exists()  # the finished folder holds the classifier only
    assert main(["evaluate", "--model-dir", str(output), "--data", str(dev), "--output", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    texts = [t for t, _ in ROWS[:4]]
    expected = PromptClassifier.load(output).score(texts, [y for _, y in ROWS[:4]])
    assert report["accuracy"] == pytest.approx(expected)


def test_train_refuses_existing_output_and_resumes_unfinished(tiny_bert_dir, files, tmp_path, capsys, monkeypatch):
    train, dev = files
    output = tmp_path / "run"
    assert main(_train_args(tiny_bert_dir, train, dev, output)) == 0
    capsys.readouterr()
    assert main(_train_args(tiny_bert_dir, train, dev, output)) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(_train_args(tiny_bert_dir, train, dev, output, "--overwrite")) == 0
    uninterrupted = PromptClassifier.load(output).predict_proba([t for t, _ in ROWS])

    calls = {"n": 0}
    original = Trainer._average_gradients

    def dying(self):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self)

    interrupted = tmp_path / "interrupted"
    monkeypatch.setattr(Trainer, "_average_gradients", dying)
    assert main(_train_args(tiny_bert_dir, train, dev, interrupted)) == 130
    monkeypatch.undo()
    assert (interrupted / "checkpoint").is_dir() and not (interrupted / "config.json").exists()
    capsys.readouterr()
    assert main(_train_args(tiny_bert_dir, train, dev, interrupted)) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(_train_args(tiny_bert_dir, train, dev, interrupted, "--resume")) == 0
    resumed = PromptClassifier.load(interrupted).predict_proba([t for t, _ in ROWS])
    np.testing.assert_array_equal(resumed, uninterrupted)


def test_train_needs_data(tiny_bert_dir, tmp_path, capsys):
    assert main(["train", "--model", str(tiny_bert_dir), "--template", "sst2/it_was", "--output",
                 str(tmp_path / "x")]) == 2
    assert "--data" in capsys.readouterr().err


def test_train_on_lmbff_folder(tiny_bert_dir, tmp_path, capsys):
    try:
        folder = shared_data_root() / "lm-bff" / "k-shot" / "SST-2" / "16-13"
    except DataError:
        pytest.skip("LM-BFF data not found")
    output = tmp_path / "sst2"
    assert main(["train", "--model", str(tiny_bert_dir), "--template", "sst2/it_was", "--data", str(folder), "--output",
                 str(output), "--max-steps", "2", "--train-batch-size", "4"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["train_examples"] == 32 and summary["dev_accuracy"] is not None
