"""ONNX export (promptlearn.onnx.export_onnx, `promptlearn export`) and the torch-free runtime (OnnxClassifier):
probabilities equal the PyTorch classifier's within 1e-4, INT8 agrees on most predictions, the runtime never
imports torch, unsupported classifiers are refused with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from promptlearn import PromptClassifier, ScoringOptions, TrainingOptions  # noqa: E402
from promptlearn.cli import main  # noqa: E402
from promptlearn.core.errors import PromptlearnError, SavedFolderError  # noqa: E402
from promptlearn.onnx import OnnxClassifier, export_onnx  # noqa: E402

POSITIVE = ["good movie .", "great film .", "a good story .", "great acting .", "the actors were good .",
            "a great story .", "good fun .", "great music ."]
NEGATIVE = ["bad movie .", "a bad film .", "bad story .", "bad acting .", "the actors were bad .",
            "a bad story .", "bad fun .", "bad music ."]
TEXTS = POSITIVE + NEGATIVE + [
    "the movie was good " * 20,                       # longer than the tiny model's window: truncated
    "a [MASK] in the text and a [SEP] too",          # special-token strings in example text stay text
    "",
]
TEMPLATE = "{{ text }} It was [MASK]."
# "terrible" is two tokens (terr ##ible) for the tiny BERT: its graph carries the log-normaliser
MULTI_WORD = {"negative": ["bad", "terrible"], "positive": ["great", "good"]}
SINGLE_WORD = {"negative": ["bad"], "positive": ["great"]}


def _save(tmp_path: Path, model_dir: Path, name: str, *, fit: bool, **params) -> Path:
    clf = PromptClassifier(str(model_dir), template=TEMPLATE, show_progress=False, seed=0, **params)
    if fit:
        clf.set_params(training=TrainingOptions(max_steps=6, batch_size=4)).fit(POSITIVE + NEGATIVE,
                                                                               ["positive"] * 8 + ["negative"] * 8)
    folder = tmp_path / name
    clf.save(folder)
    return folder


@pytest.fixture(scope="module")
def saved(tiny_bert_dir, tmp_path_factory):
    """Saved classifiers: zero-shot with a multi-token multi-word verbalizer (raw), and fitted + calibrated."""
    root = tmp_path_factory.mktemp("onnx_saved")
    return {
        "zero_shot": _save(root, tiny_bert_dir, "zero_shot", fit=False, verbalizer=MULTI_WORD),
        "fitted_calibrated": _save(root, tiny_bert_dir, "fitted", fit=True, verbalizer=SINGLE_WORD, calibrate=True),
        "zero_shot_calibrated_max": _save(root, tiny_bert_dir, "zs_max", fit=False, verbalizer=MULTI_WORD,
                                          calibrate=True, scoring=ScoringOptions(aggregation="max")),
    }


@pytest.fixture(scope="module")
def exported(saved, tiny_bert_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx_exported")
    return {name: export_onnx(folder, root / name, model=str(tiny_bert_dir)) for name, folder in saved.items()}


@pytest.mark.parametrize("name", ["zero_shot", "fitted_calibrated", "zero_shot_calibrated_max"])
def test_exported_probabilities_equal_pytorch(saved, exported, tiny_bert_dir, name):
    reference = PromptClassifier.load(saved[name], model=str(tiny_bert_dir), show_progress=False)
    onnx = OnnxClassifier.load(exported[name], batch_size=4)
    expected = reference.predict_proba(TEXTS)
    got = onnx.predict_proba(TEXTS)
    assert got.shape == expected.shape == (len(TEXTS), 2)
    assert np.abs(got - expected).max() <= 1e-4
    assert list(onnx.classes_) == list(reference.classes_)
    assert list(onnx.predict(TEXTS)) == list(reference.predict(TEXTS))
    if reference.calibrate:  # the prior is the runtime's own, computed as core.calibration does
        assert np.abs(onnx.content_free_prior() - reference.content_free_prior()).max() <= 1e-4
        raw, calibrated = onnx.raw_and_calibrated_log_proba(TEXTS)
        expected_raw, expected_calibrated = reference.raw_and_calibrated_log_proba(TEXTS)
        assert np.abs(np.exp(raw) - np.exp(expected_raw)).max() <= 1e-4
        assert np.abs(np.exp(calibrated) - np.exp(expected_calibrated)).max() <= 1e-4


def test_the_graph_normalises_only_words_of_different_lengths(exported):
    zero_shot = json.loads((exported["zero_shot"] / "onnx_config.json").read_text())
    fitted = json.loads((exported["fitted_calibrated"] / "onnx_config.json").read_text())
    assert zero_shot["normalized"] is True and len(zero_shot["label_token_ids"]) == 5  # terr ##ible bad great good
    assert fitted["normalized"] is False and len(fitted["label_token_ids"]) == 2
    assert fitted["calibrate"] is True and zero_shot["calibrate"] is False


def test_int8_export_agrees_on_most_predictions(saved, exported, tiny_bert_dir, tmp_path):
    folder = export_onnx(saved["fitted_calibrated"], tmp_path / "int8", quantize="int8", model=str(tiny_bert_dir))
    int8 = OnnxClassifier.load(folder)
    fp32 = OnnxClassifier.load(exported["fitted_calibrated"])
    assert json.loads((folder / "onnx_config.json").read_text())["quantize"] == "int8"
    onnx = pytest.importorskip("onnx")
    ops = {node.op_type for node in onnx.load(str(folder / "model.onnx")).graph.node}
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops  # int8 weights, activations quantized per run
    agree = (int8.predict_proba(TEXTS).argmax(1) == fp32.predict_proba(TEXTS).argmax(1)).mean()
    assert agree >= 0.75
    assert np.abs(int8.predict_proba(TEXTS) - fp32.predict_proba(TEXTS)).max() < 0.2


def test_the_runtime_never_imports_torch(exported):
    code = ("import sys; import promptlearn.onnx; assert 'torch' not in sys.modules; "
            "from promptlearn.onnx import OnnxClassifier; "
            f"clf = OnnxClassifier.load({str(exported['fitted_calibrated'])!r}, intra_op_num_threads=1); "
            "print(list(clf.predict(['great film .', 'bad movie .']))); "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "False False"
    assert lines[0].startswith("[")


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_export_then_classify_the_exported_folder(saved, tiny_bert_dir, tmp_path, capsys):
    output = tmp_path / "cli_onnx"
    code, _, err = run(capsys, "export", "--model-dir", saved["fitted_calibrated"], "--format", "onnx",
                       "--output", output, "--model", tiny_bert_dir)
    assert code == 0, err
    assert (output / "model.onnx").is_file() and (output / "tokenizer.json").is_file()
    code, out, err = run(capsys, "classify", "--model-dir", output, "--text", "great film .", "--text", "bad movie .")
    assert code == 0, err
    lines = out.strip().splitlines()
    expected = OnnxClassifier.load(output).predict_proba(["great film .", "bad movie ."])
    header = lines[0].split("\t")
    assert header[:3] == ["label", "p(negative)", "p(positive)"]
    for line, probs in zip(lines[1:], expected):
        fields = line.split("\t")
        assert fields[0] == ["negative", "positive"][int(probs.argmax())]
        assert abs(float(fields[1]) - probs[0]) < 1e-5
    code, _, err = run(capsys, "export", "--model-dir", saved["fitted_calibrated"], "--output", output,
                       "--model", tiny_bert_dir)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "already exists" in err


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_refusals_are_one_line(tiny_gpt2_dir, tiny_bert_dir, saved, tmp_path):
    causal = PromptClassifier(str(tiny_gpt2_dir), template="Review: {{ text }}\nSentiment: [MASK]",
                              verbalizer=SINGLE_WORD, show_progress=False)
    causal.save(tmp_path / "causal")
    with pytest.raises(PromptlearnError) as exc:
        export_onnx(tmp_path / "causal", tmp_path / "out1", model=str(tiny_gpt2_dir))
    assert "masked LMs only" in _one_line(exc)
    soft = PromptClassifier(str(tiny_bert_dir), template=TEMPLATE, verbalizer=SINGLE_WORD, tuning="soft",
                            show_progress=False)
    soft.save(tmp_path / "soft")
    with pytest.raises(PromptlearnError) as exc:
        export_onnx(tmp_path / "soft", tmp_path / "out2", model=str(tiny_bert_dir))
    assert "tuning='manual' only" in _one_line(exc)
    with pytest.raises(PromptlearnError) as exc:
        export_onnx(saved["zero_shot"], tmp_path / "out3", quantize="int4", model=str(tiny_bert_dir))
    assert "quantize" in _one_line(exc)
    assert not any((tmp_path / f"out{i}").exists() for i in (1, 2, 3))
    with pytest.raises(SavedFolderError) as exc:
        OnnxClassifier.load(saved["zero_shot"])  # a PyTorch folder, not an export
    assert "onnx_config.json" in _one_line(exc)


def test_a_damaged_config_is_one_line(exported, tmp_path):
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(exported["fitted_calibrated"], folder)
    config = json.loads((folder / "onnx_config.json").read_text())
    config["label_token_ids"] = "not a list"
    (folder / "onnx_config.json").write_text(json.dumps(config))
    with pytest.raises(SavedFolderError) as exc:
        OnnxClassifier.load(folder)
    assert "'label_token_ids'" in _one_line(exc)


def test_a_file_linked_from_outside_the_folder_is_refused(exported, tmp_path):
    import shutil

    folder = tmp_path / "linked"
    shutil.copytree(exported["fitted_calibrated"], folder)
    outside = tmp_path / "elsewhere.onnx"
    (folder / "model.onnx").rename(outside)
    (folder / "model.onnx").symlink_to(outside)
    with pytest.raises(SavedFolderError) as exc:
        OnnxClassifier.load(folder)
    assert "leads outside" in _one_line(exc)
