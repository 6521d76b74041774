"""Distributed inference on Ray Data: ``ClassifierPredictor`` in ``map_batches`` and ``classify --engine ray`` give
the single-process probabilities (max |dp| <= 2e-6) on 4,000 rows, on one local Ray of 2 CPUs for the module.

A zero-shot prompt over the tiny BERT is saved once; the reference is the same folder loaded in this process
(``predict_proba``) and, for the command, ``classify --engine local``'s output file.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray Data is not installed (pip install 'promptlearn[ray]'; the dev extra "
                                        "that CI installs has it)")
pytest.importorskip("ray.data", reason="ray is installed without Ray Data: pip install 'ray[data]'")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pytest.importorskip("pyarrow.parquet")

from promptlearn import PromptClassifier, PromptlearnError  # noqa: E402
from promptlearn.cli import main  # noqa: E402
from promptlearn.cli.ray_engine import _user_error  # noqa: E402
from promptlearn.core.errors import DataError  # noqa: E402
from promptlearn.integrations.ray import ClassifierPredictor, load_saved  # noqa: E402

N_ROWS = 4000
TOLERANCE = 2e-6  # the outputs carry 6 decimals
PROBABILITIES = ["p(negative)", "p(positive)"]
WORDS = ("a good movie the actors were great bad film i think story was boring and slow fine awful acting fun plot "
         "terrible").split()


def _texts(n: int, seed: int = 0) -> list[str]:
    """Texts of 1 to 30 words, so that batches mix lengths (and padding) differently in every worker."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30))) for _ in range(n)]


class _WorkerPredictor(ClassifierPredictor):
    """The predictor, telling which worker scored each row, with how many torch threads, on which device."""

    def __call__(self, batch):
        import torch

        scored = super().__call__(batch)
        scored["pid"], scored["threads"] = os.getpid(), torch.get_num_threads()
        scored["device"] = f"{self.device} {self.classifier.device}"
        return scored


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray of 2 CPUs for the module (a Ray start costs seconds), shut down at the end."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # _WorkerPredictor: the workers lack tests/
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_bert_dir):
    """(folder, base model): a zero-shot prompt saved by its base model's path, which load() must be given."""
    folder = tmp_path_factory.mktemp("ray") / "sst2-zero-shot"
    PromptClassifier(model=str(tiny_bert_dir), template="sst2/it_was", verbalizer="sst2").save(folder)
    return folder, str(tiny_bert_dir)


@pytest.fixture(scope="module")
def predictor(saved):
    """A predictor called in this process (outside Ray: torch's threads and device are left alone)."""
    folder, base = saved
    return ClassifierPredictor(folder, model=base)


@pytest.fixture(scope="module")
def reference(saved):
    folder, base = saved
    return load_saved(folder, model=base)


# -- ClassifierPredictor ---------------------------------------------------------------------------------------

