"""A new user's first hour with the CLI (issue 33, items 4-6): what the commands show and warn about.

- ``promptlearn templates NAME`` shows a shipped template's text, fields and verbalizers;
- every shipped name in every ``--help`` text resolves (no ``trec/question``);
- ``--verbalizer`` takes inline JSON, as ``--template`` takes inline Jinja;
- the global options work after the verb (``promptlearn evaluate -v``);
- collapsed predictions (or a calibration that collapses them) and integer labels read as class indices are
  one-line warnings, with the class distribution, the content-free prior, the mapping used; ``--label-map``;
- ``evaluate`` reports raw and calibrated figures from one scoring pass, times the model load apart from
  scoring, and ``--output`` holds every example's predictions and both figures.

Runs ``promptlearn.cli.main`` in-process on the tiny local models (tests/conftest.py), as tests/test_cli.py.
Warnings are logged (stderr in a terminal): the tests read them with ``caplog``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import re

import numpy as np
import pytest

from promptlearn import PromptClassifier, Verbalizer, __version__
from promptlearn.cli import build_parser, main
from promptlearn.cli.diagnostics import COLLAPSE_SHARE, MIN_PREDICTIONS, collapse_warnings, collapsed_class
from promptlearn.io.tasks import task_id
from promptlearn.core.template import Template

try:  # tests/ as a package or as a rootdir-inserted folder (see conftest.py)
    from .test_cli import LABELLED, assert_user_error, run, run_exit, write_csv
except ImportError:
    from test_cli import LABELLED, assert_user_error, run, run_exit, write_csv

TEXTS = [text for text, _ in LABELLED]
# 24 texts: enough predictions (MIN_PREDICTIONS = 20) for the collapse warning
MANY = [f"{text} {tail}".strip() for text in TEXTS for tail in ("", "the end", "really")][:24]
# With these tiny models and prompts (checked in each test before it relies on them):
RAW_COLLAPSE = ("biased", "sst2/it_was", {"negative": ["awful"], "positive": ["great"]})  # every text: positive
CALIBRATION_COLLAPSE = ("bert", "sst2/review", {"no": ["no"], "yes": ["yes"]})  # mixed raw, one class calibrated


@pytest.fixture(scope="module")
def tiny_biased_dir(tiny_bert_dir, tmp_path_factory):
    """The tiny BERT with its masked-LM head biased toward "great": every prompt predicts it, whatever the
    random weights of the installed transformers release."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(tiny_bert_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    with torch.no_grad():
        model.get_output_embeddings().bias[tokenizer.convert_tokens_to_ids("great")] += 50.0
    out = tmp_path_factory.mktemp("tiny_biased")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("promptlearn")]


def data_file(tmp_path, texts, labels, name="data.csv"):
    return write_csv(tmp_path / name, ["text", "label"], [[t, y] for t, y in zip(texts, labels)])


# -- templates NAME ------------------------------------------------------------------------------------------

def test_templates_name_shows_text_fields_and_verbalizers(capsys):
    code, out, err = run(capsys, "templates", "sst5/review")
    assert code == 0, err
    assert "Review: {{ text }}\n  Rating: [MASK]" in out
    assert "fields: text\n" in out
    assert "verbalizer sst5 (the default for sst5/review)" in out
    for line in ("very negative: terrible", "negative: bad", "neutral: okay", "positive: good", "very positive: great"):
        assert f"  {line}\n" in out


def test_templates_name_lists_every_verbalizer_of_the_task_and_every_field(capsys):
    code, out, err = run(capsys, "templates", "boolq/qa.j2")
    assert code == 0, err
    assert "fields: passage, question\n" in out
    assert "verbalizer boolq (the default for boolq/qa)" in out and "verbalizer boolq_truefalse" in out
    assert "  false: No\n" in out and "  true: Yes\n" in out


def test_templates_task_and_verbalizer_names(capsys):
    code, out, err = run(capsys, "templates", "sst2")
    assert code == 0, err
    assert "template sst2/it_was" in out and "template sst2/review" in out
    code, out, err = run(capsys, "templates", "sst2_review")
    assert code == 0, err
    assert out == "verbalizer sst2_review:\n  negative: negative\n  positive: positive\n"


