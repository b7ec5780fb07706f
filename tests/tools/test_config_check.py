"""One validator: `serve`, `mutate --config` and `config check` refuse the same configs,
with the same words, each with its own exit code; a file the config names that is not on
the machine running the check is a warning, or with `--files` the error `serve` gives.

Every command runs as a user runs it (`python -m webhook ...`), in a directory of its own
holding the config and the files it names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.server.test_operations import free_port
from webhook.adapters.tls.issue import ensure_dev_certificates

PREFIX = {"serve": "kci-webhook: invalid configuration:\n",
          "mutate": "kci-webhook mutate: invalid configuration:\n",
          "check": "kci-webhook config check: invalid configuration:\n"}
REFUSED_EXIT = {"serve": 2, "mutate": 2, "check": 1}

REFUSED = [
    # (id, config, files beside it, what the problem lines say)
    ("endpoint-scheme-ftp",
     "mirrors: [{endpoint: 'ftp://m.example', hosts: [docker.io]}]", {},
     ["config.yaml: mirrors[0].endpoint: scheme 'ftp' is not http or https"]),
    ("endpoint-host-is-its-own-source",
     "mirrors: [{endpoint: 'https://m.example:5000/v2/ns', hosts: [docker.io, "
     "'m.example:5000']}]", {},
     ["config.yaml: mirrors[0]: endpoint host 'm.example:5000' is also a source in "
      "mirrors[0].hosts; images rewritten to it would be rewritten again (a cycle). "
      "Remove it from hosts"]),
    ("budget-over-the-default-timeout", "mirrorChecks: {budgetSeconds: 4.5}", {},
     ["config.yaml: mirrorChecks.budgetSeconds: 4.5 s leaves too little of the webhook's 5 s "
      "timeout (timeoutSeconds; the server's --webhook-timeout) for the rest of the "
      "request: at most 4 s"]),
    ("credentials-not-json",
     "mirrors: [{endpoint: 'https://m.example', hosts: [a.io], "
     "pullCredentialConfigPath: creds.json}]", {"creds.json": "{"},
     ["config.yaml: mirrors[0].pullCredentialConfigPath (creds.json = {dir}/creds.json): "
      "not valid JSON"]),
    ("ca-file-not-a-certificate",
     "mirrors: [{endpoint: 'https://m.example', hosts: [a.io], caFile: ca.crt}]",
     {"ca.crt": "not a certificate\n"},
     ["config.yaml: mirrors[0].caFile (ca.crt = {dir}/ca.crt): cannot load a PEM "
      "certificate: no certificate in it"]),
    ("every-problem-at-once",
     "onInvalid: maybe\nmirrors: [{endpoint: 'ftp://m.example', hosts: [docker.io]}]\n"
     "mirrorChecks: {budgetSeconds: 4.5}\nexclude: {namespaces: [Not_A_Name]}", {},
     ["config.yaml: onInvalid: ", "config.yaml: mirrors[0].endpoint: scheme 'ftp'",
      "config.yaml: exclude.namespaces[0]: ", "config.yaml: mirrorChecks.budgetSeconds: "]),
]

ABSENT_CA = "mirrors: [{endpoint: 'https://m.example', hosts: [a.io], caFile: ca.crt}]"
ABSENT_LINE = "config.yaml: mirrors[0].caFile (ca.crt = {dir}/ca.crt): not found on this machine"


def command(name: str, *extra: str) -> list[str]:
    base = [sys.executable, "-m", "webhook"]
    if name == "serve":
        return [*base, "serve", "--host", "127.0.0.1", "--port", str(free_port()),
                "--config", "config.yaml", *extra]
    if name == "mutate":
        return [*base, "mutate", "-f", "pod.yaml", "--config", "config.yaml", *extra]
    return [*base, "config", "check", "config.yaml", *extra]


def run(name: str, where: Path, *extra: str,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KCI_")}
    environ["PYTHONPATH"] = str(ROOT)
    return subprocess.run(command(name, *extra), cwd=where, env=environ | (env or {}),
                          capture_output=True, text=True, timeout=60, check=False)


def setup(where: Path, config: str, files: dict[str, str]) -> None:
    (where / "config.yaml").write_text(config)
    (where / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
                                    "spec: {containers: [{name: c, image: nginx}]}\n")
    for name, text in files.items():
        (where / name).write_text(text)


def problem_lines(stderr: str, name: str) -> list[str]:
    assert PREFIX[name] in stderr, stderr
    return stderr.split(PREFIX[name], 1)[1].strip().splitlines()


@pytest.mark.parametrize(("config", "files", "expected"), [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_serve_mutate_and_config_check_refuse_it_with_the_same_words(
        tmp_path: Path, config: str, files: dict[str, str], expected: list[str]) -> None:
    setup(tmp_path, config, files)
    said = {}
    for name in ("serve", "mutate", "check"):
        done = run(name, tmp_path)
        assert done.returncode == REFUSED_EXIT[name], (name, done.stderr)
        assert done.stdout == "", name
        said[name] = problem_lines(done.stderr, name)
    assert said["serve"] == said["mutate"] == said["check"]
    lines = said["check"]
    assert len(lines) == len(expected)
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start.format(dir=tmp_path)), (line, start)
    assert not (tmp_path / "certs").exists()      # serve refused before making anything


def test_a_file_absent_here_is_a_warning_without_files_and_serves_error_with_it(
        tmp_path: Path) -> None:
    setup(tmp_path, ABSENT_CA, {})
    line = ABSENT_LINE.format(dir=tmp_path)
    check = run("check", tmp_path)
    assert check.returncode == 0, check.stderr
    assert check.stdout == "config.yaml: valid\n"
    assert f"kci-webhook config check: warning: {line}" in check.stderr
    mutate = run("mutate", tmp_path)
    assert mutate.returncode == 0, mutate.stderr
    assert f"kci-webhook mutate: warning: {line}" in mutate.stderr
    assert "kind: Pod" in mutate.stdout
    strict = {name: run(name, tmp_path, *(() if name == "serve" else ("--files",)))
              for name in ("serve", "mutate", "check")}
    for name, done in strict.items():
        assert done.returncode == REFUSED_EXIT[name], (name, done.stderr)
        assert problem_lines(done.stderr, name) == [line], name


def test_a_valid_config_with_its_files_passes_all_three_checks(tmp_path: Path) -> None:
    _cert, _key, ca = ensure_dev_certificates(tmp_path / "made")
    setup(tmp_path, f"mirrors: [{{endpoint: 'https://m.example', hosts: [docker.io], "
                    f"caFile: '{ca}'}}]", {})
    check = run("check", tmp_path, "--files")
    assert (check.returncode, check.stdout, check.stderr) == (0, "config.yaml: valid\n", "")
    mutate = run("mutate", tmp_path, "--files")
    assert mutate.returncode == 0 and "m.example/library/nginx" in mutate.stdout, mutate.stderr


@pytest.mark.parametrize(("extra", "env", "code"), [
    pytest.param(("--webhook-timeout", "6"), {}, 0, id="flag-makes-room"),
    pytest.param((), {"KCI_WEBHOOK_TIMEOUT_SECONDS": "6"}, 0, id="environment-makes-room"),
    pytest.param(("--webhook-timeout", "5"), {"KCI_WEBHOOK_TIMEOUT_SECONDS": "6"}, 1,
                 id="flag-over-environment"),
])
def test_the_budget_is_checked_against_the_timeout_serve_would_be_given(
        tmp_path: Path, extra: tuple[str, ...], env: dict[str, str], code: int) -> None:
    setup(tmp_path, "mirrorChecks: {budgetSeconds: 4.5}", {})
    done = run("check", tmp_path, *extra, env=env)
    assert done.returncode == code, done.stderr
    if code:       # serve, given the same timeout the same way, refuses it too
        served = run("serve", tmp_path, *extra, env=env)
        assert served.returncode == 2
        assert problem_lines(served.stderr, "serve") == problem_lines(done.stderr, "check")


@pytest.mark.parametrize(("args", "fragment"), [
    pytest.param(("missing.yaml",), "missing.yaml: cannot read: No such file or directory",
                 id="unreadable"),
    pytest.param((".",), ".: cannot read: Is a directory", id="a-directory"),
    pytest.param(("config.yaml", "--webhook-timeout", "31"),
                 "--webhook-timeout: expected whole seconds from 1 to 30", id="bad-timeout"),
    pytest.param((), "the following arguments are required: FILE", id="no-file"),
])
def test_unreadable_or_bad_arguments_exit_2(tmp_path: Path, args: tuple[str, ...],
                                            fragment: str) -> None:
    setup(tmp_path, "", {})
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KCI_")}
    done = subprocess.run([sys.executable, "-m", "webhook", "config", "check", *args],
                          cwd=tmp_path, env=environ | {"PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert fragment in done.stderr


def test_config_with_no_command_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "webhook", "config"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "a command is needed: check" in done.stderr
