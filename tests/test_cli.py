"""The ``promptlearn`` command: help, ``classify``, ``evaluate``, ``templates`` and its errors.

Everything runs ``promptlearn.cli.main`` in-process on the tiny local models (see conftest.py) and
reads stdout/stderr with ``capsys``; one test runs the installed console script in a subprocess.
User errors must exit with status 2 and print one line ``promptlearn: error: ...`` (no traceback).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from promptlearn import PromptClassifier, PromptlearnError, Verbalizer, __version__
from promptlearn.cli import default_verbalizer, main
from promptlearn.io.sampling import subsample
from promptlearn.io.tasks import TASK_LABELS, load_lmbff
from promptlearn.core.template import list_shipped as shipped_templates

REPO = Path(__file__).resolve().parent.parent
HEADER = ["label", "p(negative)", "p(positive)", "text"]
TEXTS = ["a good movie , the actors were great .", "bad film", "i think the story was boring and slow .", "fine"]
# (text, gold label) pairs for evaluate; with tiny GPT-2 + sst2/review + sst2_review the predictions are mixed
LABELLED = [
    ("a good movie , the actors were great .", "positive"),
    ("bad film", "negative"),
    ("i think the story was boring and slow .", "negative"),
    ("fine", "positive"),
    ("awful acting", "negative"),
    ("great fun", "positive"),
    ("the plot was bad", "negative"),
    ("good", "positive"),
    ("a slow , boring story", "negative"),
    ("the actors were good", "positive"),
]
SST2_REVIEW = {"negative": ["negative"], "positive": ["positive"]}


def _lmbff_sst2() -> Path | None:
    roots = [Path(os.environ["PROMPTLEARN_DATA"])] if os.environ.get("PROMPTLEARN_DATA") else []
    roots += [REPO.parent / "shared" / "data", Path("/work/shared/data")]
    for root in roots:
        folder = root / "lm-bff" / "k-shot" / "SST-2" / "16-13"
        if (folder / "dev.tsv").is_file():
            return folder
    return None


# -- helpers -----------------------------------------------------------------------------------------------

def run(capsys, *argv) -> tuple[int, str, str]:
    """main(argv) -> (status, stdout, stderr); an escaping exception is a test failure, not an error."""
    capsys.readouterr()  # drop what building a session model printed
    try:
        code = main([str(a) for a in argv])
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - the CLI must turn user errors into one line
        pytest.fail(f"main() raised {type(exc).__name__}: {exc} -- a user would see a traceback, "
                    f"not 'promptlearn: error: ...' with status 2")
    out, err = capsys.readouterr()
    return code, out, err


def run_exit(capsys, *argv) -> tuple[int, str, str]:
    """For --help / --version / argparse errors, which leave main() through SystemExit."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def assert_user_error(result: tuple[int, str, str], *fragments: str) -> str:
    code, out, err = result
    assert code == 2, f"exit status {code}, expected 2; stdout:\n{out}\nstderr:\n{err}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    assert lines[0].startswith("promptlearn: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert out == ""
    return lines[0]


def read_tsv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t"))


def header_of(text: str, delimiter: str = "\t") -> list[str]:
    return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def assert_probabilities(rows: list[dict], classes=("negative", "positive")) -> None:
    for row in rows:
        probs = [float(row[f"p({c})"]) for c in classes]
        assert all(0.0 <= p <= 1.0 for p in probs)
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert row["label"] == classes[int(np.argmax(probs))]


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def classify(model):
    """The classify command line with the tiny BERT, sst2/it_was and the sst2 verbalizer."""
    return ["classify", "--model", model("bert"), "--template", "sst2/it_was", "--verbalizer", "sst2"]


@pytest.fixture
def labelled_csv(tmp_path):
    return write_csv(tmp_path / "labelled.csv", ["review", "label"], [list(pair) for pair in LABELLED])


# -- help, version, entry point ----------------------------------------------------------------------------