def test_templates_unknown_name_is_a_one_line_error(capsys):
    assert_user_error(run(capsys, "templates", "sst5/stars"), "no shipped template, task or verbalizer 'sst5/stars'",
                      "promptlearn templates")


def test_templates_without_name_still_lists(capsys):
    code, out, err = run(capsys, "templates")
    assert code == 0 and out.startswith("templates:   ") and "\nverbalizers: " in out


# -- every example in --help is real ---------------------------------------------------------------------------

SHIPPED_TEMPLATE = re.compile(r"^[a-z0-9_]+/[a-z0-9_.]+$")
NAME = re.compile(r"^[a-z0-9_\-]+(:\d+)?$")


def help_texts() -> dict[str, str]:
    """Every subcommand's --help text (and the top level's), as argparse prints it."""
    parser = build_parser()
    texts = {"promptlearn": parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            texts.update({name: sub.format_help() for name, sub in action.choices.items()})
    return texts


def help_examples(text: str) -> dict[str, set[str]]:
    """The shipped names a help text shows: in its example command lines (``promptlearn ...``, continued after
    a trailing backslash), --template / --verbalizer / --model / --data values that are names (not files,
    paths or Jinja text); anywhere, names given as 'e.g. X' or 'such as X'."""
    commands = "\n".join(line for line in text.replace("\\\n", " ").splitlines()
                         if re.match(r"\s*([^|]*\| )?promptlearn ", line))
    found: dict[str, set[str]] = {"template": set(), "verbalizer": set(), "model": set(), "data": set()}
    for option, value in re.findall(r"--(template|verbalizer|model|data)[ =]([^\s)\"',;]+)", commands):
        if option == "template" and SHIPPED_TEMPLATE.match(value):
            found["template"].add(value)
        elif option != "template" and NAME.match(value):
            found[option].add(value)
    for value in re.findall(r"(?:e\.g\.|such as) '?([a-z0-9_]+/[a-z0-9_.]+)\b", text):
        found["template"].add(value)
    return found


def unresolved(found: dict[str, set[str]]) -> list[str]:
    """The names that do not resolve: templates and verbalizers load, models are short names, data task names."""
    from promptlearn.models.loader import short_names

    bad = []
    for kind, names in found.items():
        for name in sorted(names):
            try:
                if kind == "template":
                    Template.load(name)
                elif kind == "verbalizer":
                    Verbalizer.load(name)
                elif kind == "model":
                    assert name in short_names()
                else:
                    task_id(name.split(":")[0])
            except Exception:  # noqa: BLE001 - any failure means the example is not real
                bad.append(f"--{kind} {name}")
    return bad


def test_help_example_extraction_finds_names_and_catches_a_bad_one():
    found = help_examples("--data DATA  a file, or --data when it has a header (e.g. sst2/it_was)\nexamples:\n"
                          "  promptlearn evaluate --template trec/question --data trec --model smollm2 \\\n"
                          "      --verbalizer sst2 --template ./mine.j2 --template \"{{ text }} [MASK]\"")
    assert found == {"template": {"trec/question", "sst2/it_was"}, "verbalizer": {"sst2"}, "model": {"smollm2"},
                     "data": {"trec"}}
    assert unresolved(found) == ["--template trec/question"]


def test_every_shipped_name_in_every_help_resolves():
    texts = help_texts()
    assert {"classify", "evaluate", "train", "adapt", "search", "templates"} <= set(texts)
    everything = {kind: set() for kind in ("template", "verbalizer", "model", "data")}
    bad = []
    for command, text in texts.items():
        found = help_examples(text)
        bad += [f"{command} --help: {name}" for name in unresolved(found)]
        for kind, names in found.items():
            everything[kind] |= names
    assert not bad, "help examples that do not exist:\n" + "\n".join(bad)
    assert {"sst2/it_was", "sst2/review", "trec/answer_type", "agnews/article"} <= everything["template"]
    assert {"sst2", "smollm2", "trec"} <= everything["verbalizer"] | everything["model"] | everything["data"]


# -- inline JSON verbalizer ----------------------------------------------------------------------------------

def test_inline_json_verbalizer(capsys, model):
    verbalizer = '{"0": ["No"], "1": ["Yes"]}'
    assert Verbalizer.load(verbalizer) == Verbalizer({"0": ["No"], "1": ["Yes"]})
    code, out, err = run(capsys, "classify", "--model", model("bert"), "--template", "sst2/it_was",
                         "--verbalizer", verbalizer, "--text", TEXTS[0], "--text", TEXTS[1])
    assert code == 0, err
    assert out.splitlines()[0].split("\t") == ["label", "p(0)", "p(1)", "text"]
    assert {line.split("\t")[0] for line in out.splitlines()[1:]} <= {"0", "1"}


def test_inline_json_verbalizer_in_evaluate_takes_integer_classes_as_names(capsys, model, tmp_path, caplog):
    data = data_file(tmp_path, TEXTS, [str(i % 2) for i in range(len(TEXTS))])
    code, out, err = run(capsys, "evaluate", "--model", model("gpt2"), "--template", "sst2/review",
                         "--verbalizer", '{"0": ["negative"], "1": ["positive"]}', "--data", data)
    assert code == 0, err
    assert "accuracy:" in out and not [w for w in warnings_of(caplog) if "class indices" in w]


@pytest.mark.parametrize("verbalizer, fragment", [
    ('{"0": ["No"], "1": ["Yes"]', "inline verbalizer: invalid JSON"),
    ('{"0": ["No"], "0": ["Yes"]}', "inline verbalizer: class '0' is listed twice"),
    ('{"0": ["No"]}', "inline verbalizer: needs at least two classes"),
])
def test_bad_inline_verbalizer_is_a_one_line_error(capsys, model, verbalizer, fragment):
    assert_user_error(run(capsys, "classify", "--model", model("bert"), "--template", "sst2/it_was", "--verbalizer",
                          verbalizer, "--text", "x"), fragment)


# -- global options after the verb ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, verbose", [
    (["evaluate", "-v", "--data", "sst2"], 1),
    (["evaluate", "--data", "sst2", "-vv"], 2),
    (["-v", "evaluate", "--data", "sst2", "--verbose"], 2),
    (["-v", "evaluate", "--data", "sst2"], 1),
    (["classify", "--text", "x", "--template", "sst2/it_was"], 0),
    (["templates", "-v", "sst2"], 1),
])
def test_global_options_after_the_verb(argv, verbose):
    args = build_parser().parse_args(argv)
    assert args.verbose == verbose
    assert not [key for key in vars(args) if key.startswith("_after_verb")]


