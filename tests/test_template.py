"""Template: parsing, sandboxed rendering into segments, errors that name the file/field/line, loading."""

from __future__ import annotations

import jinja2
import pytest

from promptlearn import MissingFieldError, Prompt, PromptlearnError, Segment, Template, TemplateError
from promptlearn.core.resources import shipped_dir


def kinds(prompt: Prompt) -> list[str]:
    return [s.kind for s in prompt.segments]


# -- rendering into segments ---------------------------------------------------------------------

def test_render_splits_text_field_mask():
    prompt = Template("Review: {{ text }} It was [MASK].").render({"text": "a good film"})
    assert prompt.segments == (
        Segment("text", "Review: "),
        Segment("field", "a good film", frozenset({"text"})),
        Segment("text", " It was "),
        Segment("mask"),
        Segment("text", "."),
    )
    assert prompt.text == "Review: a good film It was [MASK]."
    assert prompt.mask_index() == 3


def test_two_fields_each_segment_names_its_field():
    template = Template("{{ premise }} ? [MASK] , {{ hypothesis }}")
    assert template.fields == {"premise", "hypothesis"}
    prompt = template.render({"premise": "It rains", "hypothesis": "it is wet", "unused": 1})
    fields = [s for s in prompt.segments if s.kind == "field"]
    assert [(s.text, s.fields) for s in fields] == [("It rains", {"premise"}), ("it is wet", {"hypothesis"})]
    assert prompt.text == "It rains ? [MASK] , it is wet"


def test_non_string_field_values_are_rendered_as_text():
    prompt = Template("{{ text }} [MASK]").render({"text": 3})
    assert prompt.segments[0] == Segment("field", "3", frozenset({"text"}))


@pytest.mark.parametrize("source, n_soft", [("[SOFT] {{ text }} [MASK]", [1]),
                                            ("[SOFT:3] {{ text }} [MASK]", [3]),
                                            ("[SOFT:2]{{ text }}[SOFT] It was [MASK].", [2, 1])])
def test_soft_slots_parse(source, n_soft):
    prompt = Template(source).render({"text": "x"})
    assert [s.n_soft for s in prompt.segments if s.kind == "soft"] == n_soft
    assert kinds(prompt).count("mask") == 1
    # Prompt.text writes soft slots with an explicit count.
    assert "[SOFT:%d]" % n_soft[0] in prompt.text


@pytest.mark.parametrize("slot", ["[SOFT:0]", "[SOFT:x]", "[SOFT:]", "[SOFT:-1]", "[SOFT:1.5]"])
def test_invalid_soft_slot(slot):
    with pytest.raises(TemplateError, match=r"soft slot") as info:
        Template(slot + " {{ text }} It was [MASK].")
    assert slot in str(info.value)


# -- the sandbox ------------------------------------------------------------------------------

@pytest.mark.parametrize("expression", [
    "''.__class__.__mro__",
    "''.__class__.__mro__[1].__subclasses__()",
    "text.__class__",
    "text.__init__.__globals__",
    "cycler.__init__.__globals__.os",
    "text.__len__()",
])
def test_sandbox_blocks_unsafe_attributes(expression):
    template = Template("{{ %s }} It was [MASK]." % expression)
    with pytest.raises(TemplateError, match="unsafe"):
        template.render({"text": "hello"})


def test_sandbox_error_is_not_a_raw_jinja_error():
    template = Template("{{ ''.__class__.__mro__ }} [MASK]")
    try:
        template.render({})
    except TemplateError as exc:
        assert not isinstance(exc, jinja2.TemplateError)
        assert "template" in str(exc)
    else:  # pragma: no cover
        pytest.fail("the sandbox let the template reach ''.__class__.__mro__")


@pytest.mark.parametrize("expression", ["range(10**9)|list|length", "1/0"])
def test_runtime_errors_in_template_expressions_are_template_errors(expression):
    # The sandbox refuses huge ranges with an OverflowError, and arithmetic can fail: whatever a
    # template's own expression raises must reach the user as a TemplateError, not a bare Python error.
    template = Template("{{ %s }} {{ text }} It was [MASK]." % expression)
    with pytest.raises(TemplateError):
        template.render({"text": "x"})


