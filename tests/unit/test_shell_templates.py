"""A value rendered into a shell command is data: /bin/sh prints it, never runs it."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from jobport.engine.steps import command as command_step
from jobport.engine.templating import TemplateError, render_shell

HOSTILE = [
    "; touch {mark}",
    "$(touch {mark})",
    "`touch {mark}`",
    "&& touch {mark}",
    "|| touch {mark}",
    "| touch {mark}",
    "'; touch {mark}; '",
    '"; touch {mark}; "',
    "\n touch {mark}",
    "\\'; touch {mark} #",
    '\\"; touch {mark} #',
    "$'\\x27'; touch {mark}",
    "${{IFS}}touch${{IFS}}{mark}",
    "*",
    "-n",
    "",
    "$HOME $(id) ${{PATH}}",
    "EOF\ntouch {mark}\nEOF",
    "<(touch {mark})",
    "> {mark}",
]

# Where an author may put a value: bare, in double quotes, in single quotes, after a
# backslash, inside $'...', in a loop, in a here-document, around other shell syntax.
TEMPLATES = [
    ("echo [{{ v }}]", "[{v}]"),
    ('echo "[{{ v }}]"', "[{v}]"),
    ("echo '[{{ v }}]'", "[{v}]"),
    ("echo [\\{{ v }}]", "[{v}]"),
    ('echo "[\\{{ v }}]"', "[{v}]"),
    ("printf '%s\\n' [{{ v }}] | cat", "[{v}]"),
    ("cat <<EOF\n[{{ v }}]\nEOF", "[{v}]"),
    ("cat <<-EOF\n\t[{{ v }}]\n\tEOF", "[{v}]"),
    ('x=[{{ v }}]; echo "$x"', "[{v}]"),
    ("{% for i in [1] %}echo [{{ v }}]{% endfor %}", "[{v}]"),
]


def run_sh(script: str, env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(
        ["/bin/sh", "-c", script],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=10,
    )
    return result.stdout


@pytest.mark.parametrize(("template", "expected"), TEMPLATES, ids=[t[0] for t in TEMPLATES])
def test_hostile_values_print_literally_in_every_quoting_context(
    template: str, expected: str, tmp_path: Path
) -> None:
    mark = tmp_path / "pwned"
    for payload in HOSTILE:
        value = payload.format(mark=mark)
        script, env = render_shell(template, {"v": value})
        assert value not in script or value in ("", "*", "-n")  # never in the text itself
        out = run_sh(script, env, tmp_path)
        assert not mark.exists(), (template, value, script)
        if template.startswith("echo [") and value == "-n":
            continue  # echo reads no options from a bracketed word; nothing to compare
        if "<<" in template and "\n" in value:
            continue  # a here-document line may not end early, but it may hold newlines
        assert out.rstrip("\n") == expected.format(v=value), (template, value, script)


def test_random_values_never_run_and_always_round_trip(tmp_path: Path) -> None:
    alphabet = "ab ;|&$(){}`'\"\\\n\t*?[]<>#!~=%-EOF"
    rng = random.Random(8)
    mark = tmp_path / "pwned"
    for _ in range(150):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        value += f"; touch {mark}"
        for template in ("printf %s {{ v }}", 'printf %s "{{ v }}"', "printf %s '{{ v }}'"):
            script, env = render_shell(template, {"v": value})
            out = subprocess.run(
                ["/bin/sh", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
            ).stdout
            assert out == value, (template, value, script)
    assert not mark.exists()


def test_the_authors_own_shell_syntax_still_works(tmp_path: Path) -> None:
    template = "echo {{ a }} | tr a-z A-Z && echo {{ b }}; for x in 1 2; do echo $x; done"
    script, env = render_shell(template, {"a": "shout; id", "b": "$(id)"})
    assert run_sh(script, env, tmp_path).splitlines() == ["SHOUT; ID", "$(id)", "1", "2"]


def test_a_quoted_heredoc_delimiter_refuses_values_rather_than_printing_a_reference() -> None:
    with pytest.raises(TemplateError, match="here-document with a quoted delimiter"):
        render_shell("cat <<'EOF'\n{{ v }}\nEOF", {"v": "x"})


def test_a_script_without_values_is_left_alone() -> None:
    assert render_shell("echo {not a template} $HOME", {}) == ("echo {not a template} $HOME", {})


def test_the_command_step_renders_strings_for_the_shell_and_argv_as_plain_text() -> None:
    context = {"params": {"who": "a b; c", "n": 3, "when-ever": None}}
    shell = command_step.render(
        {"command": "echo {{ params.who }}", "env": {"WHO": "{{ params.who }}"}}, context
    )
    assert shell["command"] == 'echo "${JOBPORT_VALUE_1}"'
    assert shell["env"] == {
        "JOBPORT_PARAM_WHO": "a b; c",
        "JOBPORT_PARAM_N": "3",
        "JOBPORT_PARAM_WHEN_EVER": "null",
        "WHO": "a b; c",
        "JOBPORT_VALUE_1": "a b; c",
    }
    argv = command_step.render({"command": ["echo", "{{ params.who }}"]}, context)
    assert argv["command"] == ["echo", "a b; c"]
    assert "JOBPORT_VALUE_1" not in argv["env"]