@pytest.mark.parametrize("command", ["classify", "evaluate", "train", "search", "adapt", "templates"])
def test_version_after_the_verb_and_in_its_help(capsys, command):
    code, out, err = run_exit(capsys, command, "--version")
    assert code == 0 and out.strip() == f"promptlearn {__version__}"
    code, out, err = run_exit(capsys, command, "--help")
    assert code == 0 and "global options" in out and "--verbose" in out


def test_verbose_after_the_verb_runs(capsys):
    code, out, err = run(capsys, "templates", "-v")
    assert code == 0 and out.startswith("templates:")


# -- warnings: collapsed predictions ---------------------------------------------------------------------------

def test_collapse_rule():
    assert MIN_PREDICTIONS == 20 and COLLAPSE_SHARE == 0.95
    assert collapsed_class([1] * 19, 2) is None  # too few to tell
    assert collapsed_class([1] * 19 + [0], 2) == 1  # 95 % of 20
    assert collapsed_class([1] * 18 + [0, 0], 2) is None  # 90 %
    assert collapsed_class([0] * 30, 1) is None  # one class: nothing to collapse from
    assert collapse_warnings({"raw": [0] * 20}, ["a", "b"], truth=[0] * 20) == []  # the truth is that lopsided


def test_calibration_collapse_message_names_prior_and_both_distributions():
    (message,) = collapse_warnings({"raw": [0] * 10 + [1] * 10, "calibrated": [1] * 20}, ["no", "yes"],
                                   prior={"no": 0.9, "yes": 0.1})
    assert message.startswith("calibration collapsed the predictions onto one class: 20 of 20 predictions (100 %)")
    assert "calibrated: no 0, yes 20; uncalibrated: no 10, yes 10" in message
    assert message.endswith("content-free prior: no 0.900, yes 0.100") and "\n" not in message