def test_safe_methods_still_work():
    prompt = Template("{{ text.upper() }} It was [MASK].").render({"text": "ab"})
    assert prompt.segments[0].text == "AB"


# -- undefined / missing / empty fields -----------------------------------------------------------

def test_strict_undefined_attribute():
    with pytest.raises(MissingFieldError, match="nope"):
        Template("{{ text.nope }} It was [MASK].").render({"text": "x"})


def test_missing_field_names_field_and_file(tmp_path):
    path = tmp_path / "review.j2"
    path.write_text("{{ text }} It was [MASK].\n", encoding="utf-8")
    template = Template.from_file(path)
    with pytest.raises(MissingFieldError) as info:
        template.render({"sentence": "hello"})
    message = str(info.value)
    assert "'text'" in message
    assert str(path) in message
    assert "sentence" in message  # what the example does have


def test_missing_field_inline_template_names_field():
    with pytest.raises(MissingFieldError, match="premise"):
        Template("{{ premise }} ? [MASK] , {{ hypothesis }}").render({"hypothesis": "h"})


@pytest.mark.parametrize("value", [None, float("nan")])
def test_none_or_nan_field(value):
    with pytest.raises(MissingFieldError, match=r"'text'.*(None|NaN)"):
        Template("{{ text }} It was [MASK].").render({"text": value})


def test_missing_field_error_is_a_promptlearn_error():
    assert issubclass(MissingFieldError, TemplateError)
    assert issubclass(TemplateError, PromptlearnError)


# -- masks ------------------------------------------------------------------------------------

def test_no_mask_in_template():
    with pytest.raises(TemplateError, match=r"no \[MASK\]"):
        Template("{{ text }} It was great.")


def test_two_masks_after_rendering():
    with pytest.raises(TemplateError, match="2 \\[MASK\\]"):
        Template("{{ text }} [MASK] and [MASK].").render({"text": "x"})


def test_mask_only_in_a_branch_not_taken():
    template = Template("{{ text }}{% if ask %} It was [MASK].{% endif %}")
    assert kinds(template.render({"text": "x", "ask": True})) == ["field", "text", "mask", "text"]
    with pytest.raises(TemplateError, match="0 \\[MASK\\]"):
        template.render({"text": "x", "ask": False})


def test_mask_inside_example_text_is_not_a_mask():
    template = Template("{{ text }} It was [MASK].")
    prompt = template.render({"text": "the [MASK] token and [SOFT:2] here"})
    assert kinds(prompt) == ["field", "text", "mask", "text"]
    assert prompt.segments[0].text == "the [MASK] token and [SOFT:2] here"


def test_mask_only_in_example_text_does_not_count():
    template = Template("{{ text }}{% if False %}[MASK]{% endif %}")
    with pytest.raises(TemplateError, match="0 \\[MASK\\]"):
        template.render({"text": "[MASK]"})


# -- syntax errors ----------------------------------------------------------------------------