def test_top_level_help(capsys):
    code, out, err = run_exit(capsys, "--help")
    assert code == 0
    for word in ("classify", "evaluate", "templates", "--version", "--verbose"):
        assert word in out


@pytest.mark.parametrize("command, options", [
    ("classify", ["--model", "--template", "--verbalizer", "--text", "--input", "--output", "--column", "--format",
                  "--calibrate", "--multi-token", "--after-mask", "--aggregation", "--batch-size", "--max-length",
                  "--device", "--shorten", "sst2/it_was"]),
    ("evaluate", ["--model", "--template", "--verbalizer", "--data", "--split", "--label-column", "--limit", "--seed",
                  "--output", "--column", "--format", "--calibrate", "--batch-size"]),
    ("templates", ["shipped templates"]),
])
def test_subcommand_help(capsys, command, options):
    code, out, err = run_exit(capsys, command, "--help")
    assert code == 0
    for option in options:
        assert option in out, f"{command} --help does not mention {option}"


def test_version(capsys):
    code, out, err = run_exit(capsys, "--version")
    assert code == 0
    assert out.strip() == f"promptlearn {__version__}"


def test_console_script_entry_point():
    script = Path(sys.executable).parent / ("promptlearn.exe" if os.name == "nt" else "promptlearn")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "promptlearn.cli"]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run(command + ["--help"], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "usage: promptlearn" in done.stdout and "classify" in done.stdout
    done = subprocess.run(command + ["classify"], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2 and "--template" in done.stderr  # argparse: the required option


# -- templates ------------------------------------------------------------------------------------------------

def test_templates_lists_shipped(capsys):
    code, out, err = run(capsys, "templates")
    assert code == 0
    lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert "sst2/it_was" in lines["templates"].split()
    assert "sst2/review" in lines["templates"].split()
    assert "sst2" in lines["verbalizers"].split() and "sst2_review" in lines["verbalizers"].split()


# -- default verbalizer rule --------------------------------------------------------------------------------------

def test_default_verbalizer_rule():
    assert default_verbalizer("sst2/review") == "sst2_review"
    assert default_verbalizer("sst2/it_was") == "sst2"
    assert default_verbalizer("sst5/review") == "sst5"  # no sst5_review.json: falls back to the task
    with pytest.raises(PromptlearnError, match="--verbalizer is required"):
        default_verbalizer("{{ text }} It was [MASK].")


def _readme_verbalizers() -> dict[str, list[str]]:
    """templates/README.md table: template task/name -> the verbalizer files listed for it."""
    table = {}
    for line in (REPO / "templates" / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)]
        if len(cells) < 7 or not cells[2].startswith("`"):
            continue
        name = cells[2].strip("`").removesuffix(".j2")
        table[name] = [v.strip().strip("`").removesuffix(".json") for v in cells[5].split(",")]
    return table


def test_every_shipped_template_has_its_default_verbalizer():
    readme = _readme_verbalizers()
    for name in shipped_templates():
        verbalizer = Verbalizer.load(default_verbalizer(name))
        task = name.split("/")[0]
        assert verbalizer.classes == TASK_LABELS[task], name  # class order = the data's label indices
        assert name in readme, f"{name} is missing from templates/README.md"
        assert default_verbalizer(name) == readme[name][0], name


# -- classify ---------------------------------------------------------------------------------------------------

def test_classify_texts_prints_tsv(capsys, classify, model):
    code, out, err = run(capsys, *classify, "--text", TEXTS[0], "--text", TEXTS[1])
    assert code == 0
    assert header_of(out) == HEADER
    rows = read_tsv(out)
    assert [row["text"] for row in rows] == TEXTS[:2]
    assert_probabilities(rows)
    expected = PromptClassifier(model=model("bert"), template="sst2/it_was", verbalizer="sst2").predict_proba(TEXTS[:2])
    got = np.array([[float(r["p(negative)"]), float(r["p(positive)"])] for r in rows])
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_classify_tsv_quotes_tabs_and_newlines(capsys, classify):
    texts = ["a\tgood movie", "bad\nfilm", 'a "quoted" word']
    code, out, err = run(capsys, *classify, *[a for t in texts for a in ("--text", t)])
    assert code == 0
    assert [row["text"] for row in read_tsv(out)] == texts


@pytest.mark.parametrize("template, default", [("sst2/review", "sst2_review"), ("sst2/it_was", "sst2")])
def test_classify_default_verbalizer(capsys, model, template, default):
    base = ["classify", "--model", model("gpt2"), "--template", template, "--text", TEXTS[0], "--text", TEXTS[1]]
    code, implicit, _ = run(capsys, *base)
    assert code == 0
    code, explicit, _ = run(capsys, *base, "--verbalizer", default)
    assert code == 0
    assert implicit == explicit
    other = "sst2" if default == "sst2_review" else "sst2_review"
    code, different, _ = run(capsys, *base, "--verbalizer", other)
    assert different != implicit


def test_classify_inline_template(capsys, model):
    template = "Review: {{ text }} Overall it was [MASK]."
    code, out, err = run(capsys, "classify", "--model", model("bert"), "--template", template, "--verbalizer", "sst2",
                         "--text", TEXTS[0], "--text", TEXTS[2])
    assert code == 0
    rows = read_tsv(out)
    assert header_of(out) == HEADER and len(rows) == 2
    expected = PromptClassifier(model=model("bert"), template=template, verbalizer="sst2").predict_proba([TEXTS[0], TEXTS[2]])
    np.testing.assert_allclose([[float(r["p(negative)"]), float(r["p(positive)"])] for r in rows], expected, atol=2e-6)


def _write_reviews(path: Path, fmt: str) -> Path:
    records = [{"id": str(i), "review": text} for i, text in enumerate(TEXTS)]
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    else:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, ["id", "review"], delimiter="," if fmt == "csv" else "\t")
            writer.writeheader()
            writer.writerows(records)
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_classify_input_file_with_column_mapping(capsys, classify, tmp_path, fmt):
    path = _write_reviews(tmp_path / f"reviews.{fmt}", fmt)
    code, from_file, err = run(capsys, *classify, "--input", path, "--column", "text=review")
    assert code == 0
    assert header_of(from_file) == HEADER[:3] + ["id", "review"]  # every input column, under its own name
    code, from_text, err = run(capsys, *classify, *[a for t in TEXTS for a in ("--text", t)])
    assert [{k: r[k] for k in HEADER[:3]} | {"text": r["review"]} for r in read_tsv(from_file)] == read_tsv(from_text)
    assert [r["id"] for r in read_tsv(from_file)] == [str(i) for i in range(len(TEXTS))]


