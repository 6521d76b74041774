"""Several processes: the real `python -m promptlearn` under `accelerate launch`, two CPU processes (gloo), against
one process: the same classifier, written once; resume; classify / evaluate / predict_proba rows in input order.

accelerate starts several CPU processes only through MPI (`--cpu` alone starts one), so the launches use
`--multi_gpu` (torchrun) with no GPU visible: promptlearn then joins a gloo group. Each launch starts two Python
processes that import torch and transformers: about 15-30 s each on two busy cores.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import promptlearn
from promptlearn import PromptClassifier
from promptlearn.cli import main
from promptlearn.pipeline.training import Trainer

pytestmark = pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                                reason="torch.distributed with gloo is needed")

ROWS = [("good movie .", "positive"), ("bad movie .", "negative"), ("great film .", "positive"),
        ("a bad film .", "negative"), ("a good story .", "positive"), ("bad story .", "negative"),
        ("great acting .", "positive"), ("bad acting .", "negative")]
TEXTS = [t for t, _ in ROWS] + ["a great movie .", "bad bad film .", "the story ."]  # 11: uneven slices
TEMPLATE = "{{ text }} it was [MASK] ."
TIMEOUT = 300


@pytest.fixture(scope="module")
def work(tmp_path_factory, tiny_bert_dir):
    """A no-dropout copy of the tiny BERT (so runs are deterministic), training / dev files and a verbalizer."""
    import shutil

    root = tmp_path_factory.mktemp("multiprocess")
    model = root / "bert"
    shutil.copytree(tiny_bert_dir, model)
    config = json.loads((model / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model / "config.json").write_text(json.dumps(config))
    (root / "train.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in ROWS))
    (root / "dev.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in ROWS[:5]))
    (root / "texts.csv").write_text("text\n" + "".join(f"{t}\n" for t in TEXTS))
    (root / "verbalizer.json").write_text(json.dumps({"negative": ["bad"], "positive": ["great"]}))
    return root


# With --dev: evaluated (and the best weights kept) at the end only, so the saved weights are the last step's.
WITH_DEV = ("--dev", "dev.csv")
# Without --dev, a checkpoint every 3 steps (--eval-every sets the checkpoint interval) to resume from.
CHECKPOINTED = ("--eval-every", "3")


def _train_args(work: Path, output: Path, *extra: str) -> list[str]:
    # 8 examples, global batch 3: slices of 2 and 1 (and 1 and 1 at each epoch's end), so the runs also check
    # that uneven slices are weighted to the global batch's gradient.
    extra = tuple(str(work / e) if e == "dev.csv" else e for e in extra)
    return ["train", "--model", str(work / "bert"), "--template", TEMPLATE, "--verbalizer",
            str(work / "verbalizer.json"), "--train", str(work / "train.csv"), "--output", str(output),
            "--learning-rate", "1e-2", "--max-steps", "6", "--train-batch-size", "3", *extra]


def _one_process(work: Path, name: str, *extra: str) -> tuple[Path, dict]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(_train_args(work, work / name, *extra)) == 0
    return work / name, json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def one_process(work):
    """The one-process run (in this process) that the two-process run must reproduce."""
    return _one_process(work, "one", *WITH_DEV)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(work: Path, *command: str, processes: int = 2) -> subprocess.CompletedProcess:
    """`accelerate launch` of ``command`` (``-m promptlearn ...`` or a script) on ``processes`` CPU processes."""
    env = dict(os.environ)
    env.update(CUDA_VISIBLE_DEVICES="", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               HF_HOME=str(work / "hf-home"),  # no accelerate config of the user's (none is written here)
               PYTHONPATH=os.pathsep.join([str(Path(promptlearn.__file__).resolve().parent.parent),
                                           *filter(None, [os.environ.get("PYTHONPATH")])]))
    launch = [sys.executable, "-m", "accelerate.commands.launch",
              "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port())]
    result = subprocess.run([*launch, *command], env=env, cwd=work, capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-4000:]}"
    return result


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model" / "model.safetensors"))


def _assert_same_classifier(folder: Path, reference: Path) -> float:
    mine, theirs = _weights(folder), _weights(reference)
    assert mine.keys() == theirs.keys()
    weights = max(float((mine[k] - theirs[k]).abs().max()) for k in mine)
    probabilities = float(np.abs(PromptClassifier.load(folder).predict_proba(TEXTS)
                                 - PromptClassifier.load(reference).predict_proba(TEXTS)).max())
    print(f"{folder.name} vs {reference.name}: max abs difference of the weights {weights:.3g}, of "
          f"predict_proba {probabilities:.3g}")
    # AdamW divides by the gradients' running RMS, which magnifies float rounding (the slices sum in another
    # order) in weights whose gradients are near zero: the weights agree to 1e-3, the probabilities to 1e-4.
    assert probabilities < 1e-4 and weights < 1e-3, (weights, probabilities)
    return probabilities


def test_two_processes_train_the_one_process_classifier_and_write_it_once(work, one_process):
    reference, reference_summary = one_process
    output = work / "two"
    before = set(os.listdir(work))
    result = _launch(work, "-m", "promptlearn", "-v", *_train_args(work, output, *WITH_DEV))
    assert "2 processes" in result.stderr  # really two processes, not two independent runs
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, result.stdout  # the summary is printed once, by the main process
    summary = json.loads(lines[0])
    assert summary["steps"] == summary["best_step"] == 6  # the weights compared are the last step's
    for key in ("steps", "best_step", "dev_accuracy", "train_examples"):  # dev evaluated in slices, gathered
        assert summary[key] == reference_summary[key], key
    assert set(os.listdir(work)) - before - {"hf-home"} == {"two"}  # nothing else written beside it
    assert sorted(os.listdir(output)) == sorted(os.listdir(reference)) == ["README.md", "config.json", "model"]
    _assert_same_classifier(output, reference)


def test_two_processes_resume_a_checkpoint(work, monkeypatch, capsys):
    reference, _ = _one_process(work, "uninterrupted", *CHECKPOINTED)
    output = work / "resumed"
    calls = {"n": 0}
    original = Trainer._average_gradients

    def dying(self):
        calls["n"] += 1
        if calls["n"] == 5:  # after the checkpoint of step 3
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "_average_gradients", dying)
    assert main(_train_args(work, output, *CHECKPOINTED)) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert not (output / "config.json").exists()
    assert json.loads((output / "checkpoint" / "trainer_state.json").read_text())["result"]["steps"] == 3
    result = _launch(work, "-m", "promptlearn", "-v", *_train_args(work, output, *CHECKPOINTED, "--resume"))
    assert result.stderr.count("resumed from") == 1  # logged by the main process only
    assert sorted(os.listdir(output)) == ["README.md", "config.json", "model"]
    _assert_same_classifier(output, reference)


SCRIPT = """
import sys
import numpy as np
import torch.distributed as dist
from promptlearn import PromptClassifier
from promptlearn.cli import main

