"""Verbalizer: file formats, validation with messages naming file/line/word, label indices, loading."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptlearn import PromptlearnError, UnknownLabelError, Verbalizer, VerbalizerError
from promptlearn.core.resources import shipped_dir

SST2 = {"negative": ["terrible"], "positive": ["great"]}


# -- construction -------------------------------------------------------------------------------

def test_dict_keeps_class_order_and_words():
    v = Verbalizer({"positive": ["great", "good"], "negative": "terrible"})
    assert v.classes == ["positive", "negative"]
    assert v.words == [("great", "good"), ("terrible",)]
    assert len(v) == 2
    assert v.aggregation == "mean"


def test_words_are_stripped():
    v = Verbalizer({"a": ["  yes "], "b": ["no"]})
    assert v.words[0] == ("yes",)


def test_single_class_is_refused():
    with pytest.raises(VerbalizerError, match="two classes"):
        Verbalizer({"only": ["word"]})


@pytest.mark.parametrize("words", [[""], ["  "], ["ok", ""], [None], [3]])
def test_empty_or_non_text_word(words):
    with pytest.raises(VerbalizerError, match="'b'"):
        Verbalizer({"a": ["x"], "b": words})


@pytest.mark.parametrize("words", [[], (), 3, None])
def test_class_without_words(words):
    with pytest.raises(VerbalizerError, match="'b' has no label words"):
        Verbalizer({"a": ["x"], "b": words})


def test_duplicate_word_across_classes_names_word_and_classes():
    with pytest.raises(VerbalizerError) as info:
        Verbalizer({"neg": ["bad", "awful"], "pos": ["great", "bad"]})
    message = str(info.value)
    assert "'bad'" in message and "'neg'" in message and "'pos'" in message


def test_duplicate_word_within_a_class():
    with pytest.raises(VerbalizerError, match="twice"):
        Verbalizer({"neg": ["bad", "bad"], "pos": ["great"]})


def test_words_differing_in_case_are_distinct():
    v = Verbalizer({"neg": ["bad"], "pos": ["Bad"]})
    assert v.words == [("bad",), ("Bad",)]


@pytest.mark.parametrize("aggregation", ["mean", "max", "sum"])
def test_valid_aggregations(aggregation):
    assert Verbalizer(SST2, aggregation=aggregation).aggregation == aggregation


@pytest.mark.parametrize("aggregation", ["median", "", "MEAN", None])
def test_invalid_aggregation(aggregation):
    with pytest.raises(VerbalizerError, match="aggregation"):
        Verbalizer(SST2, aggregation=aggregation)


def test_not_a_mapping():
    with pytest.raises(VerbalizerError):
        Verbalizer([("neg", ["bad"]), ("pos", ["good"])])  # type: ignore[arg-type]


# -- files --------------------------------------------------------------------------------------

def test_json_file(tmp_path):
    path = tmp_path / "sst2.json"
    path.write_text(json.dumps({"negative": ["terrible", "awful"], "positive": ["great"]}), encoding="utf-8")
    v = Verbalizer.from_file(path)
    assert v.classes == ["negative", "positive"]
    assert v.words == [("terrible", "awful"), ("great",)]
    assert v.source == str(path)


def test_json_content_without_json_suffix(tmp_path):
    path = tmp_path / "verbalizer.txt"
    path.write_text('\n  {"a": ["yes"], "b": ["no"]}\n', encoding="utf-8")
    assert Verbalizer.from_file(path).to_dict() == {"a": ["yes"], "b": ["no"]}


def test_text_file_with_comments_and_several_words(tmp_path):
    path = tmp_path / "agnews.txt"
    path.write_text(
        "# AG News label words\n"
        "\n"
        "world: world, politics   # trailing comment\n"
        "sports:sports,game\n"
        "  business :  business , money  \n"
        "tech: technology\n",
        encoding="utf-8",
    )
    v = Verbalizer.from_file(path, aggregation="max")
    assert v.classes == ["world", "sports", "business", "tech"]
    assert v.words == [("world", "politics"), ("sports", "game"), ("business", "money"), ("technology",)]
    assert v.aggregation == "max"


def test_broken_json_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "negative": ["terrible"],\n  "positive": ["great",]\n}\n', encoding="utf-8")
    with pytest.raises(VerbalizerError) as info:
        Verbalizer.from_file(path)
    assert str(path) in str(info.value)
    assert "line 3" in str(info.value)


def test_json_that_is_not_an_object(tmp_path):
    path = tmp_path / "list.json"
    path.write_text('[["negative", "bad"], ["positive", "good"]]', encoding="utf-8")
    with pytest.raises(VerbalizerError, match="object") as info:
        Verbalizer.from_file(path)
    assert str(path) in str(info.value)


def test_json_errors_name_the_file(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text('{"negative": ["bad"], "positive": ["bad"]}', encoding="utf-8")
    with pytest.raises(VerbalizerError) as info:
        Verbalizer.from_file(path)
    assert str(path) in str(info.value)


def test_text_line_without_colon_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("# header\nnegative: terrible\npositive great\n", encoding="utf-8")
    with pytest.raises(VerbalizerError) as info:
        Verbalizer.from_file(path)
    message = str(info.value)
    assert str(path) in message and "line 3" in message and "positive great" in message


def test_text_line_with_empty_label(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("negative: terrible\n: great\n", encoding="utf-8")
    with pytest.raises(VerbalizerError, match="line 2"):
        Verbalizer.from_file(path)


@pytest.mark.parametrize("line", ["positive: great, , good", "positive:", "positive: great,"])
def test_text_empty_word_names_line(tmp_path, line):
    path = tmp_path / "empty.txt"
    path.write_text(f"negative: terrible\n{line}\n", encoding="utf-8")
    with pytest.raises(VerbalizerError, match="line 2") as info:
        Verbalizer.from_file(path)
    assert str(path) in str(info.value)


def test_text_class_listed_twice(tmp_path):
    path = tmp_path / "twice.txt"
    path.write_text("a: x\nb: y\na: z\n", encoding="utf-8")
    with pytest.raises(VerbalizerError, match="line 3"):
        Verbalizer.from_file(path)


def test_text_single_class(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("only: word\n", encoding="utf-8")
    with pytest.raises(VerbalizerError, match="two classes") as info:
        Verbalizer.from_file(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(VerbalizerError, match="not found") as info:
        Verbalizer.from_file(path)
    assert str(path) in str(info.value)


# -- label indices ------------------------------------------------------------------------------

def test_label_indices_names_ints_and_digit_strings():
    v = Verbalizer({"neg": ["bad"], "neu": ["okay"], "pos": ["good"]})
    assert v.label_indices(["pos", "neg", "neu"]) == [2, 0, 1]
    assert v.label_indices([0, 2, 1]) == [0, 2, 1]
    assert v.label_indices(["1", "0"]) == [1, 0]
    assert v.label_indices(["pos", 0, "2"]) == [2, 0, 2]
    assert v.label_indices([]) == []


def test_label_indices_numpy_labels():
    # scikit-learn hands y over as numpy arrays: numpy integers and numpy strings are labels too.
    v = Verbalizer({"neg": ["bad"], "pos": ["good"]})
    assert v.label_indices(np.array(["pos", "neg"])) == [1, 0]
    assert v.label_indices(np.array([1, 0])) == [1, 0]
    assert v.label_indices([np.int64(1), np.int32(0)]) == [1, 0]


def test_digit_class_names_map_by_name():
    v = Verbalizer({"1": ["good"], "0": ["bad"]})  # class order differs from the digits
    assert v.label_indices(["0", "1", 0, 1]) == [1, 0, 1, 0]
    with pytest.raises(UnknownLabelError):
        v.label_indices([2])


@pytest.mark.parametrize("label", ["Positive", "maybe", 2, -1, "-1", True, None, 1.5])
def test_unknown_label_names_label_and_classes(label):
    v = Verbalizer({"negative": ["bad"], "positive": ["good"]})
    with pytest.raises(UnknownLabelError) as info:
        v.label_indices(["negative", label])
    message = str(info.value)
    assert repr(label) in message
    assert "negative" in message and "positive" in message
    assert "item 1" in message


def test_unknown_label_is_a_verbalizer_error():
    assert issubclass(UnknownLabelError, VerbalizerError)
    assert issubclass(VerbalizerError, PromptlearnError)


def test_unknown_label_names_source_file(tmp_path):
    path = tmp_path / "v.json"
    path.write_text(json.dumps(SST2), encoding="utf-8")
    with pytest.raises(UnknownLabelError, match=str(path).replace("\\", "\\\\")):
        Verbalizer.from_file(path).label_indices(["neutral"])


# -- load -----------------------------------------------------------------------------------------

def test_load_from_dict_and_object():
    v = Verbalizer.load(SST2)
    assert v.to_dict() == SST2
    assert Verbalizer.load(v) is v
    assert Verbalizer.load(v, aggregation="mean") is v
    other = Verbalizer.load(v, aggregation="max")
    assert other.aggregation == "max" and other.to_dict() == SST2
    assert v.aggregation == "mean"  # the original is untouched
    assert Verbalizer.load(SST2, aggregation="sum").aggregation == "sum"


def test_load_from_path(tmp_path):
    json_path = tmp_path / "v.json"
    json_path.write_text(json.dumps(SST2), encoding="utf-8")
    text_path = tmp_path / "v.txt"
    text_path.write_text("negative: terrible\npositive: great\n", encoding="utf-8")
    for spec in (json_path, str(json_path), text_path, str(text_path)):
        assert Verbalizer.load(spec).to_dict() == SST2
    assert Verbalizer.load(json_path, aggregation="max").aggregation == "max"


@pytest.mark.parametrize("spec", ["/no/such/verbalizer.json", "no_such.json", "some/dir/file"])
def test_load_nonexistent_path_names_it(spec):
    with pytest.raises(VerbalizerError) as info:
        Verbalizer.load(spec)
    assert spec in str(info.value)


def test_load_shipped_name():
    try:
        path = shipped_dir("verbalizers") / "sst2.json"
    except PromptlearnError:
        path = None
    if path is None or not path.is_file():
        pytest.skip("shipped verbalizer sst2 not present yet")
    v = Verbalizer.load("sst2")
    assert len(v) >= 2 and v.source == str(path)
    assert Verbalizer.from_file(path) == v


def test_load_unknown_shipped_name():
    try:
        shipped_dir("verbalizers")
    except PromptlearnError:
        pytest.skip("no shipped verbalizers folder yet")
    with pytest.raises(VerbalizerError, match="no_such_task"):
        Verbalizer.load("no_such_task")


# -- round trip ---------------------------------------------------------------------------------

def test_to_dict_round_trip(tmp_path):
    v = Verbalizer({"world": ["world", "politics"], "sports": ["sports"], "tech": "technology"}, aggregation="sum")
    d = v.to_dict()
    assert d == {"world": ["world", "politics"], "sports": ["sports"], "tech": ["technology"]}
    assert list(d) == v.classes
    assert Verbalizer(d, aggregation="sum") == v
    assert Verbalizer(d) != v  # the aggregation is part of equality
    path = tmp_path / "rt.json"
    path.write_text(json.dumps(d), encoding="utf-8")
    assert Verbalizer.from_file(path, aggregation="sum") == v
    d["world"].append("mutated")
    assert v.words[0] == ("world", "politics")  # to_dict returns a copy
    assert "Verbalizer(" in repr(v)
