"""Shared pytest fixtures: tiny local checkpoints (see tests/tiny_models.py).

Each ``tiny_*_dir`` fixture is session-scoped: the checkpoint is built once per test session into a
folder under pytest's session tmp dir and the fixture returns that folder as a ``pathlib.Path``
(pass ``str(path)`` or the path itself to ``from_pretrained``). Treat the folders as read-only:
they are shared by every test of the session. Building all six takes about 2 s on 2 CPU cores,
most of it importing transformers' model modules.
"""

from __future__ import annotations

import os

# Nothing in the test suite may reach the network: fail fast instead of waiting on hub timeouts.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The device every model loaded by name goes to: cpu unless PROMPTLEARN_TEST_DEVICE says otherwise (e.g. cuda), so
# the suite runs the same on a machine with a GPU; `PROMPTLEARN_TEST_DEVICE=cuda pytest` runs it on the GPU.
TEST_DEVICE = os.environ.get("PROMPTLEARN_TEST_DEVICE", "cpu")
os.environ["PROMPTLEARN_DEVICE"] = TEST_DEVICE

import pytest  # noqa: E402
import torch  # noqa: E402

# Tiny models gain nothing from threads, and OpenMP threads spinning on a busy 2-core machine make
# each small matmul ~50x slower: score them on one thread.
torch.set_num_threads(1)

try:  # tests/ as a package (if someone adds tests/__init__.py) ...
    from . import tiny_models  # type: ignore[no-redef]
except ImportError:  # ... or as a plain rootdir-inserted folder (pytest's default "prepend" mode)
    import tiny_models  # type: ignore[no-redef]


def _build(tmp_path_factory, name, builder):
    return builder(tmp_path_factory.mktemp(name, numbered=True))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    """BertForMaskedLM + uncased WordPiece tokenizer ([MASK]; "terrible" -> terr ##ible)."""
    return _build(tmp_path_factory, "tiny_bert", tiny_models.build_tiny_bert)


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory):
    """RobertaForMaskedLM + byte-level BPE (<mask> with lstrip=True, pad id 1)."""
    return _build(tmp_path_factory, "tiny_roberta", tiny_models.build_tiny_roberta)


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    """GPT2LMHeadModel + GPT-2 style byte-level BPE (no BOS added; pad = eos = <|endoftext|>)."""
    return _build(tmp_path_factory, "tiny_gpt2", tiny_models.build_tiny_gpt2)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    """LlamaForCausalLM + the GPT-2 style tokenizer that prepends BOS (<|endoftext|>)."""
    return _build(tmp_path_factory, "tiny_llama", tiny_models.build_tiny_llama)


@pytest.fixture(scope="session")
def tiny_bert_encoder_dir(tmp_path_factory):
    """A plain BertModel (no MLM head) with the tiny BERT tokenizer."""
    return _build(tmp_path_factory, "tiny_bert_encoder", tiny_models.build_tiny_bert_encoder)


@pytest.fixture(scope="session")
def tiny_seqcls_dir(tmp_path_factory):
    """A BertForSequenceClassification (2 labels): not a language model."""
    return _build(tmp_path_factory, "tiny_seqcls", tiny_models.build_tiny_seqcls)


@pytest.fixture(autouse=True)
def _restore_transformers_logging():
    """The CLI's main() sets transformers' verbosity and turns its progress bars off: undo that for later tests."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    yield
    hf_logging.set_verbosity(verbosity)
    (hf_logging.enable_progress_bar if bars else hf_logging.disable_progress_bar)()


@pytest.fixture
def model(request):
    """model("bert") -> str path of the session's tiny_bert_dir (built on first use)."""
    return lambda name: str(request.getfixturevalue(f"tiny_{name}_dir"))
