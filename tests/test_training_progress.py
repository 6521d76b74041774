"""Training that talks and survives: progress lines through logging (on a pipe too), the plan and time estimate,
--log-every / -q, --checkpoint-every (steps or time), and Ctrl-C / SIGTERM saving a checkpoint that --resume
continues to exactly the result of an uninterrupted run; plus the memory savings of the loop (fused AdamW, no
copy of the best weights while they are the current ones)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import promptlearn
from promptlearn import PromptClassifier
from promptlearn.cli import main
from promptlearn.cli.parser import build_parser
from promptlearn.cli.train import _progress_options, interrupted_message
from promptlearn.core.errors import ConfigError
from promptlearn.pipeline.training import CHECKPOINT_NAME, Trainer, TrainingConfig, TrainingInterrupted

ROWS = [("good movie .", "positive"), ("bad movie .", "negative"), ("great film .", "positive"),
        ("a bad film .", "negative"), ("a good story .", "positive"), ("bad story .", "negative")]
TEXTS = [t for t, _ in ROWS] + ["a great movie .", "the story ."]
TEMPLATE = "Review: {{ text }} Sentiment: [MASK]"
STEP_LINE = re.compile(r"step (\d+)/(\d+)  loss [0-9.]+  lr \S+  \S+ examples/s  elapsed \d+:\d\d  ETA \d+:\d\d")
REPO = Path(promptlearn.__file__).resolve().parent.parent


@pytest.fixture
def files(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in ROWS))
    (tmp_path / "verbalizer.json").write_text(json.dumps({"negative": ["bad"], "positive": ["great"]}))
    return tmp_path


def _args(model, files, output, *extra):
    return ["train", "--model", str(model), "--template", TEMPLATE, "--verbalizer", str(files / "verbalizer.json"),
            "--train", str(files / "train.csv"), "--output", str(output), "--learning-rate", "3e-3",
            "--train-batch-size", "4", *extra]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "PROMPTLEARN_DEVICE": "cpu", "PYTHONPATH": os.pathsep.join(
                [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model" / "model.safetensors"))


def _assert_same_classifier(folder, reference):
    mine, theirs = _weights(folder), _weights(reference)
    assert mine.keys() == theirs.keys()
    for name in mine:
        assert torch.equal(mine[name], theirs[name]), name
    np.testing.assert_allclose(PromptClassifier.load(folder).predict_proba(TEXTS),
                               PromptClassifier.load(reference).predict_proba(TEXTS), rtol=0, atol=1e-6)


# -- progress lines ---------------------------------------------------------------------------------------------

def test_progress_lines_reach_a_pipe(tiny_llama_dir, files):
    """stderr is a pipe, not a terminal: the plan, the estimate and the step lines are there; no tqdm bar."""
    run = subprocess.run([sys.executable, "-m", "promptlearn",
                          *_args(tiny_llama_dir, files, files / "run", "--max-steps", "12", "--log-every", "5")],
                         capture_output=True, text=True, env=_env(), cwd=files, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stderr.splitlines()
    assert any(re.search(r"fine-tuning: 12 steps \(max_steps; 6 epochs x 2 batches of 4; 6 examples\)", line)
               for line in lines), run.stderr
    assert any(re.search(r"estimate ~\d+ (s|min) for 12 steps", line) for line in lines), run.stderr
    steps = {int(m.group(1)) for m in map(STEP_LINE.search, lines) if m}
    assert {1, 5, 10, 12} <= steps, run.stderr  # (a slow machine may add lines every 30 s)
    assert "\r" not in run.stderr  # no progress bar on a pipe
    assert json.loads(run.stdout.strip().splitlines()[-1])["steps"] == 12


def test_quiet_prints_no_progress(tiny_llama_dir, files, capsys):
    assert main(_args(tiny_llama_dir, files, files / "quiet", "--max-steps", "3", "-q")) == 0
    captured = capsys.readouterr()
    assert "step " not in captured.err and "estimate" not in captured.err, captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["steps"] == 3
    assert main(_args(tiny_llama_dir, files, files / "talks", "--max-steps", "3", "--log-every", "1")) == 0
    err = capsys.readouterr().err
    assert [int(m.group(1)) for m in map(STEP_LINE.search, err.splitlines()) if m] == [1, 2, 3], err
    assert logging.getLogger("promptlearn.pipeline.training").handlers == []  # the CLI's handler is gone afterwards


def _linear_task(n=12, seed=0):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 4, generator=generator)
    targets = inputs @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=generator)
    return inputs, targets


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))


def _trainer(model, config, **options):
    inputs, targets = _linear_task()

    def loss_fn(indices):
        return torch.nn.functional.mse_loss(model(inputs[indices]).squeeze(-1), targets[indices])

    def evaluate():
        with torch.no_grad():
            return -float(torch.nn.functional.mse_loss(model(inputs).squeeze(-1), targets))

    options.setdefault("evaluate", evaluate)
    return Trainer(model, loss_fn, len(targets), config, show_progress=False, **options)


def test_progress_goes_through_logging(caplog):
    """The Python API: the logger ``promptlearn.pipeline.training`` at INFO gets the plan, the estimate after step 3, and a
    line every log_every steps plus the first and the last."""
    config = TrainingConfig(learning_rate=1e-2, max_steps=7, batch_size=4)
    with caplog.at_level(logging.INFO, logger="promptlearn.pipeline.training"):
        _trainer(_model(), config, log_every=2, log_seconds=None, description="demo").train()
    messages = [r.getMessage() for r in caplog.records if r.name == "promptlearn.pipeline.training"]
    assert messages[0] == "demo: 7 steps (max_steps; 2.333 epochs x 3 batches of 4; 12 examples)"
    assert [int(m.group(1)) for m in map(STEP_LINE.search, messages) if m] == [1, 2, 4, 6, 7]
    estimates = [i for i, m in enumerate(messages) if "estimate" in m]
    assert len(estimates) == 1 and "for 7 steps" in messages[estimates[0]]
    assert STEP_LINE.search(messages[estimates[0] - 1]).group(1) == "2"  # comes right after step 3
    assert "dev " in messages[-1]  # the last step's evaluation


# -- Ctrl-C and SIGTERM -----------------------------------------------------------------------------------------

def _small_pipe():
    """A pipe holding at most one page: a child writing progress lines into it cannot run ahead of the reader by
    more than a page of lines (so the interruption lands mid-run, whatever the machine's speed)."""
    import fcntl

    read_fd, write_fd = os.pipe()
    size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if size is None:
        os.close(read_fd), os.close(write_fd)
        pytest.skip("needs F_SETPIPE_SZ (Linux) to bound how far the child runs ahead")
    fcntl.fcntl(write_fd, size, 4096)
    return read_fd, write_fd


def test_ctrl_c_saves_a_checkpoint_and_resume_equals_the_uninterrupted_run(tiny_llama_dir, files):
    """The real command in a subprocess: SIGINT once it has logged step 5 (of 150), exit 130 with a one-line
    message naming --resume, a checkpoint of the last finished step; --resume then ends with exactly the weights
    (and predictions) of an uninterrupted run."""
    interrupted = files / "interrupted"
    command = [sys.executable, "-m", "promptlearn",
               *_args(tiny_llama_dir, files, interrupted, "--max-steps", "150", "--log-every", "1")]
    read_fd, write_fd = _small_pipe()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=write_fd, env=_env(), cwd=files)
    os.close(write_fd)
    seen, buffer, signalled = [], b"", False
    try:
        while True:
            chunk = os.read(read_fd, 4096)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            seen += [line.decode() for line in lines]
            if not signalled and any((m := STEP_LINE.search(line)) and int(m.group(1)) >= 5 for line in seen):
                child.send_signal(signal.SIGINT)
                signalled = True
        child.wait(timeout=300)
    finally:
        os.close(read_fd)
        if child.poll() is None:
            child.kill()
    stderr = "\n".join(seen + [buffer.decode()])
    assert signalled, stderr
    assert child.returncode == 130, stderr
    message = re.search(r"^promptlearn: interrupted at step (\d+) of 150; checkpoint saved in \S*checkpoint: rerun "
                        r"the same command with --resume to continue from it$", stderr, re.MULTILINE)
    assert message, stderr
    step = int(message.group(1))
    state = json.loads((interrupted / CHECKPOINT_NAME / "trainer_state.json").read_text())
    assert 5 <= state["result"]["steps"] == step < 150
    assert not (interrupted / "config.json").exists()

    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, env=_env(), cwd=files,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {interrupted} at step {step}" in resumed.stderr
    whole = subprocess.run([sys.executable, "-m", "promptlearn", *_args(tiny_llama_dir, files, files / "whole",
                                                                          "--max-steps", "150", "--log-every", "1")],
                           capture_output=True, text=True, env=_env(), cwd=files, timeout=300)
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["steps"] == 150
    _assert_same_classifier(interrupted, files / "whole")


