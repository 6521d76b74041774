"""``export``: a saved classifier as an ONNX folder that :class:`~promptlearn.onnx.OnnxClassifier` serves without
torch (``promptlearn classify --model-dir`` reads it too)."""

from __future__ import annotations

import argparse
import sys
import time

EPILOG_EXPORT = """examples:
  promptlearn export --model-dir clf --format onnx --output clf-onnx
  promptlearn export --model-dir clf --format onnx --quantize int8 --output clf-int8
  promptlearn classify --model-dir clf-int8 --text "a gripping, funny film"

Supported: masked LMs with tuning=manual (zero-shot or fine-tuned), raw or calibrated, label words of one or
several tokens (multi_token=parallel). Refused with one line: causal LMs, continuous prompts (soft, P-tuning,
LoRA, ...), in-context demonstrations and chat templates.
"""


def add_export_parser(commands: argparse._SubParsersAction) -> None:
    """The ``export`` subcommand's parser."""
    export = commands.add_parser(
        "export", help="export a saved classifier to ONNX, served without torch (onnxruntime + tokenizers)",
        description="Export a classifier saved by `promptlearn train` (or PromptClassifier.save) to a folder: an "
                    "ONNX graph that ends at the label words' scores, the tokenizer and onnx_config.json. "
                    "promptlearn.onnx.OnnxClassifier and `promptlearn classify --model-dir` serve it without torch.",
        epilog=EPILOG_EXPORT, formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("--model-dir", required=True, help="the saved classifier's folder")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="the export format (onnx)")
    export.add_argument("--quantize", choices=["int8"], default=None,
                        help="int8: dynamic quantization of the weights (smaller, faster on CPUs)")
    export.add_argument("--output", required=True, help="the folder to write (refused if it exists, unless "
                                                        "--overwrite)")
    export.add_argument("--model", default=None,
                        help="the base model, when the saved folder records it as a local path (as for evaluate)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")
    export.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from ..onnx.export import export_onnx

    start = time.perf_counter()
    folder = export_onnx(args.model_dir, args.output, quantize=args.quantize, model=args.model,
                         overwrite=args.overwrite)
    print(f"wrote {folder} ({args.format}{', ' + args.quantize if args.quantize else ''}, "
          f"{time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0
