"""Many threads on one classifier give exactly the sequential results (the README's thread-safety guarantee).

Each thread scores its own texts (different lengths, so different padding and mask positions per batch) several
times; every call must return what the same call returns when nothing else runs. Also: fresh classifiers on one
model path used for the first time at once.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from promptlearn import PromptClassifier

TEMPLATE = "{{ text }} It was [MASK]."
SINGLE = {"negative": ["bad", "awful"], "positive": ["great"]}
MULTI = {"negative": ["terrible", "bad"], "positive": ["great", "wonderful"]}  # "wonderful": wonder ##ful
WORDS = "the movie was good and the actors were great but the story was slow and boring".split()
N_THREADS = 8


def _texts(thread: int) -> list[str]:
    """Texts of varied lengths, different in every thread."""
    return [" ".join(WORDS[(thread + i) % 7:(thread + i) % 7 + 1 + (3 * i + thread) % 11]) for i in range(9)]


def _exactly(actual: np.ndarray, expected: np.ndarray) -> None:
    if os.environ.get("PROMPTLEARN_DEVICE", "cpu") == "cpu":
        np.testing.assert_array_equal(actual, expected)
    else:  # GPU kernels may pick another algorithm for another batch shape in another stream
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


def _hammer(clf: PromptClassifier, repeats: int = 3) -> None:
    inputs = [_texts(t) for t in range(N_THREADS)]
    expected = [clf.predict_proba(texts) for texts in inputs]  # sequential, nothing else running
    barrier = threading.Barrier(N_THREADS)

    def work(thread: int) -> list[np.ndarray]:
        barrier.wait()
        return [clf.predict_proba(inputs[thread]) for _ in range(repeats)]

    with ThreadPoolExecutor(N_THREADS) as pool:
        results = list(pool.map(work, range(N_THREADS)))
    for thread, outputs in enumerate(results):
        for output in outputs:
            _exactly(output, expected[thread])


@pytest.mark.parametrize("verbalizer,multi_token", [(SINGLE, "parallel"), (MULTI, "parallel"),
                                                    (MULTI, "left_to_right")])
def test_masked_threads_match_sequential(tiny_bert_dir, verbalizer, multi_token):
    clf = PromptClassifier(str(tiny_bert_dir), TEMPLATE, verbalizer, multi_token=multi_token, batch_size=4,
                           show_progress=False)
    _hammer(clf)


@pytest.mark.parametrize("fixture", ["tiny_gpt2_dir", "tiny_llama_dir"])
@pytest.mark.parametrize("after_mask", ["drop", "score"])
def test_causal_threads_match_sequential(request, fixture, after_mask):
    clf = PromptClassifier(str(request.getfixturevalue(fixture)), TEMPLATE + " Really.", MULTI,
                           after_mask=after_mask, batch_size=4, show_progress=False)
    _hammer(clf)


def test_calibrated_threads_match_sequential(tiny_bert_dir):
    _hammer(PromptClassifier(str(tiny_bert_dir), TEMPLATE, MULTI, calibrate=True, batch_size=4, show_progress=False))


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_llama_dir"])
def test_fresh_classifiers_on_one_model_path_first_used_at_once(request, fixture):
    path = str(request.getfixturevalue(fixture))
    texts = _texts(0)
    expected = PromptClassifier(path, TEMPLATE, MULTI, show_progress=False).predict_proba(texts)
    barrier = threading.Barrier(N_THREADS)

    def first_use(_: int) -> np.ndarray:
        clf = PromptClassifier(path, TEMPLATE, MULTI, show_progress=False)
        barrier.wait()
        return clf.predict_proba(texts)

    with ThreadPoolExecutor(N_THREADS) as pool:
        for result in pool.map(first_use, range(N_THREADS)):
            _exactly(result, expected)


def test_one_fresh_classifier_first_used_by_many_threads_loads_once(tiny_bert_dir, monkeypatch):
    import promptlearn.models.loader as module

    loads = []
    original = module.load_model

    def counting(*args, **kwargs):
        loads.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "load_model", counting)
    clf = PromptClassifier(str(tiny_bert_dir), TEMPLATE, SINGLE, show_progress=False)
    barrier = threading.Barrier(N_THREADS)

    def first_use(_: int) -> np.ndarray:
        barrier.wait()
        return clf.predict_proba(_texts(1))

    with ThreadPoolExecutor(N_THREADS) as pool:
        results = list(pool.map(first_use, range(N_THREADS)))
    assert len(loads) == 1
    for result in results[1:]:
        _exactly(result, results[0])
