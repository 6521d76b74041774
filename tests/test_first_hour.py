"""What a new user's first hour needs of the command line (issue 33's remaining items), on tiny local models:

- ``train --k K --seed S`` trains on the K-per-class draw that ``sample --k K --seed S`` writes, and a class with
  fewer than K rows is a one-line error;
- ``train`` and ``search`` read their labels as ``evaluate`` does (``--label-map``; integer labels read as class
  indices with a warning; refused when no label is 0);
- ``-q`` is a global option, before or after the command, and silences training's progress lines;
- the baselines (ProbeClassifier, FineTuneClassifier) load a GGUF file through the conversion cache, as
  ``load_model`` does, instead of de-quantizing it on every load.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import promptlearn
import promptlearn.applications.search
from promptlearn import FineTuneClassifier, ProbeClassifier, PromptClassifier
from promptlearn.models import gguf_cache
from promptlearn.cli import main
from promptlearn.cli.parser import build_parser

POSITIVE = ["good movie .", "great film .", "a good story .", "great acting .", "good fun ."]
NEGATIVE = ["bad movie .", "a bad film .", "bad story .", "bad acting ."]
TEMPLATE = "{{ text }} it was [MASK] ."
VERBALIZER = json.dumps({"negative": ["bad"], "positive": ["great"]})
STEP_LINE = re.compile(r"step \d+/\d+  loss ")


def _write(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def _rows(positive: str = "positive", negative: str = "negative") -> list[tuple[str, str]]:
    """The texts interleaved, with these labels."""
    rows = []
    for i in range(max(len(POSITIVE), len(NEGATIVE))):
        rows += [(POSITIVE[i], positive)] if i < len(POSITIVE) else []
        rows += [(NEGATIVE[i], negative)] if i < len(NEGATIVE) else []
    return rows


@pytest.fixture
def fits(monkeypatch):
    """Every PromptClassifier.fit of the test: its X and y (then the real fit runs)."""
    seen: list[dict] = []
    original = PromptClassifier.fit

    def recording(self, X, y, **kwargs):
        seen.append({"X": list(X), "y": list(y), "dev": kwargs.get("dev")})
        return original(self, X, y, **kwargs)

    monkeypatch.setattr(PromptClassifier, "fit", recording)
    return seen


def _train(model: str, train: Path, output: Path, *extra: str) -> list[str]:
    return ["train", "--model", model, "--template", TEMPLATE, "--verbalizer", VERBALIZER, "--train", str(train),
            "--output", str(output), "--max-steps", "1", "--train-batch-size", "4", *extra]


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("promptlearn")]


# -- train --k ------------------------------------------------------------------------------------------------

def test_train_k_trains_on_the_rows_that_sample_draws(model, tmp_path, fits, capsys):
    train = _write(tmp_path / "train.csv", _rows())
    assert main(["sample", "--k", "3", "--seed", "7", "--input", str(train), "--output", str(tmp_path / "k3.csv")]) == 0
    with open(tmp_path / "k3.csv", newline="") as handle:
        drawn = [(row["text"], row["label"]) for row in csv.DictReader(handle)]
    assert len(drawn) == 6 and sorted({label for _, label in drawn}) == ["negative", "positive"]

    assert main(_train(model("bert"), train, tmp_path / "run", "--k", "3", "--seed", "7")) == 0
    (fit,) = fits
    assert list(zip([x["text"] for x in fit["X"]], fit["y"])) == drawn
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["train_examples"] == 6
    assert "training on 3 examples per class: 6 of 9 rows (seed 7)" in captured.err
    # another seed, other rows (9 rows hold C(5,3) * C(4,3) = 40 draws)
    assert main(_train(model("bert"), train, tmp_path / "other", "--k", "3", "--seed", "8")) == 0
    assert [x["text"] for x in fits[1]["X"]] != [x["text"] for x in fit["X"]]


def test_train_k_larger_than_a_class_is_a_one_line_error(model, tmp_path, fits, capsys):
    train = _write(tmp_path / "train.csv", _rows())
    assert main(_train(model("bert"), train, tmp_path / "run", "--k", "5")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("promptlearn: error: "), err
    assert f"{train}: fewer than --k 5 rows of class(es) 'negative': 4 (label column 'label'); lower --k" in err
    assert not fits and not (tmp_path / "run").exists()


# -- labels of train and search -------------------------------------------------------------------------------

def test_train_reads_integer_labels_as_evaluate_does(model, tmp_path, fits, capsys, caplog):
    caplog.set_level(logging.WARNING)
    zero_one = _write(tmp_path / "01.csv", _rows("1", "0"))
    assert main(_train(model("bert"), zero_one, tmp_path / "a")) == 0
    assert fits[-1]["y"] == [y for _, y in _rows()]  # 0 -> negative, 1 -> positive: the classes' order ...
    assert [w for w in _warnings(caplog)
            if w == f"{zero_one}: integer labels read as class indices in the classes' order: 0 -> negative, "
                    "1 -> positive (pass --label-map RAW=CLASS,... if they mean otherwise)"]  # ... said aloud

    caplog.clear()
    assert main(_train(model("bert"), zero_one, tmp_path / "b", "--label-map", "0=positive,1=negative")) == 0
    assert fits[-1]["y"] == [y for _, y in _rows("negative", "positive")]  # the data's 0 means positive
    assert not [w for w in _warnings(caplog) if "class indices" in w]

    one_two = _write(tmp_path / "12.csv", _rows("2", "1"))
    dev = _write(tmp_path / "dev.csv", _rows("positive", "negative")[:4])
    capsys.readouterr()
    assert main(_train(model("bert"), one_two, tmp_path / "c", "--dev", str(dev))) == 2  # they may count from 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no label is 0" in err and "--label-map 1=negative,2=positive" in err, err
    assert len(fits) == 2 and not (tmp_path / "c").exists()
    assert main(_train(model("bert"), one_two, tmp_path / "c", "--dev", str(dev), "--label-map", "1=negative",
                       "--label-map", "2=positive")) == 0
    assert fits[-1]["y"] == [y for _, y in _rows()] and fits[-1]["dev"][1] == [y for _, y in _rows()[:4]]
    assert main(_train(model("bert"), one_two, tmp_path / "d", "--label-map", "1=negative,2=great")) == 2
    assert "--label-map names ['great'], which are not classes" in capsys.readouterr().err


def test_train_ensemble_reads_labels_through_the_label_map(model, tmp_path, fits):
    zero_one = _write(tmp_path / "01.csv", _rows("0", "1"))
    assert main(_train(model("bert"), zero_one, tmp_path / "pet", "--template", "{{ text }} . all in all [MASK] .",
                       "--label-map", "0=positive,1=negative")) == 0
    assert len(fits) == 2 and all(fit["y"] == [y for _, y in _rows()] for fit in fits)


@pytest.fixture
def searches(monkeypatch):
    """`promptlearn search` with the search itself replaced: the labels it was given."""
    seen: list[dict] = []

    class Recorder:
        def __init__(self, **options):
            self.options = options

        def fit(self, X, y, *, dev):
            seen.append({"y": list(y), "dev": list(dev[1]), "verbalizer": self.options["verbalizer"]})
            self.result_ = SimpleNamespace(candidates=[], seconds=0.0, notes=[], best=lambda n: [])
            return self

        def write(self, out, **options):
            return []

    monkeypatch.setattr(promptlearn.applications.search, "PromptSearch", Recorder)
    return seen


def test_search_reads_labels_as_evaluate_and_train_do(tmp_path, searches, capsys, caplog):
    caplog.set_level(logging.WARNING)
    zero_one = _write(tmp_path / "01.csv", _rows("1", "0"))
    base = ["search", "--train", str(zero_one), "--dev", str(zero_one), "--out", str(tmp_path / "out")]
    # without a verbalizer the labels are the classes searched for ...
    assert main(base) == 0 and searches[-1]["y"] == [y for _, y in _rows("1", "0")]
    # ... or --label-map's names
    assert main(base + ["--label-map", "0=negative,1=positive"]) == 0
    assert searches[-1]["y"] == searches[-1]["dev"] == [y for _, y in _rows()]
    # with one, integer labels are its class indices, said aloud, or mapped
    assert main(base + ["--verbalizer", VERBALIZER]) == 0 and searches[-1]["y"] == [y for _, y in _rows()]
    assert [w for w in _warnings(caplog) if "integer labels read as class indices" in w and "0 -> negative" in w]
    assert main(base + ["--verbalizer", VERBALIZER, "--label-map", "0=positive,1=negative"]) == 0
    assert searches[-1]["y"] == [y for _, y in _rows("negative", "positive")]
    one_two = _write(tmp_path / "12.csv", _rows("2", "1"))
    capsys.readouterr()
    assert main(["search", "--train", str(one_two), "--dev", str(one_two), "--out", str(tmp_path / "out"),
                 "--verbalizer", VERBALIZER]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--label-map 1=negative,2=positive" in err, err
    assert main(base + ["--label-map", "0=negative"]) == 2
    assert "label(s) 1 are neither in --label-map nor class names" in capsys.readouterr().err
    assert len(searches) == 4


# -- -q, before or after the command ------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["classify", "evaluate", "train", "search", "adapt", "sample", "templates"])
def test_quiet_is_global(command):
    parser = build_parser()
    required = {"classify": ["--template", "t"], "evaluate": ["--data", "d"],
                "train": ["--template", "t", "--output", "o"],
                "search": ["--out", "o"], "adapt": ["--model", "m", "--texts", "t", "--output", "o"],
                "sample": ["--input", "i", "--output", "o", "--k", "1"], "templates": []}[command]
    assert parser.parse_args(["-q", command, *required]).quiet
    assert parser.parse_args([command, *required, "--quiet"]).quiet
    assert not parser.parse_args([command, *required]).quiet


def test_quiet_before_the_command_silences_training(model, tmp_path, capsys):
    train = _write(tmp_path / "train.csv", _rows())
    assert main(_train(model("bert"), train, tmp_path / "talks", "--max-steps", "2", "--log-every", "1",
                       "--k", "3")) == 0
    err = capsys.readouterr().err
    assert len(STEP_LINE.findall(err)) == 2 and "training on 3 examples per class" in err, err
    assert main(["-q", *_train(model("bert"), train, tmp_path / "quiet", "--max-steps", "2", "--log-every", "1",
                               "--k", "3")]) == 0
    captured = capsys.readouterr()
    assert not STEP_LINE.search(captured.err) and "examples per class" not in captured.err, captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["steps"] == 2


# -- commands without a model start fast --------------------------------------------------------------------------

def test_templates_and_sample_import_no_torch(tmp_path):
    """`templates` and `sample` load no model: neither torch nor transformers is imported (~3.5 s on 2 cores)."""
    train = _write(tmp_path / "train.csv", _rows())
    sample = ["sample", "--k", "2", "--input", str(train), "--output", str(tmp_path / "k2.csv")]
    code = ("import sys; from promptlearn.cli import main; "
            "assert main(['templates', 'sst2/review']) == 0; "
            f"assert main({sample!r}) == 0; "
            "print(sorted(m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules))")
    root = str(Path(promptlearn.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "[]", run.stdout
    assert (tmp_path / "k2.csv").is_file() and "sampled 4 of 9 rows" in run.stderr


# -- baselines on a GGUF file: the conversion cache ----------------------------------------------------------------

def _tiny_gguf(path: Path) -> Path:
    pytest.importorskip("gguf")
    try:  # tests/ as a package ... or as a plain rootdir-inserted folder (see conftest.py)
        from .test_gguf_cache import write_tiny_gguf  # type: ignore[import-not-found]
    except ImportError:
        from test_gguf_cache import write_tiny_gguf  # type: ignore[no-redef]
    return write_tiny_gguf(path)


def test_baselines_load_a_gguf_through_the_conversion_cache(tmp_path, monkeypatch):
    gguf_file = _tiny_gguf(tmp_path / "tiny-llama.Q8_0.gguf")
    monkeypatch.setenv("PROMPTLEARN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PROMPTLEARN_GGUF_CACHE", raising=False)
    conversions = []
    convert = gguf_cache.convert
    monkeypatch.setattr(gguf_cache, "convert", lambda source, out: (conversions.append(source), convert(source, out)))
    texts, labels = POSITIVE[:4] + NEGATIVE, ["positive"] * 4 + ["negative"] * 4

    probe = ProbeClassifier(str(gguf_file), show_progress=False).fit(texts, labels)
    features = probe.transform(texts)
    assert conversions == [gguf_file]  # converted once, into the cache ...
    (folder,) = [p for p in (tmp_path / "cache" / "gguf").iterdir() if p.is_dir()]
    assert gguf_cache.is_complete(folder)
    again = ProbeClassifier(str(gguf_file), show_progress=False).fit(texts, labels)
    finetuned = FineTuneClassifier(str(gguf_file), max_steps=1, train_batch_size=4, show_progress=False).fit(
        texts, labels)
    assert conversions == [gguf_file]  # ... and read from there afterwards
    assert finetuned.predict_proba(texts).shape == (8, 2)

    monkeypatch.setenv("PROMPTLEARN_GGUF_CACHE", "0")  # the same model as a direct load of the GGUF file
    direct = ProbeClassifier(str(gguf_file), show_progress=False).fit(texts, labels)
    np.testing.assert_allclose(again.transform(texts), features, rtol=0, atol=0)
    np.testing.assert_allclose(direct.transform(texts), features, rtol=0, atol=1e-5)
    assert conversions == [gguf_file]
