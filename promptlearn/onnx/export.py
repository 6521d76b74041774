"""Export of a saved :class:`~promptlearn.PromptClassifier` to an ONNX folder that
:class:`~promptlearn.onnx.OnnxClassifier` serves without torch.

The graph is the masked LM cut down to what the classifier reads: ``input_ids, attention_mask, mask_rows,
mask_cols -> label_scores``. The backbone runs on the padded rows; the hidden states at the mask positions
``(mask_rows, mask_cols)`` go through the LM head's transform and are projected onto the label words' rows of the
decoder only (``[M, L]`` for ``L`` label tokens), so full-vocabulary logits are never computed. When the label
words have different token lengths, a word's score is a sum of log-probabilities whose normalisers differ
between words, so the graph also takes the log-normaliser at each mask (``normalized``: the scores are
log-probabilities); otherwise the normaliser is common to every class and cancels in the class softmax, and the
scores are plain logits. Summing tokens into words, words into classes, the softmax and contextual calibration
run in numpy in the runtime, as :mod:`promptlearn.core.calibration` does.

Supported: masked LMs, ``tuning="manual"`` (zero-shot or fine-tuned weights), single- or multi-token label words
scored in ``parallel``, with or without contextual calibration. Refused with one line: causal LMs, continuous
prompts (soft prompts, P-tuning, prefixes, LoRA, adapters), in-context demonstrations, chat templates and
``multi_token="left_to_right"`` (several passes decided on the host).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from ..core.calibration import content_free_examples, content_free_inputs
from ..core.encoding import mask_context, word_token_ids
from ..core.errors import PromptlearnError
from ..io.artifacts import atomic_directory, atomic_write_text
from .runtime import CONFIG_FILE, FORMAT, FORMAT_VERSION, MODEL_FILE

logger = logging.getLogger(__name__)

QUANTIZATIONS = ("int8",)
INPUT_NAMES = ["input_ids", "attention_mask", "mask_rows", "mask_cols"]
#: The agreement the export checks between the graph and the model's own logits (fp32, before quantization),
#: relative to the largest logit.
CHECK_TOLERANCE = 1e-4


class _WithoutPreprocessingAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


class ExportError(PromptlearnError):
    """A saved classifier cannot be exported to ONNX (a kind of model or a setting the graph does not cover)."""


def _label_scores_module(model: Any, label_ids: list[int], normalized: bool) -> Any:
    """The masked LM as a module ``(input_ids, attention_mask, mask_rows, mask_cols) -> [M, L]`` label-token
    scores: logits of the label tokens at the masks (minus the log-normaliser when ``normalized``)."""
    import torch

    from ..scorer.position_head import _PositionHead

    places = _PositionHead(model)._places()
    head = places[0] if len(places) > 1 else None
    decoder = model.get_output_embeddings()
    if head is None or decoder is None:
        raise ExportError(f"{type(model).__name__}: its LM head is not a module of its own, so the export cannot "
                          f"apply it at the masks only; supported: BERT-, RoBERTa-style masked LMs (a 'cls' or "
                          f"'lm_head' module)")
    weight = decoder.weight.detach()
    bias = decoder.bias.detach() if getattr(decoder, "bias", None) is not None else torch.zeros(weight.shape[0])

    class LabelDecoder(torch.nn.Module):
        """The decoder restricted to the label tokens' rows (and the log-normaliser over all rows)."""

        def __init__(self) -> None:
            super().__init__()
            index = torch.as_tensor(label_ids, dtype=torch.long)
            self.weight = torch.nn.Parameter(weight[index].clone(), requires_grad=False)
            self.bias = torch.nn.Parameter(bias[index].clone(), requires_grad=False)
            if normalized:
                self.full_weight = torch.nn.Parameter(weight.clone(), requires_grad=False)
                self.full_bias = torch.nn.Parameter(bias.clone(), requires_grad=False)

        def forward(self, hidden: torch.Tensor) -> torch.Tensor:
            scores = hidden @ self.weight.T + self.bias
            if normalized:
                scores = scores - torch.logsumexp(hidden @ self.full_weight.T + self.full_bias, dim=-1, keepdim=True)
            return scores

    parent, attribute = next((module, name) for module in head.modules() for name, child in module.named_children()
                             if child is decoder)
    setattr(parent, attribute, LabelDecoder())
    backbone = model.base_model

    class LabelScores(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone
            self.head = head

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, mask_rows: torch.Tensor,
                    mask_cols: torch.Tensor) -> torch.Tensor:
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask)[0]
            return self.head(hidden[mask_rows, mask_cols])

    return LabelScores().eval()