def _signal_at_step(monkeypatch, signum, at):
    """Send ``signum`` to this process at the start of step ``at`` (1-based), before its forward pass."""
    original = Trainer._step

    def step(self, run):
        if run.result.steps + 1 == at:
            # the trainer's handler must be in place (else SIGTERM would end the test session)
            assert getattr(signal.getsignal(signum), "__self__", None) is self
            os.kill(os.getpid(), signum)
        return original(self, run)

    monkeypatch.setattr(Trainer, "_step", step)


def test_sigterm_exits_143_and_resumes_to_the_same_classifier(tiny_llama_dir, files, monkeypatch, capsys):
    whole = files / "whole"
    assert main(_args(tiny_llama_dir, files, whole, "--max-steps", "8")) == 0
    output = files / "stopped"
    _signal_at_step(monkeypatch, signal.SIGTERM, 4)
    before = signal.getsignal(signal.SIGTERM)
    assert main(_args(tiny_llama_dir, files, output, "--max-steps", "8")) == 143
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are put back
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert "promptlearn: stopped by SIGTERM at step 3 of 8; checkpoint saved in" in err and "--resume" in err
    assert json.loads((output / CHECKPOINT_NAME / "trainer_state.json").read_text())["result"]["steps"] == 3
    assert main(_args(tiny_llama_dir, files, output, "--max-steps", "8", "--resume")) == 0
    assert f"resumed from {output} at step 3" in capsys.readouterr().err
    _assert_same_classifier(output, whole)


