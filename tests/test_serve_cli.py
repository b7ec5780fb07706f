"""The top-level command and `serve`'s drain arguments (the drain itself: test_rotation)."""

from __future__ import annotations

import threading
from importlib import metadata

import pytest

from webhook import cli
from webhook.drain import DEFAULT_SHUTDOWN_DELAY, Drain
from webhook.server import Settings


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