def _refuse_unsupported(classifier: Any, directory: str) -> None:
    scoring = classifier.scoring
    tuning = classifier.tuning_config_
    if tuning.source != "manual":
        raise ExportError(f"{directory} uses tuning={tuning.source!r}; ONNX export supports tuning='manual' only "
                          f"(zero-shot or fine-tuned weights)")
    if classifier.demonstrations.k or scoring.chat_template:
        raise ExportError(f"{directory} uses in-context demonstrations or a chat template; ONNX export supports "
                          f"plain prompts only")
    if classifier.model_.kind != "masked":
        raise ExportError(f"{directory} holds a {classifier.model_.kind} LM; ONNX export supports masked LMs only "
                          f"(a causal LM's class score is a continuation, which this graph does not compute)")
    from ..core.encoding import _checked_backend

    if _checked_backend(classifier.model_.tokenizer) is None:
        raise ExportError(f"{directory}: the model's tokenizer is not a plain fast (tokenizers) one; the ONNX "
                          f"runtime tokenizes with tokenizer.json alone")


def _label_token_ids(classifier: Any, tokenizer: Any) -> tuple[list[int], bool]:
    """The label tokens (the graph's output columns) in the template's mask context, and whether the words'
    token lengths differ (then the graph must normalise)."""
    template, verbalizer = classifier.template_, classifier.verbalizer_
    probe = template.render(content_free_examples(template.fields, ("N/A",))[0])
    words = [w for class_words in verbalizer.words for w in class_words]
    ids = [word_token_ids(tokenizer, w, *mask_context(probe)) for w in words]
    lengths = {len(t) for t in ids}
    if len(lengths) > 1 and classifier.scoring.multi_token != "parallel":
        raise ExportError(f"multi_token={classifier.scoring.multi_token!r} needs several passes per example; ONNX "
                          f"export supports multi_token='parallel' (or label words of one token)")
    return sorted({t for word in ids for t in word}), len(lengths) > 1


def _tokenizer_config(tokenizer: Any) -> dict[str, Any]:
    from ..core.encoding import special_ids, special_strings

    return {"mask_token": tokenizer.mask_token, "mask_token_id": int(tokenizer.mask_token_id),
            "pad_token_id": int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0,
            "special_tokens": special_strings(tokenizer), "special_ids": sorted(int(i) for i in special_ids(tokenizer))}


def _export_graph(module: Any, path: Path, example: tuple[Any, ...]) -> None:
    """Write ``module`` as ONNX with dynamic batch, sequence and mask axes (TorchScript exporter; the dynamo
    exporter where that one is gone)."""
    import torch

    dynamic = {"input_ids": {0: "rows", 1: "tokens"}, "attention_mask": {0: "rows", 1: "tokens"},
               "mask_rows": {0: "masks"}, "mask_cols": {0: "masks"}, "label_scores": {0: "masks"}}
    with torch.no_grad():
        try:
            with warnings.catch_warnings():  # its deprecation notice and the tracer's notes on constant shapes
                warnings.simplefilter("ignore")
                torch.onnx.export(module, example, str(path), input_names=INPUT_NAMES, output_names=["label_scores"],
                                  dynamic_axes=dynamic, opset_version=17, dynamo=False)
        except Exception as exc:  # noqa: BLE001 -- a torch without the TorchScript exporter: use dynamo's
            logger.info("TorchScript ONNX export failed (%s); using the dynamo exporter", exc)
            shapes = {"input_ids": {0: torch.export.Dim("rows"), 1: torch.export.Dim("tokens")},
                      "attention_mask": {0: torch.export.Dim("rows"), 1: torch.export.Dim("tokens")},
                      "mask_rows": {0: torch.export.Dim("masks")}, "mask_cols": {0: torch.export.Dim("masks")}}
            torch.onnx.export(module, example, str(path), input_names=INPUT_NAMES, output_names=["label_scores"],
                              dynamic_shapes=shapes, dynamo=True, external_data=False)


def _check_graph(path: Path, reference: Any, example: tuple[Any, ...]) -> float:
    """The largest difference between the graph's scores and the model's own on ``example``, relative to the
    largest score (at least 1)."""
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {name: value.numpy() for name, value in zip(INPUT_NAMES, example)}
    got = session.run(None, feed)[0]
    return float(np.abs(got - reference).max() / max(1.0, float(np.abs(reference).max())))