def test_classify_input_file_keeps_other_columns(capsys, classify, tmp_path):
    path = write_csv(tmp_path / "in.csv", ["id", "text"], [[i, t] for i, t in enumerate(TEXTS)])
    code, out, err = run(capsys, *classify, "--input", path)
    assert code == 0
    rows = read_tsv(out)
    assert header_of(out)[:3] == HEADER[:3] and set(header_of(out)) == set(HEADER) | {"id"}
    assert [(r["id"], r["text"]) for r in rows] == [(str(i), t) for i, t in enumerate(TEXTS)]
    assert_probabilities(rows)


def test_classify_stdin_jsonl(capsys, classify, monkeypatch):
    lines = "".join(json.dumps({"review": t}) + "\n" for t in TEXTS[:3])
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    code, out, err = run(capsys, *classify, "--input", "-", "--format", "jsonl", "--column", "text=review")
    assert code == 0
    rows = read_tsv(out)
    assert header_of(out) == HEADER[:3] + ["review"] and [r["review"] for r in rows] == TEXTS[:3]
    assert_probabilities(rows)
    # without --format the format is sniffed (here CSV)
    monkeypatch.setattr(sys, "stdin", io.StringIO("text\nbad film\nfine\n"))
    code, sniffed, err = run(capsys, *classify, "--input", "-")
    assert code == 0 and [r["text"] for r in read_tsv(sniffed)] == ["bad film", "fine"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_classify_output_file(capsys, classify, tmp_path, suffix):
    folder = tmp_path / "predictions"  # created by the command
    target = folder / f"out{suffix}"
    for _ in range(2):  # the second run overwrites the first
        code, out, err = run(capsys, *classify, "--text", TEXTS[0], "--text", TEXTS[1], "--output", target)
        assert code == 0
        assert out == ""
        assert "wrote 2 predictions" in err
    assert sorted(p.name for p in folder.iterdir()) == [target.name]  # no temp file left
    text = target.read_text(encoding="utf-8")
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
        assert all(list(r) == HEADER for r in rows)
        assert all(isinstance(r["p(positive)"], float) for r in rows)
    else:
        delimiter = "," if suffix == ".csv" else "\t"
        assert header_of(text, delimiter) == HEADER
        rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))
    assert [r["text"] for r in rows] == TEXTS[:2]
    assert_probabilities(rows)