work, texts = sys.argv[1], sys.argv[2:]
assert main(["classify", "--model", work + "/bert", "--template", "{{ text }} it was [MASK] .", "--verbalizer",
             work + "/verbalizer.json", "--input", work + "/texts.csv", "--output", work + "/labels.jsonl",
             "--batch-size", "2"]) == 0
assert main(["evaluate", "--model-dir", work + "/one", "--data", work + "/dev.csv", "--output",
             work + "/report.json", "--batch-size", "2"]) == 0
# the library: every process gets every row, in input order
probabilities = PromptClassifier.load(work + "/one", batch_size=2).predict_proba(texts)
np.save(f"{work}/proba-{dist.get_rank()}-of-{dist.get_world_size()}.npy", probabilities)
"""


def test_two_processes_classify_evaluate_and_predict_proba_in_input_order(work, one_process):
    reference, _ = one_process
    script = work / "score.py"
    script.write_text(SCRIPT)
    result = _launch(work, str(script), str(work), *TEXTS)
    assert result.stdout.count("accuracy") == 1, result.stdout  # the report is printed once
    expected = PromptClassifier.load(reference, batch_size=2).predict_proba(TEXTS)
    for rank in (0, 1):
        np.testing.assert_allclose(np.load(work / f"proba-{rank}-of-2.npy"), expected, atol=1e-6)
    records = [json.loads(line) for line in (work / "labels.jsonl").read_text().splitlines()]
    assert [r["text"] for r in records] == TEXTS  # written once, in input order
    zero_shot = PromptClassifier(model=str(work / "bert"), template=TEMPLATE,
                                 verbalizer=str(work / "verbalizer.json")).predict_proba(TEXTS)
    np.testing.assert_allclose([[r["p(negative)"], r["p(positive)"]] for r in records], zero_shot, atol=2e-6)
    report = json.loads((work / "report.json").read_text())
    dev = PromptClassifier.load(reference).score([t for t, _ in ROWS[:5]], [y for _, y in ROWS[:5]])
    assert report["n_examples"] == 5 and report["accuracy"] == pytest.approx(dev)


def test_accelerate_cpu_flag_starting_one_process_is_reported(monkeypatch, caplog):
    # accelerate launch --cpu --num_processes 2 starts ONE process (several CPU processes need MPI), with these
    # variables and no WORLD_SIZE / LOCAL_RANK: say so.
    from promptlearn.models import distributed

    for name in ("WORLD_SIZE", "LOCAL_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_PORT", "29500")
    with caplog.at_level("WARNING", logger="promptlearn.models.distributed"):
        assert distributed.setup() == distributed.ProcessInfo(0, 1)
    assert "started one process" in caplog.text and "--multi_gpu" in caplog.text
    caplog.clear()
    monkeypatch.delenv("MASTER_PORT")  # --cpu with one process: nothing to say
    with caplog.at_level("WARNING", logger="promptlearn.models.distributed"):
        distributed.setup()
    assert caplog.text == ""


def test_each_process_takes_its_slice_of_the_global_batch_weighted_by_its_share(monkeypatch):
    from promptlearn.models import distributed
    from promptlearn.pipeline import training
    from promptlearn.pipeline.training import TrainingConfig

    model = torch.nn.Linear(2, 2)
    config = TrainingConfig(batch_size=3, max_steps=8)
    one = Trainer(model, lambda indices: torch.zeros(()), 8, config)
    for processes in (2, 4):
        trainers = []
        for rank in range(processes):
            monkeypatch.setattr(training, "_distributed", lambda rank=rank: distributed.ProcessInfo(rank, processes))
            trainers.append(Trainer(model, lambda indices: torch.zeros(()), 8, config))
        for micro in range(8):  # 8 examples, batch 3: batches of 3, 3 and 2 examples
            batch = one.batch_indices(micro)
            slices = [t._local_batch(micro) for t in trainers]
            assert sorted(i for (part, share) in slices if share for i in part) == sorted(batch)
            # mean over processes of share * (slice mean) == the global batch's mean
            assert sum(share for _, share in slices) == pytest.approx(processes)
            for part, share in slices:
                assert share == pytest.approx(len(part) * processes / len(batch) if share else 0.0)