def test_interruption_before_the_first_step_saves_nothing(tiny_llama_dir, files, monkeypatch, capsys):
    _signal_at_step(monkeypatch, signal.SIGINT, 1)
    assert main(_args(tiny_llama_dir, files, files / "early", "--max-steps", "4")) == 130
    assert capsys.readouterr().err.strip().endswith(
        "promptlearn: interrupted before the first step finished; nothing to save: rerun the same command to start "
        "again")
    assert not (files / "early" / CHECKPOINT_NAME).exists()


def _run_to_end(tmp_path, name, config):
    model = _model()
    result = _trainer(model, config, checkpoint_dir=tmp_path / name).train()
    return model, result


def _assert_same_model(a, b):
    for (name, x), (_, y) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(x, y), name


def test_a_signal_during_the_update_takes_effect_after_it(tmp_path, monkeypatch):
    """SIGINT inside the optimizer's update: the update finishes, and the checkpoint holds that whole step."""
    config = TrainingConfig(learning_rate=1e-2, max_steps=9, batch_size=4, eval_every=3)
    whole, whole_result = _run_to_end(tmp_path, "whole", config)
    original = torch.nn.utils.clip_grad_norm_
    calls = {"n": 0}

    def clip(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            os.kill(os.getpid(), signal.SIGINT)  # deferred: the update goes on
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    model = _model()
    with pytest.raises(TrainingInterrupted) as info:
        _trainer(model, config, checkpoint_dir=tmp_path / "run").train()
    monkeypatch.undo()
    assert (info.value.step, info.value.total, info.value.exit_status) == (5, 9, 130)
    assert info.value.checkpoint == tmp_path / "run" / CHECKPOINT_NAME
    assert json.loads((info.value.checkpoint / "trainer_state.json").read_text())["result"]["steps"] == 5
    resumed = _model(seed=1)  # other starting weights: all of them come from the checkpoint
    result = _trainer(resumed, config, checkpoint_dir=tmp_path / "run").train(resume=True)
    assert result.history == whole_result.history and result.best_step == whole_result.best_step
    _assert_same_model(resumed, whole)


def test_a_signal_during_an_evaluation_leaves_it_pending(tmp_path):
    """An evaluation cut by SIGINT is redone first on resume: same history, best step and weights."""
    config = TrainingConfig(learning_rate=1e-2, max_steps=9, batch_size=4, eval_every=3)
    whole, whole_result = _run_to_end(tmp_path, "whole", config)
    model = _model()
    inputs, targets = _linear_task()
    calls = {"n": 0}

    def evaluate():
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)
        with torch.no_grad():
            return -float(torch.nn.functional.mse_loss(model(inputs).squeeze(-1), targets))

    with pytest.raises(TrainingInterrupted) as info:
        _trainer(model, config, checkpoint_dir=tmp_path / "run", evaluate=evaluate).train()
    state = json.loads((info.value.checkpoint / "trainer_state.json").read_text())
    assert state["result"]["steps"] == 6 and state["pending"]["step"] == 6
    assert [r["step"] for r in state["result"]["history"]] == [1, 2, 3, 4, 5]
    resumed = _model(seed=1)
    result = _trainer(resumed, config, checkpoint_dir=tmp_path / "run").train(resume=True)
    assert result.history == whole_result.history and result.best_step == whole_result.best_step
    _assert_same_model(resumed, whole)