def export_onnx(model_dir: str | os.PathLike, output: str | os.PathLike, *, quantize: str | None = None,
                model: Any = None, overwrite: bool = False) -> Path:
    """Export the classifier saved in ``model_dir`` to the folder ``output``: ``model.onnx`` (the graph up to the
    label words' scores), the tokenizer's files and ``onnx_config.json`` (template, verbalizer, label tokens,
    calibration, window). ``quantize="int8"``: dynamic quantization of the weights (onnxruntime). ``model``: the
    base model when the folder records it as a path (as :meth:`PromptClassifier.load` takes it)."""
    import numpy as np
    import torch

    from ..estimators.classifier import PromptClassifier

    if quantize not in (None, *QUANTIZATIONS):
        raise ExportError(f"quantize must be one of {list(QUANTIZATIONS)} or None, got {quantize!r}")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ExportError("ONNX export needs onnxruntime and onnx; install them with: pip install "
                          "'promptlearn[onnx]'") from None
    overrides = {"model": model} if model is not None else {}
    classifier = PromptClassifier.load(model_dir, device="cpu", dtype="float32", **overrides)
    _refuse_unsupported(classifier, str(model_dir))
    loaded, scorer, template = classifier.model_, classifier.scorer_, classifier.template_
    tokenizer = loaded.tokenizer
    label_ids, normalized = _label_token_ids(classifier, tokenizer)
    # a probe batch: two rows of different lengths, the masks where the scorer puts them
    probe = [template.render(e) for e in content_free_examples(template.fields, ("N/A", "a longer probe text here"))]
    rows = scorer._rows(probe, [(0, 1), (1, 1)])
    ids, attention = scorer._pad(rows)
    cols = torch.as_tensor([row.index(tokenizer.mask_token_id) for row in rows])
    example = (ids.cpu(), attention.cpu(), torch.arange(len(rows)), cols)
    model_ = loaded.model.float().eval()
    with torch.no_grad():
        logits = model_(input_ids=example[0], attention_mask=example[1]).logits[example[2], cols]
    reference = (torch.log_softmax(logits, -1) if normalized else logits)[:, label_ids].numpy()
    module = _label_scores_module(model_, label_ids, normalized)
    verbalizer = classifier.verbalizer_
    scoring = classifier.scoring
    config = {
        "format": FORMAT, "version": FORMAT_VERSION,
        "base_model": loaded.name,
        "template": {"source": template.source, "name": template.name,
                     "shortenable": list(scoring.shortenable) if scoring.shortenable is not None else None},
        "verbalizer": verbalizer.to_dict(), "aggregation": verbalizer.aggregation,
        "calibrate": bool(classifier.calibrate), "content_free": list(content_free_inputs(scoring.content_free)),
        "max_length": int(scorer.max_length), "batch_size": int(scoring.batch_size),
        "label_token_ids": [int(i) for i in label_ids], "normalized": normalized, "quantize": quantize,
        "tokenizer": _tokenizer_config(tokenizer),
    }
    with atomic_directory(output, overwrite=overwrite) as tmp:
        path = tmp / MODEL_FILE
        fp32 = tmp / "model.fp32.onnx" if quantize else path
        _export_graph(module, fp32, example)
        error = _check_graph(fp32, reference, example)
        if not np.isfinite(error) or error > CHECK_TOLERANCE:
            raise ExportError(f"the exported graph differs from the model by {error:.2e} (more than "
                              f"{CHECK_TOLERANCE}); this model's LM head cannot be cut at the masks")
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            # int8 weights of the matrix products, per output channel, in 7 bits (reduce_range: without it the
            # u8 x s8 products of CPUs without VNNI saturate; measured on SST-2: 98 % argmax agreement against 76 %);
            # the embedding tables (Gather) stay float: quantizing them costs accuracy and saves no time
            quiet = _WithoutPreprocessingAdvice()  # onnxruntime's advice to the root logger, for static quantization
            logging.getLogger().addFilter(quiet)
            try:
                quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=True,
                                 reduce_range=True, op_types_to_quantize=["MatMul", "Gemm"])
            finally:
                logging.getLogger().removeFilter(quiet)
            fp32.unlink()
        tokenizer.save_pretrained(str(tmp))
        if not (tmp / "tokenizer.json").is_file():
            raise ExportError(f"{model_dir}: the tokenizer did not write tokenizer.json; the ONNX runtime needs it")
        atomic_write_text(tmp / CONFIG_FILE, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return Path(output)