def test_evaluate_warns_when_predictions_collapse(capsys, model, tmp_path, caplog):
    name, template, words = RAW_COLLAPSE
    predicted = PromptClassifier(model=model(name), template=template, verbalizer=words).predict(MANY)
    assert set(predicted) == {"positive"}, "precondition: this prompt puts every text in one class"
    data = data_file(tmp_path, MANY, ["negative", "positive"] * 12)
    code, out, err = run(capsys, "evaluate", "--model", model(name), "--template", template,
                         "--verbalizer", json.dumps(words), "--data", data, "--output", tmp_path / "report.json")
    assert code == 0, err
    collapsed = [w for w in warnings_of(caplog) if w.startswith("the raw predictions collapsed")]
    assert len(collapsed) == 1 and "\n" not in collapsed[0]
    assert "24 of 24 predictions (100 %) are 'positive' (negative 0, positive 24)" in collapsed[0]
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert collapsed[0] in report["warnings"]


def test_classify_warns_when_predictions_collapse(capsys, model, caplog):
    name, template, words = RAW_COLLAPSE
    texts = [arg for text in MANY for arg in ("--text", text)]
    code, out, err = run(capsys, "classify", "--model", model(name), "--template", template,
                         "--verbalizer", json.dumps(words), *texts)
    assert code == 0, err
    assert [w for w in warnings_of(caplog) if "collapsed onto one class: 24 of 24 predictions" in w]


def test_evaluate_warns_when_calibration_collapses_and_shows_the_prior(capsys, model, tmp_path, caplog):
    name, template, words = CALIBRATION_COLLAPSE
    classifier = PromptClassifier(model=model(name), template=template, verbalizer=words)
    raw, calibrated = (p.argmax(axis=1) for p in classifier.raw_and_calibrated_log_proba(MANY))
    assert collapsed_class(raw, 2) is None and collapsed_class(calibrated, 2) is not None, "precondition"
    prior = classifier.content_free_prior()
    data = data_file(tmp_path, MANY, ["no", "yes"] * 12)
    code, out, err = run(capsys, "evaluate", "--model", model(name), "--template", template,
                         "--verbalizer", json.dumps(words), "--data", data)
    assert code == 0, err
    (warning,) = [w for w in warnings_of(caplog) if "collapse" in w]
    assert warning.startswith("calibration collapsed the predictions onto one class")
    assert f"content-free prior: no {prior[0]:.3f}, yes {prior[1]:.3f}" in warning
    assert f"content-free prior: no {prior[0]:.3f}, yes {prior[1]:.3f}\n" in out  # printed with the figures too


def test_classify_calibrate_warns_when_calibration_collapses(capsys, model, caplog):
    name, template, words = CALIBRATION_COLLAPSE
    texts = [arg for text in MANY for arg in ("--text", text)]
    code, out, err = run(capsys, "classify", "--model", model(name), "--template", template,
                         "--verbalizer", json.dumps(words), "--calibrate", *texts)
    assert code == 0, err
    (warning,) = [w for w in warnings_of(caplog) if "collapse" in w]
    assert warning.startswith("calibration collapsed the predictions") and "content-free prior: no " in warning
    assert len({line.split("\t")[0] for line in out.splitlines()[1:]}) == 1  # the output is the calibrated one


# -- warnings: integer labels, --label-map ---------------------------------------------------------------------