@pytest.mark.parametrize("name, options", [
    ("bert", ["--calibrate"]),
    ("bert", ["--multi-token", "left_to_right"]),  # sst2's "terrible" is two WordPieces in the tiny BERT
    ("roberta", ["--aggregation", "max", "--batch-size", "1"]),
    ("gpt2", ["--after-mask", "score"]),
    ("llama", ["--after-mask", "score", "--calibrate", "--max-length", "32"]),
])
def test_classify_scoring_options_keep_output_shape(capsys, model, name, options):
    argv = ["classify", "--model", model(name), "--template", "sst2/it_was", "--verbalizer", "sst2",
            *[a for t in TEXTS for a in ("--text", t)]]
    code, out, err = run(capsys, *argv, *options)
    assert code == 0, err
    rows = read_tsv(out)
    assert header_of(out) == HEADER
    assert [r["text"] for r in rows] == TEXTS
    assert_probabilities(rows)


def test_classify_batch_size_does_not_change_results(capsys, classify):
    argv = [*classify, *[a for t in TEXTS for a in ("--text", t)]]
    _, batched, _ = run(capsys, *argv)
    _, single, _ = run(capsys, *argv, "--batch-size", "1")
    as_array = lambda out: np.array([[float(r["p(negative)"]), float(r["p(positive)"])] for r in read_tsv(out)])  # noqa: E731
    np.testing.assert_allclose(as_array(single), as_array(batched), atol=1e-5)


# -- evaluate --------------------------------------------------------------------------------------------------

def _expected_report(model_dir: str, examples, labels, template="sst2/review", verbalizer="sst2_review") -> dict:
    clf = PromptClassifier(model=model_dir, template=template, verbalizer=verbalizer)
    classes = list(clf.classes_)
    names = [classes[int(y)] if str(y).isdigit() else y for y in labels]
    predicted = list(clf.predict(examples))
    return {
        "predicted": predicted,
        "accuracy": accuracy_score(names, predicted),
        "macro_f1": f1_score(names, predicted, labels=classes, average="macro", zero_division=0),
        "confusion_matrix": confusion_matrix(names, predicted, labels=classes).tolist(),
    }


