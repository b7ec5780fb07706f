"""Every `kci-webhook` command's `--help`: what it does, its defaults, its exit codes.

The table is the parser itself: every subcommand (and any nested one) that `kci-webhook`
builds is found by walking it, so a command added later is held to the same rules.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from webhook import cli
from webhook.tools.helpformat import HelpFormatter, epilog, shows_default

COLUMNS = "80"


def commands(parser: argparse.ArgumentParser,
             path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(((*path, name), sub))
                found += commands(sub, (*path, name))
    return found


def flat(text: str) -> str:
    return " ".join(text.split())


ALL = commands(cli._parser())
EXPECTED = {"serve", "mutate", "plan", "certs", "doctor", "trust", "node-config"}
# every command that does the work, nested ones as "group command": the docs' table rows
DOCUMENTED = sorted(EXPECTED | {"config check"})


def test_the_table_holds_every_command() -> None:
    assert {path[0] for path, _ in ALL} >= EXPECTED


@pytest.fixture
def columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", COLUMNS)


@pytest.mark.parametrize(("path", "parser"), ALL, ids=[" ".join(p) for p, _ in ALL])
def test_help_has_a_description_defaults_and_exit_codes(
        path: tuple[str, ...], parser: argparse.ArgumentParser, columns: None) -> None:
    text = parser.format_help()
    assert parser.description and len(parser.description.split()) >= 10, \
        "a paragraph that says what the command does"
    assert flat(parser.description.split("\n\n")[0]) in flat(text)
    codes = re.findall(r"^  (\d)  \S", text.split("exit codes:", 1)[-1], re.M)
    assert "exit codes:" in text and {"0", "2"} <= set(codes), text
    for action in parser._actions:
        if shows_default(action):
            assert f"(default: {action.default})" in flat(text), (action.dest, text)


@pytest.mark.parametrize("name", DOCUMENTED)
def test_help_of_the_installed_command(name: str) -> None:
    """The same through `python -m webhook NAME --help`, as a user runs it."""
    result = subprocess.run([sys.executable, "-m", "webhook", *name.split(), "--help"],
                            cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False,
                            env={"PATH": "/usr/bin:/bin", "COLUMNS": COLUMNS})
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(f"usage: kci-webhook {name}")
    assert "\nexit codes:\n  0  " in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()
               if not line.startswith("  kci")) <= int(COLUMNS)


# --- the formatter itself ------------------------------------------------------------------


def parser_with(*options: tuple[str, dict[str, object]]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter,
                                     description="One. Two three.\n\nSecond paragraph.",
                                     epilog=epilog({0: "fine", 2: "bad arguments " * 8},
                                                   ["x --a \\\n| y"]))
    for flag, kwargs in options:
        parser.add_argument(flag, **kwargs)  # type: ignore[arg-type]
    return parser


@pytest.mark.parametrize(("flag", "kwargs", "shown"), [
    pytest.param("--port", {"type": int, "default": 8443}, "(default: 8443)",
                 id="no-help-text-still-shows-it"),
    pytest.param("--out", {"default": "certs", "help": "directory"},
                 "directory (default: certs)", id="appended"),
    pytest.param("--n", {"default": 3, "help": "count (default: three)"},
                 "count (default: three)", id="stated-by-hand-once"),
    pytest.param("--on", {"action": "store_true", "help": "switch"}, None, id="off-switch"),
    pytest.param("--x", {"default": None, "help": "none"}, None, id="no-default"),
    pytest.param("--many", {"action": "append", "default": [], "help": "list"}, None,
                 id="empty-list"),
])
def test_defaults_are_shown_once_when_they_mean_something(
        flag: str, kwargs: dict[str, object], shown: str | None, columns: None) -> None:
    text = flat(parser_with((flag, kwargs)).format_help())
    if shown is None:
        assert "(default:" not in text
    else:
        assert shown in text and text.count("(default:") == 1


def test_paragraphs_are_wrapped_and_tables_kept(columns: None) -> None:
    text = parser_with().format_help()
    assert "One. Two three.\n\nSecond paragraph." in text
    rows = text.split("exit codes:\n", 1)[1].splitlines()
    assert rows[0] == "  0  fine"
    assert rows[1].startswith("  2  bad arguments") and rows[2].startswith("     arguments")
    assert "  x --a \\\n      | y" in text


@pytest.mark.parametrize(("path", "parser"), ALL, ids=[" ".join(p) for p, _ in ALL])
def test_no_option_states_its_default_twice(
        path: tuple[str, ...], parser: argparse.ArgumentParser, columns: None) -> None:
    # The formatter appends "(default: …)"; a help text that says it again by hand
    # ("(default 7 MiB) (default: 7340032)") reads as two different defaults.
    formatter = parser._get_formatter()
    for action in parser._actions:
        text = formatter._expand_help(action) if action.help else ""
        assert text.count("(default") <= 1, (action.dest, text)


def documented_exit_codes() -> dict[str, dict[str, str]]:
    """The table of exit codes in docs/tools.md: command → code → meaning."""
    text = (ROOT / "docs" / "tools.md").read_text()
    rows = re.findall(r"^\| `([\w -]+)` \| (.+) \|$", text, re.M)
    return {command: {str(code): " ".join(cell.replace("`", "").split())
                      for code, cell in enumerate(cells.split("|")) if cell.strip()}
            for command, cells in rows}


@pytest.mark.parametrize("name", DOCUMENTED)
def test_the_docs_give_the_exit_codes_help_gives(name: str) -> None:
    parser = dict((path, p) for path, p in ALL)[tuple(name.split())]
    assert parser.epilog
    block = parser.epilog.split("exit codes:\n", 1)[1].split("\n\n", 1)[0]
    codes = dict(re.findall(r"^  (\d+)  (.+)$", block, re.M))
    assert documented_exit_codes()[name] == codes
