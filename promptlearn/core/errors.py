"""One exception family, so callers (and the CLI) can catch every user-facing error at once."""

from __future__ import annotations


class PromptlearnError(Exception):
    """Base class of every error promptlearn raises on purpose; the message says what and how to fix it."""


class ConfigError(PromptlearnError, ValueError):
    """An option has a value it cannot take (e.g. an unknown decoding mode or a batch size of 0)."""


class TemplateError(PromptlearnError):
    """A template is malformed: no or several [MASK], bad Jinja syntax, bad [SOFT] slot."""


class MissingFieldError(TemplateError):
    """An example lacks a field the template uses."""


class VerbalizerError(PromptlearnError):
    """A verbalizer file or mapping is malformed (empty class, empty word, bad JSON/text line)."""


class UnknownLabelError(VerbalizerError):
    """A label in the data is not one of the verbalizer's classes."""


class ModelLoadError(PromptlearnError):
    """A model cannot be found or loaded."""


class WrongModelKindError(ModelLoadError):
    """The model is not a masked or causal LM (or lacks a trained LM head)."""


class SavedFolderError(PromptlearnError):
    """A saved classifier folder is missing, damaged (invalid JSON, wrong types, missing keys) or incomplete."""


class UnsafeFolderError(SavedFolderError):
    """A saved folder asks for something loading never does: code from the folder (``auto_map``, pickles) or a
    path outside it (absolute, ``..``, a link, the working directory)."""


class TruncationError(PromptlearnError):
    """A prompt cannot fit the model's window even with every shortenable field emptied."""


class TrainingError(PromptlearnError):
    """Training cannot go on: the loss is not finite, or a checkpoint does not fit the model or settings."""


class DataError(PromptlearnError):
    """A data file is missing, unreadable, or lacks a needed column."""


class ChecksumError(DataError):
    """A data file does not match its published checksum."""


class DemonstrationError(DataError):
    """Demonstrations cannot be drawn: a pool without some class (or with too few of a class), pool examples
    without the template's fields, or no pool at all."""


class DemonstrationTooLongError(DemonstrationError, TruncationError):
    """A demonstration does not fit the model's window even on its own."""


class ChatTemplateError(ConfigError):
    """A chat template was asked for, but the tokenizer has none (or the model is not a causal LM)."""