def test_without_a_checkpoint_folder_ctrl_c_is_left_alone():
    before = signal.getsignal(signal.SIGINT)
    seen = []
    config = TrainingConfig(max_steps=3, batch_size=4)
    model = _model()
    inputs, targets = _linear_task()

    def loss_fn(indices):
        seen.append(signal.getsignal(signal.SIGINT))
        return torch.nn.functional.mse_loss(model(inputs[indices]).squeeze(-1), targets[indices])

    Trainer(model, loss_fn, len(targets), config, show_progress=False).train()
    assert seen == [before] * 3


def test_interrupted_message():
    assert interrupted_message(TrainingInterrupted(signal.SIGINT, 0, 5)) == (
        "interrupted before the first step finished; nothing to save: rerun the same command to start again")
    exc = TrainingInterrupted(signal.SIGTERM, 7, 200, Path("runs/x/checkpoint"))
    assert exc.exit_status == 143 and isinstance(exc, KeyboardInterrupt)
    assert interrupted_message(exc) == ("stopped by SIGTERM at step 7 of 200; checkpoint saved in runs/x/checkpoint: "
                                        "rerun the same command with --resume to continue from it")


# -- checkpoint intervals ---------------------------------------------------------------------------------------

def test_checkpoint_every_takes_steps_or_a_time():
    parser = build_parser()
    base = ["train", "--template", "sst2/review", "--train", "t.csv", "--output", "o"]
    assert _progress_options(parser.parse_args(base)) == {"log_every": 10, "checkpoint_every": None,
                                                          "checkpoint_minutes": 10.0, "train_tokens_per_pass": None}
    assert _progress_options(parser.parse_args(base + ["--checkpoint-every", "50", "--log-every", "3",
                                                       "--tokens-per-pass", "0"])) == {
        "log_every": 3, "checkpoint_every": 50, "checkpoint_minutes": None, "train_tokens_per_pass": 0}
    for text, minutes in (("90s", 1.5), ("2m", 2.0), ("1.5h", 90.0)):
        options = _progress_options(parser.parse_args(base + ["--checkpoint-every", text]))
        assert options["checkpoint_minutes"] == minutes and options["checkpoint_every"] is None
    for bad in ("0", "10x", "m", "-5m"):
        with pytest.raises(SystemExit):
            parser.parse_args(base + ["--checkpoint-every", bad])
    assert parser.parse_args(base + ["-q"]).quiet


def test_time_based_checkpoints_and_a_changed_interval_still_resume(tmp_path, monkeypatch):
    saves = []
    original = Trainer._save_checkpoint
    monkeypatch.setattr(Trainer, "_save_checkpoint", lambda self, run: (saves.append(run.result.steps),
                                                                         original(self, run)))
    timed = TrainingConfig(max_steps=4, batch_size=4, checkpoint_seconds=1e-9)  # every step is past the time
    _trainer(_model(), timed, checkpoint_dir=tmp_path / "timed").train()
    assert saves == [1, 2, 3, 4]
    saves.clear()
    _trainer(_model(), TrainingConfig(max_steps=4, batch_size=4), checkpoint_dir=tmp_path / "end").train()
    assert saves == [4]  # no interval: at the end only
    monkeypatch.undo()
    # a run checkpointed every 2 steps resumes under another interval (the interval does not change the result)
    config = TrainingConfig(max_steps=6, batch_size=4, checkpoint_every=2)
    whole, whole_result = _run_to_end(tmp_path, "whole", config)
    _signal_at_step(monkeypatch, signal.SIGINT, 4)
    with pytest.raises(TrainingInterrupted):
        _trainer(_model(), config, checkpoint_dir=tmp_path / "run").train()
    monkeypatch.undo()
    other = TrainingConfig(max_steps=6, batch_size=4, checkpoint_every=5, checkpoint_seconds=600.0)
    resumed = _model(seed=1)
    result = _trainer(resumed, other, checkpoint_dir=tmp_path / "run").train(resume=True)
    assert result.history == whole_result.history
    _assert_same_model(resumed, whole)


