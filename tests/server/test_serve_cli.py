"""The top-level command and `serve`'s drain arguments (the drain itself: test_rotation)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import ROOT
from webhook import cli
from webhook.server.drain import DEFAULT_SHUTDOWN_DELAY, Drain
from webhook.server.settings import Settings


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"kci-webhook {metadata.version('kci-webhook')}\n"


@pytest.mark.parametrize(("argv", "environ", "expected"), [
    pytest.param([], {}, DEFAULT_SHUTDOWN_DELAY, id="default"),
    pytest.param(["--shutdown-delay", "0"], {}, 0.0, id="zero-stops-at-once"),
    pytest.param(["--shutdown-delay", "2.5"], {}, 2.5, id="fraction"),
    pytest.param([], {"KCI_WEBHOOK_SHUTDOWN_DELAY": "12"}, 12.0, id="from-the-environment"),
    pytest.param(["--shutdown-delay", "1"], {"KCI_WEBHOOK_SHUTDOWN_DELAY": "12"}, 1.0,
                 id="flag-beats-environment"),
])
def test_shutdown_delay_is_read_from_flag_or_environment(
        monkeypatch: pytest.MonkeyPatch, argv: list[str], environ: dict[str, str],
        expected: float) -> None:
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    args = cli._parser().parse_args(["serve", *argv])
    assert args.shutdown_delay == expected


@pytest.mark.parametrize("value", [
    pytest.param("-1", id="negative"),
    pytest.param("soon", id="not-a-number"),
    pytest.param("nan", id="nan"),
    pytest.param("inf", id="infinite"),
    pytest.param("3601", id="over-an-hour"),
])
def test_a_bad_shutdown_delay_is_refused_with_a_clear_message(
        value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli._parser().parse_args(["serve", "--shutdown-delay", value])
    assert done.value.code == 2
    assert "--shutdown-delay" in capsys.readouterr().err


def test_workers_read_the_delay_from_the_environment() -> None:
    settings = Settings.from_environ({"KCI_WEBHOOK_SHUTDOWN_DELAY": "7.5"})
    assert settings.shutdown_delay == 7.5
    assert Settings.from_environ({}).shutdown_delay == DEFAULT_SHUTDOWN_DELAY


def test_the_drain_starts_once() -> None:
    drain = Drain(1.0)
    assert not drain.active
    assert drain.begin() is True and drain.active
    assert drain.begin() is False


def test_no_signal_handler_is_taken_outside_the_main_thread() -> None:
    """An app run by a test client starts its lifespan in another thread: no handler."""
    taken: list[bool] = []
    thread = threading.Thread(target=lambda: taken.append(
        Drain().take_over_sigterm(None)))  # type: ignore[arg-type]
    thread.start()
    thread.join(10)
    assert taken == [False]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_config_warnings_are_logged_and_a_taken_port_exits_as_help_says(
        tmp_path: Path, workers: str) -> None:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KCI_", "KUBECONFIG"))}
    # a config with a warning: said at load, before the port is even tried
    (tmp_path / "config.yaml").write_text(
        "mirrors:\n- {endpoint: m.example, hosts: [docker.io]}\n"
        "- {endpoint: n.example, hosts: [docker.io]}\n")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "webhook", "serve", "--host", "127.0.0.1", "--port",
             str(port), "--workers", workers, "--log-format", "text", "--config",
             "config.yaml"],
            cwd=tmp_path, env={**env, "HOME": str(tmp_path)}, capture_output=True, text=True,
            timeout=60, check=False)
    finally:
        held.close()
    assert result.returncode == cli.EXIT_CANNOT_LISTEN, result.stderr
    assert "address already in use" in result.stderr.lower()
    assert "WARNING kci-webhook config.yaml: mirrors[1].hosts: docker.io is also listed by " \
           "mirrors[0]" in result.stderr
    help_text = " ".join(cli._parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
                         .choices["serve"].format_help().split())
    assert f"{cli.EXIT_CANNOT_LISTEN} the server could not start listening (e.g. the port is " \
           "taken)" in help_text


ENVIRONMENT_TABLE = re.compile(r"^\| `(KCI_WEBHOOK_\w+)` \| (?:default of `(--[\w-]+)`|the "
                               r"(?:config file|kubeconfig)[^|]*when `(--[\w-]+)`)", re.M)


def test_serve_help_names_every_variable_the_configuration_docs_list(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    table = ENVIRONMENT_TABLE.findall((ROOT / "docs" / "configuration.md").read_text())
    assert len(table) >= 7, table
    serve = cli._parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    options = {o: a for a in serve._actions for o in a.option_strings}
    text = serve.format_help()
    for variable, flag, other_flag in table:
        option = options[flag or other_flag]
        line = next(line for line in text.split("\n  -")
                    if line.lstrip("-").startswith(option.option_strings[-1].lstrip("-")))
        assert f"(env: ${variable})" in " ".join(line.split()), (variable, line)