@pytest.mark.parametrize("labels_as", ["names", "indices"])
def test_evaluate_matches_sklearn(capsys, model, tmp_path, labels_as):
    classes = ["negative", "positive"]
    labels = [y if labels_as == "names" else str(classes.index(y)) for _, y in LABELLED]
    data = write_csv(tmp_path / "data.csv", ["text", "label"], [[t, y] for (t, _), y in zip(LABELLED, labels)])
    report_path = tmp_path / "out" / "report.json"
    # no --verbalizer: sst2/review defaults to the shipped sst2_review verbalizer
    code, out, err = run(capsys, "evaluate", "--model", model("gpt2"), "--template", "sst2/review", "--data", data,
                         "--output", report_path)
    assert code == 0, err
    expected = _expected_report(model("gpt2"), [t for t, _ in LABELLED], labels)
    assert len(set(expected["predicted"])) == 2, "the test data should give both predictions"

    assert f"examples: {len(LABELLED)}\n" in out and "subset" not in out
    assert f"accuracy: {100 * expected['accuracy']:.2f} %" in out
    assert f"macro-F1: {100 * expected['macro_f1']:.2f} %" in out
    assert "confusion matrix" in out
    matrix_rows = out.split("confusion matrix", 1)[1].splitlines()[2:4]
    assert [[int(v) for v in row.split()[1:]] for row in matrix_rows] == expected["confusion_matrix"]

    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["accuracy"] == pytest.approx(expected["accuracy"])
    assert report["macro_f1"] == pytest.approx(expected["macro_f1"])
    assert report["confusion_matrix"] == expected["confusion_matrix"]
    assert set(report["per_class"]) == set(classes)
    for c in classes:
        assert set(report["per_class"][c]) == {"precision", "recall", "f1", "support"}
    assert sum(row["support"] for row in report["per_class"].values()) == len(LABELLED)
    assert report["n_examples"] == len(LABELLED) and report["subset_seed"] is None
    assert report["verbalizer"] == SST2_REVIEW
    assert sorted(p.name for p in report_path.parent.iterdir()) == ["report.json"]


def test_evaluate_limit_subset(capsys, model, tmp_path, labelled_csv):
    report_path = tmp_path / "report.json"
    code, out, err = run(capsys, "evaluate", "--model", model("gpt2"), "--template", "sst2/review",
                         "--verbalizer", "sst2_review", "--data", labelled_csv, "--column", "text=review",
                         "--limit", "5", "--seed", "0", "--output", report_path)
    assert code == 0, err
    assert f"examples: 5 (subset of {len(LABELLED)}, seed 0)" in out
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["n_examples"] == 5 and report["n_available"] == len(LABELLED) and report["subset_seed"] == 0
    assert sum(map(sum, report["confusion_matrix"])) == 5
    examples, labels = subsample([{"text": t} for t, _ in LABELLED], [y for _, y in LABELLED], 5, 0)
    expected = _expected_report(model("gpt2"), examples, labels)
    assert report["accuracy"] == pytest.approx(expected["accuracy"])
    assert report["confusion_matrix"] == expected["confusion_matrix"]


def test_evaluate_stdin_and_label_column(capsys, model, monkeypatch):
    rows = "".join(json.dumps({"review": t, "stars": y}) + "\n" for t, y in LABELLED[:4])
    monkeypatch.setattr(sys, "stdin", io.StringIO(rows))
    code, out, err = run(capsys, "evaluate", "--model", model("bert"), "--template", "sst2/it_was", "--data", "-",
                         "--format", "jsonl", "--column", "text=review", "--label-column", "stars")
    assert code == 0, err
    assert "examples: 4\n" in out and "accuracy:" in out and "macro-F1:" in out


def test_evaluate_lmbff_folder(capsys, model, tmp_path):
    folder = _lmbff_sst2()
    if folder is None:
        pytest.skip("LM-BFF SST-2 16-13 folder not found (shared data)")
    report_path = tmp_path / "report.json"
    code, out, err = run(capsys, "evaluate", "--model", model("bert"), "--template", "sst2/it_was",
                         "--data", folder, "--split", "dev", "--output", report_path)
    assert code == 0, err
    examples, labels = load_lmbff(folder, "dev")
    assert len(examples) == 32
    assert "examples: 32\n" in out and "accuracy:" in out and "confusion matrix" in out
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["split"] == "dev" and report["n_examples"] == 32
    assert [row["support"] for row in report["per_class"].values()] == [labels.count("negative"),
                                                                        labels.count("positive")]
    expected = _expected_report(model("bert"), examples, labels, template="sst2/it_was", verbalizer="sst2")
    assert report["accuracy"] == pytest.approx(expected["accuracy"])