def test_map_batches_matches_one_process(local_ray, saved, reference):
    folder, base = saved
    frame = pd.DataFrame({"id": np.arange(N_ROWS), "text": _texts(N_ROWS)})
    expected = reference.predict_proba(frame[["text"]])
    # rows in another order (joined back by id), in 8 blocks: a dataset of one block feeds one worker only
    shuffled = frame.sample(frac=1.0, random_state=0)
    ds = ray.data.from_pandas([shuffled.iloc[start:start + N_ROWS // 8] for start in range(0, N_ROWS, N_ROWS // 8)])
    # OMP_NUM_THREADS=3 in the workers: torch would take 3 threads, were it not limited to the CPU Ray gave each
    scored = ds.map_batches(_WorkerPredictor, fn_constructor_kwargs={"model_dir": str(folder), "model": base},
                            concurrency=2, batch_size=200, batch_format="pandas",
                            runtime_env={"env_vars": {"OMP_NUM_THREADS": "3"}}).to_pandas()
    assert len(scored) == N_ROWS and sorted(scored["id"]) == list(range(N_ROWS))
    assert scored["pid"].nunique() == 2  # both workers scored rows ...
    assert set(scored["threads"]) == {1} and set(scored["device"]) == {"cpu cpu"}  # ... on the one CPU Ray gave each
    scored = scored.set_index("id").loc[frame["id"]]
    assert list(scored["text"]) == list(frame["text"])  # input columns kept, with their values
    got = scored[PROBABILITIES].to_numpy()
    assert np.abs(got - expected).max() <= TOLERANCE
    assert list(scored["label"]) == list(np.array(reference.classes_)[expected.argmax(axis=1)])


def test_predictor_returns_the_batch_kind_it_is_given(saved, predictor, reference):
    folder, base = saved
    texts = _texts(12, seed=1)
    expected = reference.predict_proba(texts)
    frame = pd.DataFrame({"review": texts, "stars": np.arange(12)})
    mapped = ClassifierPredictor(folder, model=base, columns={"text": "review"}, prediction_prefix="predicted_")
    assert mapped.probability_columns == [f"predicted_{c}" for c in PROBABILITIES]
    batches = {"pandas": frame, "numpy": {name: frame[name].to_numpy() for name in frame},
               "pyarrow": pa.Table.from_pandas(frame, preserve_index=False)}
    for kind, batch in batches.items():
        out = mapped(batch)
        assert type(out) is type(batch), kind
        as_frame = out if kind == "pandas" else pd.DataFrame(out) if kind == "numpy" else out.to_pandas()
        assert list(as_frame.columns) == ["review", "stars", "predicted_label", *mapped.probability_columns], kind
        assert list(as_frame["review"]) == texts and list(as_frame["stars"]) == list(range(12)), kind
        assert np.abs(as_frame[mapped.probability_columns].to_numpy() - expected).max() <= TOLERANCE, kind
    assert list(frame.columns) == ["review", "stars"]  # the caller's batch is not changed
    empty = predictor(pd.DataFrame({"text": pd.Series([], dtype=str)}))
    assert list(empty.columns) == ["text", "label", *PROBABILITIES] and len(empty) == 0


def test_predictor_refuses_what_it_would_overwrite_or_cannot_find(saved, predictor):
    folder, base = saved
    with pytest.raises(DataError, match=r"already has column\(s\) \['label'\].*prediction_prefix"):
        predictor(pd.DataFrame({"text": ["good"], "label": ["positive"]}))
    mapped = ClassifierPredictor(folder, model=base, columns={"text": "review"})
    with pytest.raises(DataError, match=r"no column\(s\) \['review'\].*its columns: text"):
        mapped({"text": np.array(["good"])})


def test_worker_error_comes_back_as_one_line(local_ray, saved):
    folder, base = saved
    context = ray.data.DataContext.get_current()
    was = context.raise_original_map_exception
    context.raise_original_map_exception = True  # as classify --engine ray sets it
    try:
        ds = ray.data.from_items([{"text": "good", "label": "positive"}])
        with pytest.raises(Exception) as info:
            ds.map_batches(ClassifierPredictor, fn_constructor_kwargs={"model_dir": str(folder), "model": base},
                           concurrency=1, batch_format="pandas").take_all()
    finally:
        context.raise_original_map_exception = was
    error = _user_error(info.value)
    assert isinstance(error, PromptlearnError)
    assert str(error).startswith("the batch already has column(s) ['label']") and "\n" not in str(error)


# -- classify --engine ray ---------------------------------------------------------------------------------------

def _run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _write_csv(path: Path, n: int) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "note"])
        for i, text in enumerate(_texts(n, seed=2)):  # ids with leading zeros and NA: text, as the local engine reads
            writer.writerow([f"{i:05d}", text, "NA" if i % 7 == 0 else "" if i % 7 == 1 else f"{i}.50"])
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_cli_ray_engine_matches_local_engine(capsys, local_ray, saved, tmp_path):
    folder, base = saved
    data = _write_csv(tmp_path / "reviews.csv", N_ROWS)
    common = ["classify", "--model-dir", folder, "--model", base, "--input", data]
    code, _, err = _run(capsys, *common, "--output", tmp_path / "local.csv")
    assert code == 0, err
    code, out, err = _run(capsys, *common, "--engine", "ray", "--workers", 2, "--output", tmp_path / "ray.csv")
    assert code == 0, err
    assert f"wrote {N_ROWS} predictions to {tmp_path / 'ray.csv'}" in err and "2 worker(s)" in err and out == ""
    local, distributed = _rows(tmp_path / "local.csv"), _rows(tmp_path / "ray.csv")
    header = (tmp_path / "ray.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == (tmp_path / "local.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "label,p(negative),p(positive),id,text,note"
    assert [r["id"] for r in distributed] == [f"{i:05d}" for i in range(N_ROWS)]  # the input's order
    for name in ("id", "text", "note", "label"):
        assert [r[name] for r in distributed] == [r[name] for r in local], name
    got = np.array([[float(r[c]) for c in PROBABILITIES] for r in distributed])
    expected = np.array([[float(r[c]) for c in PROBABILITIES] for r in local])
    assert np.abs(got - expected).max() <= TOLERANCE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local.csv", "ray.csv", "reviews.csv"]  # no temp file


def test_cli_ray_engine_parquet_in_jsonl_out(capsys, local_ray, saved, tmp_path):
    folder, base = saved
    texts = _texts(60, seed=3)
    pa.parquet.write_table(pa.table({"review": texts, "stars": list(range(60))}), tmp_path / "in.parquet")
    common = ["classify", "--model-dir", folder, "--model", base, "--input", tmp_path / "in.parquet",
              "--column", "text=review", "--prediction-prefix", "predicted_", "--head", 50]
    assert _run(capsys, *common, "--output", tmp_path / "local.jsonl")[0] == 0
    code, _, err = _run(capsys, *common, "--engine", "ray", "--output", tmp_path / "ray.jsonl")  # 1 worker
    assert code == 0, err
    local, distributed = ([json.loads(line) for line in (tmp_path / name).read_text().splitlines()]
                          for name in ("local.jsonl", "ray.jsonl"))
    assert len(distributed) == 50 and [list(r) for r in distributed] == [list(r) for r in local]
    assert list(distributed[0]) == ["predicted_label", "predicted_p(negative)", "predicted_p(positive)", "review",
                                    "stars"]
    assert [(r["review"], r["stars"], r["predicted_label"]) for r in distributed] == \
        [(r["review"], r["stars"], r["predicted_label"]) for r in local]
    assert max(abs(a[f"predicted_{c}"] - b[f"predicted_{c}"]) for a, b in zip(distributed, local)
               for c in PROBABILITIES) <= TOLERANCE


def _assert_one_line(capsys, argv, *fragments) -> str:
    code, out, err = _run(capsys, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("promptlearn: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_cli_ray_engine_without_ray_names_the_extra(capsys, monkeypatch, saved, tmp_path):
    folder, base = saved
    data = _write_csv(tmp_path / "reviews.csv", 3)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as where it is not installed
    monkeypatch.setitem(sys.modules, "ray.data", None)
    _assert_one_line(capsys, ["classify", "--engine", "ray", "--model-dir", folder, "--model", base, "--input", data,
                              "--output", tmp_path / "out.csv"],
                     "--engine ray needs Ray Data, which is not installed: pip install 'promptlearn[ray]'")
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("options, fragments", [
    (["--workers", "2"], ["--workers applies to --engine ray"]),
    (["--engine", "local", "--gpus-per-worker", "1", "--address", "auto"],
     ["--gpus-per-worker, --address apply to --engine ray"]),
    (["--engine", "ray", "--text", "good"], ["--engine ray needs --input, --output"]),
    (["--engine", "ray", "--input", "-", "--output", "out.csv"], ["not -"]),
    (["--engine", "ray", "--input", "in.csv", "--output", "out.csv", "--demos", "2"], ["--demos work with the local"]),
    (["--engine", "ray", "--input", "missing.csv", "--output", "out.csv"], ["data file not found: missing.csv"]),
    (["--engine", "ray", "--input", "in.json", "--output", "out.csv"], ["not json"]),
])
def test_cli_ray_engine_option_errors(capsys, saved, tmp_path, monkeypatch, options, fragments):
    folder, base = saved
    monkeypatch.chdir(tmp_path)
    _write_csv(tmp_path / "in.csv", 3)
    (tmp_path / "in.json").write_text('[{"text": "good"}]')
    _assert_one_line(capsys, ["classify", "--model-dir", folder, "--model", base, *options], *fragments)


def test_cli_ray_engine_needs_a_saved_classifier(capsys, tmp_path):
    _assert_one_line(capsys, ["classify", "--engine", "ray", "--template", "sst2/it_was", "--input", "in.csv",
                              "--output", "out.csv"], "--engine ray needs --model-dir")


def test_library_and_parser_never_import_ray():
    code = ("import sys, promptlearn, promptlearn.integrations, promptlearn.integrations.ray, promptlearn.cli.parser\n"
            "promptlearn.cli.parser.build_parser()\n"
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