def test_integer_labels_note_the_mapping_used(capsys, model, tmp_path, caplog):
    data = data_file(tmp_path, TEXTS, ["0" if y == "negative" else "1" for _, y in LABELLED])
    code, out, err = run(capsys, "evaluate", "--model", model("gpt2"), "--template", "sst2/review", "--data", data,
                         "--output", tmp_path / "report.json")
    assert code == 0, err
    (note,) = [w for w in warnings_of(caplog) if "class indices" in w]
    assert "0 -> negative, 1 -> positive" in note and "--label-map" in note
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["label_map"] == {"0": "negative", "1": "positive"}


def test_class_name_labels_give_no_note(capsys, model, tmp_path, caplog):
    data = data_file(tmp_path, TEXTS, [y for _, y in LABELLED])
    code, out, err = run(capsys, "evaluate", "--model", model("gpt2"), "--template", "sst2/review", "--data", data)
    assert code == 0, err
    assert not [w for w in warnings_of(caplog) if "class indices" in w]


def test_label_map_inverts_the_reading_of_integer_labels(capsys, model, tmp_path, caplog):
    data = data_file(tmp_path, TEXTS, ["0" if y == "negative" else "1" for _, y in LABELLED])
    reports = {}
    for name, extra in (("default", []), ("inverted", ["--label-map", "0=positive,1=negative"])):
        path = tmp_path / f"{name}.json"
        code, out, err = run(capsys, "evaluate", "--model", model("gpt2"), "--template", "sst2/review",
                             "--data", data, "--output", path, *extra)
        assert code == 0, err
        reports[name] = json.loads(path.read_text(encoding="utf-8"))
    assert reports["inverted"]["confusion_matrix"] == reports["default"]["confusion_matrix"][::-1]
    assert reports["inverted"]["label_map"] == {"0": "positive", "1": "negative"}
    assert reports["inverted"]["accuracy"] == pytest.approx(1 - reports["default"]["accuracy"])


@pytest.mark.parametrize("labels, extra, fragments", [
    (["1", "2"], [], ["no label is 0, so they may count from 1", "--label-map 1=negative,2=positive"]),
    (["0", "1"], ["--label-map", "0=bad,1=positive"], ["--label-map names ['bad'], which are not classes"]),
    (["0", "2"], ["--label-map", "0=negative"], ["label(s) 2 are neither in --label-map nor class names"]),
    (["0", "5"], [], ["label '5'", "--label-map RAW=CLASS"]),
    (["0", "1"], ["--label-map", "0"], ["--label-map expects RAW=CLASS pairs"]),
])
def test_label_errors_are_one_line(capsys, model, tmp_path, labels, extra, fragments):
    data = data_file(tmp_path, TEXTS[:4], labels * 2)
    assert_user_error(run(capsys, "evaluate", "--model", model("gpt2"), "--template", "sst2/review",
                          "--data", data, *extra), *fragments)


# -- evaluate: raw and calibrated from one pass; --output; timing -----------------------------------------------

@pytest.fixture
def count_scored(monkeypatch):
    """How many prompts the scorer has scored since the fixture started (all scoring goes through Scorer.score)."""
    from promptlearn.scorer.base import Scorer

    scored = []
    original = Scorer.score

    def score(self, prompts, verbalizer):
        scored.append(len(prompts))
        return original(self, prompts, verbalizer)

    monkeypatch.setattr(Scorer, "score", score)
    return scored