# -- user errors: status 2, one line, no traceback --------------------------------------------------------------

def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _bert_classify(m, *rest):
    return ["classify", "--model", m("bert"), *rest]


def _bert_evaluate(m, tmp, *rest, data_rows=(("bad film", "negative"), ("good", "positive"))):
    data = write_csv(tmp / "data.csv", ["text", "label"], [list(r) for r in data_rows])
    return ["evaluate", "--model", m("bert"), "--template", "sst2/it_was", "--data", str(data), *rest]


SST2 = ("--template", "sst2/it_was", "--verbalizer", "sst2")
ERROR_CASES = {
    "missing template file": (lambda m, t: _bert_classify(m, "--template", str(t / "nope.j2"), "--verbalizer", "sst2",
                                                             "--text", "x"),
                              "template file not found"),
    "template file without mask": (lambda m, t: _bert_classify(m, "--template", _file(t, "t.j2", "{{ text }} It was good."),
                                                                "--verbalizer", "sst2", "--text", "x"), "[MASK]"),
    "inline template without mask": (lambda m, t: _bert_classify(m, "--template", "{{ text }} It was good.",
                                                                  "--verbalizer", "sst2", "--text", "x"), "[MASK]"),
    "unknown shipped template": (lambda m, t: _bert_classify(m, "--template", "sst2/nosuch", "--text", "x"),
                                 "no shipped template"),
    "inline template needs a verbalizer": (lambda m, t: _bert_classify(m, "--template", "{{ text }} It was [MASK].",
                                                                        "--text", "x"), "--verbalizer is required"),
    "unknown shipped verbalizer": (lambda m, t: _bert_classify(m, "--template", "sst2/it_was", "--verbalizer", "nosuch",
                                                                "--text", "x"), "no shipped verbalizer"),
    "broken verbalizer json": (lambda m, t: _bert_classify(m, "--template", "sst2/it_was", "--verbalizer",
                                                            _file(t, "v.json", '{"negative": ["bad"],\n'), "--text", "x"),
                               "invalid JSON"),
    "missing verbalizer file": (lambda m, t: _bert_classify(m, "--template", "sst2/it_was", "--verbalizer",
                                                             str(t / "nope.json"), "--text", "x"), "not found"),
    "nonexistent model folder": (lambda m, t: ["classify", "--model", str(t / "no_model"), *SST2, "--text", "x"],
                                 "model folder not found"),
    "empty model folder": (lambda m, t: ["classify", "--model", str(t), *SST2, "--text", "x"], "cannot load model"),
    "encoder without MLM head": (lambda m, t: ["classify", "--model", m("bert_encoder"), *SST2, "--text", "x"],
                                 "masked-LM head"),
    "sequence classifier": (lambda m, t: ["classify", "--model", m("seqcls"), *SST2, "--text", "x"],
                            "not a masked or causal language model"),
    "text and input": (lambda m, t: _bert_classify(m, *SST2, "--text", "x", "--input", _file(t, "in.csv", "text\nx\n")),
                       "--text"),
    "neither text nor input": (lambda m, t: _bert_classify(m, *SST2), "--text"),
    "text with two-field template": (lambda m, t: _bert_classify(m, "--template", "rte/lmbff", "--text", "x"),
                                     "['hypothesis', 'premise']"),
    "file lacks the template's column": (lambda m, t: _bert_classify(m, *SST2, "--input",
                                                                      _file(t, "in.csv", "review\nbad film\n")),
                                         "--column text="),
    "column maps to a missing column": (lambda m, t: _bert_classify(m, *SST2, "--column", "text=nope", "--input",
                                                                     _file(t, "in.csv", "review\nbad film\n")),
                                        "no column(s) ['nope']"),
    "column without =": (lambda m, t: _bert_classify(m, *SST2, "--column", "text", "--input",
                                                      _file(t, "in.csv", "text\nbad film\n")), "FIELD=COLUMN"),
    "input file does not exist": (lambda m, t: _bert_classify(m, *SST2, "--input", str(t / "nope.csv")),
                                  "data file not found"),
    "input with unknown extension": (lambda m, t: _bert_classify(m, *SST2, "--input", _file(t, "in.txt", "text\nx\n")),
                                     "cannot tell the format"),
    "output with a bad extension": (lambda m, t: _bert_classify(m, *SST2, "--text", "x", "--output", str(t / "out.txt")),
                                    ".csv, .tsv or .jsonl"),
    "unknown shortenable field": (lambda m, t: _bert_classify(m, *SST2, "--text", "x", "--shorten", "nope"),
                                  "shortenable"),
    "max length too small": (lambda m, t: _bert_classify(m, *SST2, "--text", "x", "--max-length", "2"),
                             "more than the 2 available"),
    "evaluate unknown label": (lambda m, t: _bert_evaluate(m, t, "--verbalizer", "sst2",
                                                           data_rows=(("bad", "negative"), ("meh", "neutral"))),
                               "'neutral'"),
    "evaluate label index out of range": (lambda m, t: _bert_evaluate(m, t, "--verbalizer", "sst2",
                                                                      data_rows=(("bad", "0"), ("meh", "2"))), "'2'"),
    "evaluate data without labels": (lambda m, t: ["evaluate", "--model", m("bert"), *SST2, "--data",
                                                   _file(t, "d.csv", "text\nbad film\n")],
                                     "no label column 'label'"),
    "evaluate missing label column": (lambda m, t: _bert_evaluate(m, t, "--label-column", "stars"), "'stars'"),
    "evaluate column without =": (lambda m, t: _bert_evaluate(m, t, "--column", "review"), "FIELD=COLUMN"),
    "evaluate data file does not exist": (lambda m, t: ["evaluate", "--model", m("bert"), *SST2, "--data",
                                                        str(t / "nope.csv")], "not found"),
    "evaluate unknown data name": (lambda m, t: ["evaluate", "--model", m("bert"), *SST2, "--data", "nosuchtask"],
                                   "neither an existing file"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_user_error_is_one_line_with_status_2(capsys, model, tmp_path, case):
    build, fragment = ERROR_CASES[case]
    argv = build(model, tmp_path)
    before = set(tmp_path.iterdir())
    assert_user_error(run(capsys, *argv), fragment)
    assert set(tmp_path.iterdir()) == before  # nothing written (e.g. no output file for a bad extension)


@pytest.mark.parametrize("argv, fragment", [
    (["classify", *SST2, "--text", "x", "--batch-size", "0"], "--batch-size"),
    (["classify", *SST2, "--text", "x", "--batch-size", "two"], "--batch-size"),
    (["classify", *SST2, "--text", "x", "--max-length", "0"], "--max-length"),
    (["classify", *SST2, "--text", "x", "--multi-token", "bogus"], "--multi-token"),
    (["classify", *SST2, "--text", "x", "--after-mask", "bogus"], "--after-mask"),
    (["classify", *SST2, "--text", "x", "--format", "xml"], "--format"),
    (["classify", "--text", "x"], "--template"),
    (["evaluate", *SST2], "--data"),
    (["evaluate", *SST2, "--data", "x.csv", "--limit", "0"], "--limit"),
    (["frobnicate"], "invalid choice"),
    ([], "COMMAND"),
])
def test_argparse_errors_exit_2(capsys, argv, fragment):
    code, out, err = run_exit(capsys, *argv)
    assert code == 2
    assert "Traceback" not in err
    assert "promptlearn" in err and "error:" in err and fragment in err


# -- library bugs: these tests fail until the bug is fixed ------------------------------------------------------

def test_bad_device_is_a_one_line_error(capsys, classify):
    """BUG: --device bogus escapes as torch's RuntimeError (a traceback, status 1)."""
    assert_user_error(run(capsys, *classify, "--text", "x", "--device", "bogus"), "bogus")


@pytest.mark.parametrize("command", ["classify", "evaluate"])
def test_unusable_output_path_is_a_one_line_error(capsys, model, tmp_path, command):
    """BUG: an --output whose parent folder is a file escapes as FileExistsError (a traceback)."""
    (tmp_path / "afile").write_text("", encoding="utf-8")
    output = tmp_path / "afile" / ("out.csv" if command == "classify" else "report.json")
    if command == "classify":
        argv = ["classify", "--model", model("bert"), *SST2, "--text", "x", "--output", output]
    else:
        argv = _bert_evaluate(model, tmp_path, "--output", output)
    assert_user_error(run(capsys, *argv), "afile")


def test_output_onto_a_folder_leaves_no_temp_file(capsys, classify, tmp_path):
    """BUG: --output naming an existing folder escapes as IsADirectoryError and leaves .out.csv.tmp-PID behind."""
    (tmp_path / "out.csv").mkdir()
    capsys.readouterr()
    try:
        code = main([*classify, "--text", "x", "--output", str(tmp_path / "out.csv")])
    except Exception as exc:  # noqa: BLE001 - reported below, after the leftover check
        code = f"{type(exc).__name__}: {exc}"
    out, err = capsys.readouterr()
    assert [p.name for p in tmp_path.iterdir() if p.name != "out.csv"] == []
    assert_user_error((code, out, err), "out.csv")


def test_evaluate_empty_data_is_a_one_line_error(capsys, model, tmp_path):
    """BUG: a labelled file with a header but no rows escapes as sklearn's ValueError (a traceback)."""
    data = _file(tmp_path, "empty.csv", "text,label\n")
    assert_user_error(run(capsys, "evaluate", "--model", model("bert"), *SST2, "--data", data), "empty.csv")


def test_bad_output_extension_rejected_before_scoring(capsys, tmp_path):
    """BUG: --output's extension is checked only after every example has been scored (and the model loaded),
    so a typo costs the whole run; here the model folder does not exist and the error should still be about
    --output, as --template/--verbalizer are validated before the model is loaded."""
    argv = ["classify", "--model", tmp_path / "no_model", *SST2, "--text", "x", "--output", tmp_path / "out.txt"]
    assert_user_error(run(capsys, *argv), "--output")


def test_jsonl_line_missing_the_template_field_is_an_error(capsys, classify, tmp_path):
    """BUG: a JSONL line without the template's field ("txt" typo) is classified silently as an empty text,
    while a missing label key is an error (data.read_examples fills absent keys with "")."""
    path = _file(tmp_path, "in.jsonl", '{"text": "bad film"}\n{"txt": "good"}\n')
    assert_user_error(run(capsys, *classify, "--input", path), "text")


def test_classify_empty_input_keeps_the_header(capsys, classify, tmp_path):
    """BUG (minor): a file with a header and no rows prints the header 'label' only, not the usual columns."""
    code, out, err = run(capsys, *classify, "--input", _file(tmp_path, "in.csv", "text\n"))
    assert code == 0
    assert header_of(out) == HEADER


def test_shipped_template_name_with_j2_suffix(capsys, classify, model):
    """BUG (minor): 'sst2/it_was.j2' is rejected as a missing file, although Template.load's shipped-name branch
    and default_verbalizer both handle the .j2 suffix (that branch is unreachable)."""
    argv = ["classify", "--model", model("bert"), "--template", "sst2/it_was.j2", "--text", TEXTS[0]]
    code, with_suffix, err = run(capsys, *argv)
    assert code == 0, err
    _, without, _ = run(capsys, *classify, "--text", TEXTS[0])
    assert with_suffix == without