# -- memory -----------------------------------------------------------------------------------------------------

def test_adamw_is_fused_on_cpu():
    trainer = _trainer(_model(), TrainingConfig(max_steps=1, batch_size=4))
    assert trainer.optimizer.param_groups[0]["fused"] is True  # no parameter-sized temporaries per step


def test_best_weights_are_copied_only_when_a_later_step_changes_them(tmp_path, monkeypatch):
    copies = []
    original = Trainer._copy_weights
    monkeypatch.setattr(Trainer, "_copy_weights", lambda self: (copies.append(1), original(self))[1])
    # evaluated at the last step only (the default): no copy, and the checkpoint points at its own weights
    _trainer(_model(), TrainingConfig(max_steps=4, batch_size=4), checkpoint_dir=tmp_path / "end").train()
    assert copies == []
    state = json.loads((tmp_path / "end" / CHECKPOINT_NAME / "trainer_state.json").read_text())
    assert state["best"] == "weights" and not (tmp_path / "end" / CHECKPOINT_NAME / "best.safetensors").exists()
    # evaluated every 2 steps: the best weights are kept when later steps change them, and loaded at the end
    model = _model()
    result = _trainer(model, TrainingConfig(learning_rate=0.5, max_steps=8, batch_size=4, eval_every=2)).train()
    assert copies
    evaluated = {r["step"]: r["dev"] for r in result.history if "dev" in r}
    assert result.best_metric == max(evaluated.values()) and result.best_step in evaluated
    inputs, targets = _linear_task()
    model.eval()
    with torch.no_grad():
        assert -float(torch.nn.functional.mse_loss(model(inputs).squeeze(-1), targets)) == pytest.approx(
            result.best_metric)


def test_a_batch_over_the_token_budget_trains_in_parts_with_the_same_gradient(tiny_llama_dir, monkeypatch):
    """train_tokens_per_pass bounds the tokens of one forward/backward pass (the activations kept for backward):
    the batch is computed in parts whose gradients add up to the whole batch's."""
    from promptlearn.scorer.base import Scorer

    passes = []
    original = Scorer.class_log_scores

    def counting(self, prompts, verbalizer, rows=None):
        passes.append((len(prompts), max(row.length for row in rows)))
        return original(self, prompts, verbalizer, rows=rows)

    monkeypatch.setattr(Scorer, "class_log_scores", counting)
    texts = [t for t, _ in ROWS] + ["a rather long review of a good film that goes on and on ."] * 2
    labels = [y for _, y in ROWS] + ["positive"] * 2

    def fit(budget):
        passes.clear()
        clf = PromptClassifier(str(tiny_llama_dir), TEMPLATE, {"negative": ["bad"], "positive": ["great"]},
                               learning_rate=3e-3, max_steps=4, train_batch_size=4, seed=0, show_progress=False,
                               train_tokens_per_pass=budget)
        return clf.fit(texts, labels).predict_proba(TEXTS), list(passes)

    whole, whole_passes = fit(0)  # no limit: one pass per batch of 4
    assert [n for n, _ in whole_passes] == [4, 4, 4, 4]
    longest = max(tokens for _, tokens in whole_passes)
    parted, parted_passes = fit(longest)  # room for one example of the longest
    assert len(parted_passes) > 4 and all(n * tokens <= longest or n == 1 for n, tokens in parted_passes)
    assert sum(n for n, _ in parted_passes) == 16
    np.testing.assert_allclose(parted, whole, atol=1e-5)  # the same training, up to float rounding
    with pytest.raises(ConfigError, match="train_tokens_per_pass"):
        PromptClassifier(str(tiny_llama_dir), TEMPLATE, {"negative": ["bad"], "positive": ["great"]}, max_steps=1,
                         train_tokens_per_pass=-1, show_progress=False).fit(texts, labels)