def test_syntax_error_names_line(tmp_path):
    path = tmp_path / "broken.j2"
    path.write_text("{# a comment #}\n{{ text }} It was [MASK].\n{{ text | }}\nmore text\n", encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        Template.from_file(path)
    assert "line 3" in str(info.value)
    assert str(path) in str(info.value)


def test_syntax_error_inline_names_line():
    with pytest.raises(TemplateError, match="line 2"):
        Template("It was [MASK].\n{{ text \n")


def test_unknown_filter_is_a_template_error():
    # Parsing succeeds but compiling fails: still one TemplateError, naming the filter.
    with pytest.raises(TemplateError, match="nosuchfilter"):
        Template("{{ text|nosuchfilter }} It was [MASK].")


def test_closing_braces_inside_a_string_literal():
    # Valid Jinja; the segment marking must not break it.
    prompt = Template("{{ '}}' }} {{ text }} It was [MASK].").render({"text": "x"})
    assert prompt.text == "}} x It was [MASK]."


def test_raw_block_is_rendered_verbatim():
    prompt = Template("{% raw %}{{ not a field }}{% endraw %} {{ text }} [MASK]").render({"text": "x"})
    assert prompt.text == "{{ not a field }} x [MASK]"


# -- filters, loops, conditions -----------------------------------------------------------------

def test_rstrip_punct_and_lcfirst():
    template = Template("{{ premise|rstrip_punct }}? [MASK], {{ hypothesis|lcfirst }}")
    prompt = template.render({"premise": "The cat sat on the mat. ", "hypothesis": "The mat is Red."})
    assert prompt.text == "The cat sat on the mat? [MASK], the mat is Red."
    fields = [s for s in prompt.segments if s.kind == "field"]
    assert [s.fields for s in fields] == [{"premise"}, {"hypothesis"}]


@pytest.mark.parametrize("value, expected", [("Really?!", "Really"), ("ok...", "ok"), ("", ""), ("a . b", "a . b")])
def test_rstrip_punct_values(value, expected):
    assert Template("{{ t|rstrip_punct }}[MASK]").render({"t": value}).text == expected + "[MASK]"


@pytest.mark.parametrize("value, expected", [("Hello", "hello"), ("", ""), ("ABC", "aBC"), ("1x", "1x")])
def test_lcfirst_values(value, expected):
    assert Template("{{ t|lcfirst }}[MASK]").render({"t": value}).text == expected + "[MASK]"


def test_for_loop():
    template = Template("Topics:{% for w in words %} {{ w }};{% endfor %} {{ text }} is about [MASK].")
    assert template.fields == {"words", "text"}
    prompt = template.render({"words": ["sports", "news"], "text": "a match"})
    assert prompt.text == "Topics: sports; news; a match is about [MASK]."
    assert kinds(prompt).count("mask") == 1
    assert [s.text for s in prompt.segments if s.kind == "field"] == ["sports", "news", "a match"]


def test_for_loop_items_come_from_the_example_and_are_shortenable():
    # Text a loop prints comes from the example (here the field ``words``), so truncation may cut it.
    prompt = Template("{% for w in words %}{{ w }} {% endfor %}[MASK]").render({"words": ["a", "b"]})
    loop_items = [s for s in prompt.segments if s.kind == "field"]
    assert loop_items and all(prompt.is_shortenable(s) for s in loop_items)


def test_if_else():
    template = Template("{% if title %}{{ title }}: {% endif %}{{ text }} It was [MASK].")
    assert template.render({"title": "T", "text": "x"}).text == "T: x It was [MASK]."
    assert template.render({"title": "", "text": "x"}).text == "x It was [MASK]."


def test_comment_and_trailing_newline_are_dropped():
    template = Template("{# Fields: text #}\n{{ text }} It was [MASK].\n")
    assert template.render({"text": "x"}).text == "x It was [MASK]."  # trim_blocks: the header comment leaves no blank line
    assert not template.source.endswith("\n")


# -- shortenable --------------------------------------------------------------------------------

def test_shortenable_default_every_field():
    prompt = Template("{{ a }} [MASK] {{ b }}").render({"a": "x", "b": "y"})
    assert prompt.shortenable is None
    assert [prompt.is_shortenable(s) for s in prompt.segments] == [True, False, False, False, True]


def test_shortenable_subset():
    template = Template("{{ a }} [MASK] {{ b }}", shortenable=["b"])
    prompt = template.render({"a": "x", "b": "y"})
    assert prompt.shortenable == {"b"}
    assert [prompt.is_shortenable(s) for s in prompt.segments if s.kind == "field"] == [False, True]


def test_shortenable_unknown_field():
    with pytest.raises(TemplateError, match="nope") as info:
        Template("{{ text }} [MASK]", shortenable=["nope"])
    assert "text" in str(info.value)


# -- loading ------------------------------------------------------------------------------------

def test_load_inline():
    template = Template.load("{{ text }} It was [MASK].")
    assert template.name == "inline"
    assert template.render({"text": "x"}).text == "x It was [MASK]."


def test_load_inline_with_dots_and_slashes():
    template = Template.load("Q: {{ question }} / A.B. It was [MASK]. {{ text }}")
    assert template.fields == {"question", "text"}


def test_load_template_object_is_identity():
    template = Template("{{ text }} [MASK]")
    assert Template.load(template) is template


def test_load_file_path(tmp_path):
    path = tmp_path / "it_was.j2"
    path.write_text("{# A review, then a cloze. Fields: text #}\n{{ text }} It was [MASK].\n", encoding="utf-8")
    for spec in (path, str(path)):
        template = Template.load(spec, shortenable=["text"])
        assert template.path == str(path)
        assert template.name == "it_was"
        assert template.shortenable == {"text"}
        assert template.render({"text": "x"}).text.strip() == "x It was [MASK]."


def test_load_file_without_j2_suffix(tmp_path):
    path = tmp_path / "prompt.txt"
    path.write_text("{{ text }} It was [MASK].", encoding="utf-8")
    assert Template.load(path).path == str(path)


@pytest.mark.parametrize("spec", ["/no/such/dir/template.j2", "no_such_template.j2", "nosuchtask/nosuch"])
def test_load_nonexistent_names_it(spec):
    with pytest.raises(PromptlearnError) as info:
        Template.load(spec)
    assert spec in str(info.value)


def test_from_file_nonexistent(tmp_path):
    path = tmp_path / "missing.j2"
    with pytest.raises(TemplateError, match="not found") as info:
        Template.from_file(path)
    assert str(path) in str(info.value)


def _shipped(task: str, name: str):
    try:
        path = shipped_dir("templates") / task / f"{name}.j2"
    except PromptlearnError:
        path = None
    if path is None or not path.is_file():
        pytest.skip(f"shipped template {task}/{name} not present yet")
    return path


def test_load_shipped_name():
    path = _shipped("sst2", "it_was")
    template = Template.load("sst2/it_was")
    assert template.path == str(path)
    assert "text" in template.fields
    prompt = template.render({field: "a fine film" for field in template.fields})
    assert [s.kind for s in prompt.segments].count("mask") == 1
    assert Template.load("sst2/it_was.j2") == template


def test_equality_and_hash():
    a = Template("{{ text }} [MASK]")
    b = Template("{{ text }} [MASK]\n")
    assert a == b and hash(a) == hash(b)
    assert a != Template("{{ text }} [MASK]", shortenable=["text"])


# -- the flat fast path ----------------------------------------------------------------------------------------

FLAT_VALUES = [
    {"x": "a plain text .", "y": "second"},
    {"x": "", "y": "empty first field"},
    {"x": "[MASK] in the text , and {{ braces }} and \x02 markers \x1f\x03", "y": "ünïcödé — 日本語 ✓"},
    {"x": 42, "y": 3.5},
    {"x": True, "y": "  spaces around  "},
]


def _general(template: Template) -> Template:
    """The same template forced through Jinja (the path every non-flat template takes)."""
    forced = Template(template.source, name=template.name, shortenable=template.shortenable)
    forced._flat = None
    return forced


@pytest.mark.parametrize("source", [
    "{{ x }} It was [MASK].",
    "Review: {{ x }}\nSentiment: [MASK]",
    "{{ x }} ? [MASK] , {{ y }}",
    "[MASK]: {{x}}{{y}}",
    "Q: {{ x }}\n\nA: [MASK]\n",
])
def test_flat_templates_render_exactly_like_jinja(source):
    template = Template(source)
    assert template._flat is not None  # the fast path is taken
    for example in FLAT_VALUES:
        assert template.render(example) == _general(template).render(example)


def test_every_shipped_flat_template_renders_exactly_like_jinja():
    from promptlearn.core.template import list_shipped

    flat = 0
    for name in list_shipped():
        template = Template.load(name)
        if template._flat is None:
            continue
        flat += 1
        for values in FLAT_VALUES:
            example = {field: values["x"] if i % 2 == 0 else values["y"] for i, field in
                       enumerate(sorted(template.fields))}
            assert template.render(example) == _general(template).render(example), name
    assert flat >= 20  # most shipped templates are flat


@pytest.mark.parametrize("source", ["{% if x %}{{ x }}{% endif %} [MASK]", "{{ x | upper }} [MASK]",
                                    "{{ x }} [MASK] [MASK]", "{{ x.y }} [MASK]"])
def test_templates_with_logic_take_the_jinja_path(source):
    assert Template(source)._flat is None
