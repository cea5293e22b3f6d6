"""Step config templates: rendering, strict undefined names, the sandbox, syntax checks."""

from __future__ import annotations

import pytest

from jobport.engine.templating import TemplateError, render, syntax_errors

CONTEXT = {
    "params": {"who": "world", "n": 3, "days": ["mon", "tue"]},
    "mode": "delta",
    "steps": {"extract": {"result": {"rows": [{"id": 7}], "count": 1}}},
}


def test_render_fills_strings_from_params_steps_and_mode() -> None:
    config = {
        "command": "echo hello {{ params.who }}",
        "args": ["--n={{ params.n * 2 }}", "--mode={{ mode }}", 5, None, True],
        "env": {"FIRST": "{{ steps.extract.result.rows[0].id }}"},
        "query": "{% for d in params.days %}{{ d }}{% if not loop.last %},{% endif %}{% endfor %}",
        "plain": "no templates } here {",
    }
    assert render(config, CONTEXT) == {
        "command": "echo hello world",
        "args": ["--n=6", "--mode=delta", 5, None, True],
        "env": {"FIRST": "7"},
        "query": "mon,tue",
        "plain": "no templates } here {",
    }


def test_render_leaves_the_input_unchanged() -> None:
    config = {"a": ["{{ params.who }}"]}
    render(config, CONTEXT)
    assert config == {"a": ["{{ params.who }}"]}


@pytest.mark.parametrize(
    ("config", "where", "what"),
    [
        ({"env": {"X": "{{ params.missing }}"}}, "env.X", "missing"),
        ({"args": ["ok", "{{ steps.load.result }}"]}, "args[1]", "load"),
        ({"command": "{{ nothing }}"}, "command", "'nothing' is undefined"),
        ("{{ params.who.upper().nope }}", "config", "nope"),
    ],
)
def test_an_undefined_name_is_an_error_naming_where_it_is(
    config: object, where: str, what: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        render(config, CONTEXT)
    message = str(caught.value)
    assert message.startswith(f"{where}: ") and what in message


@pytest.mark.parametrize(
    "template",
    [
        "{{ params.missing | length }}",
        "{% if params.missing %}yes{% endif %}",
        "{% for x in params.missing %}{{ x }}{% endfor %}",
    ],
)
def test_an_undefined_name_is_an_error_inside_filters_tests_and_loops(template: str) -> None:
    with pytest.raises(TemplateError, match="missing"):
        render(template, CONTEXT)


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ params.__class__ }}",
        "{{ params.days.append('wed') }}",
        "{{ params.update({'who': 'me'}) }}",
        "{{ render.__globals__ }}",
    ],
)
def test_the_sandbox_blocks_internals_and_mutation(template: str) -> None:
    context = {**CONTEXT, "params": {**CONTEXT["params"], "days": ["mon"]}, "render": render}
    with pytest.raises(TemplateError):
        render({"command": template}, context)
    assert context["params"]["days"] == ["mon"] and context["params"]["who"] == "world"


def test_a_blocked_attribute_says_it_is_not_allowed() -> None:
    with pytest.raises(TemplateError, match=r"^command: not allowed: .*__class__"):
        render({"command": "{{ ''.__class__ }}"}, CONTEXT)


def test_runtime_errors_become_template_errors() -> None:
    with pytest.raises(TemplateError, match=r"^n: ZeroDivisionError"):
        render({"n": "{{ 1 / 0 }}"}, CONTEXT)


def test_a_syntax_error_at_render_time_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match=r"^sql: "):
        render({"sql": "select {{ params.n"}, CONTEXT)


def test_syntax_errors_lists_each_bad_string_with_its_path_and_reason() -> None:
    config = {
        "command": "echo {{ params.who }}",
        "steps": {"args": ["fine", "{{ unclosed", "{% if %}x{% endif %}"]},
        "count": 3,
        "undefined_is_fine_here": "{{ not_checked_until_render }}",
    }
    problems = syntax_errors(config)
    assert len(problems) == 2
    assert problems[0].startswith("steps.args[1]: ") and "(line 1)" in problems[0]
    assert problems[1].startswith("steps.args[2]: ")


def test_syntax_errors_reports_the_line_of_a_multiline_template() -> None:
    (problem,) = syntax_errors({"sql": "select 1\nfrom t\nwhere {{ x"})
    assert problem.startswith("sql: ") and problem.endswith("(line 3)")


def test_valid_configs_have_no_syntax_errors() -> None:
    assert syntax_errors({"a": "{{ x }}", "b": ["{% for i in y %}{{ i }}{% endfor %}"]}) == []
    assert syntax_errors("plain") == [] and syntax_errors(None) == []