@pytest.mark.parametrize("calibrate", [False, True])
def test_evaluate_reports_raw_and_calibrated_from_one_pass(capsys, model, tmp_path, count_scored, calibrate):
    labels = [y for _, y in LABELLED]
    expected = {}
    for name, flag in (("raw", False), ("calibrated", True)):
        classifier = PromptClassifier(model=model("gpt2"), template="sst2/review", verbalizer="sst2_review",
                                      calibrate=flag)
        expected[name] = (classifier.score(TEXTS, labels), list(classifier.predict(TEXTS)))
    data = data_file(tmp_path, TEXTS, labels)
    report_path = tmp_path / "report.json"
    count_scored.clear()
    code, out, err = run(capsys, "evaluate", "--model", model("gpt2"), "--template", "sst2/review", "--data", data,
                         "--output", report_path, *(["--calibrate"] if calibrate else []))
    assert code == 0, err
    assert sum(count_scored) == len(TEXTS) + 3, "the texts once, and the three content-free inputs once"
    primary, other = ("calibrated", "raw") if calibrate else ("raw", "calibrated")
    raw_accuracy, calibrated_accuracy = expected["raw"][0], expected["calibrated"][0]
    assert (f"accuracy: {100 * expected[primary][0]:.2f} % ({primary}; {other} {100 * expected[other][0]:.2f} %)"
            in out), out
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["variant"] == primary and report["accuracy"] == pytest.approx(expected[primary][0])
    assert report["variants"]["raw"]["accuracy"] == pytest.approx(raw_accuracy)
    assert report["variants"]["calibrated"]["accuracy"] == pytest.approx(calibrated_accuracy)
    assert set(report["content_free_prior"]) == {"negative", "positive"}
    predictions = report["predictions"]
    assert [p["text"] for p in predictions] == TEXTS and [p["label"] for p in predictions] == labels
    assert [p["raw_label"] for p in predictions] == expected["raw"][1]
    assert [p["calibrated_label"] for p in predictions] == expected["calibrated"][1]
    for p in predictions:
        assert p["raw_p(negative)"] + p["raw_p(positive)"] == pytest.approx(1, abs=1e-5)
        assert p["calibrated_p(negative)"] + p["calibrated_p(positive)"] == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("suffix, delimiter", [(".csv", ","), (".tsv", "\t")])
def test_evaluate_output_table_with_metrics_beside_it(capsys, model, tmp_path, suffix, delimiter):
    data = write_csv(tmp_path / "data.csv", ["review", "stars", "id"],
                     [[t, y, str(i)] for i, (t, y) in enumerate(LABELLED)])
    output = tmp_path / f"predictions{suffix}"
    code, out, err = run(capsys, "evaluate", "--model", model("gpt2"), "--template", "sst2/review", "--data", data,
                         "--column", "text=review", "--label-column", "stars", "--output", output)
    assert code == 0, err
    with open(output, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=delimiter))
    assert list(rows[0]) == ["raw_label", "raw_p(negative)", "raw_p(positive)", "calibrated_label",
                             "calibrated_p(negative)", "calibrated_p(positive)", "stars", "text"]
    assert [r["text"] for r in rows] == TEXTS and [r["stars"] for r in rows] == [y for _, y in LABELLED]
    metrics = json.loads((tmp_path / "predictions.metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["variants"]) == {"raw", "calibrated"} and "predictions" not in metrics
    raw_right = np.mean([r["raw_label"] == r["stars"] for r in rows])
    assert metrics["variants"]["raw"]["accuracy"] == pytest.approx(raw_right)


def test_evaluate_times_loading_apart_from_scoring(capsys, model, tmp_path):
    data = data_file(tmp_path, TEXTS, [y for _, y in LABELLED])
    code, out, err = run(capsys, "evaluate", "--model", model("bert"), "--template", "sst2/it_was", "--data", data,
                         "--output", tmp_path / "report.json")
    assert code == 0, err
    assert re.search(r"^time: +loaded in \d+\.\d s; scored 10 examples in \d+\.\d s( \(\d+\.\d ex/s\))?$", out, re.M), out
    assert "examples/s" not in out
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["load_seconds"] >= 0 and report["seconds"] >= 0


def test_classify_output_line_times_loading_apart_from_scoring(capsys, model, tmp_path):
    output = tmp_path / "out.csv"
    code, out, err = run(capsys, "classify", "--model", model("bert"), "--template", "sst2/it_was", "--text", "good",
                         "--text", "bad", "--output", output)
    assert code == 0, err
    assert re.search(r"wrote 2 predictions to .*out\.csv \(loaded in \d+\.\d s; scored 2 examples in \d+\.\d s", err)
