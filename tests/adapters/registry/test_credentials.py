"""Pull credentials from Docker config files (`webhook.adapters.registry.credentials`): every
shape Kubernetes mounts, the keys a host may be written under, and a broken file named."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from webhook.adapters.registry.credentials import (
    Credentials,
    CredentialsError,
    credentials_from_dockerconfig,
)

# --- dockerconfigjson ---------------------------------------------------------------------------

HOST = "registry.example.com:5000"


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


DOCKERCONFIG_CASES: list[tuple[str, object, str, Credentials | None]] = [
    ("auth field", {"auths": {HOST: {"auth": _auth("u", "p")}}}, HOST, Credentials("u", "p")),
    ("username and password", {"auths": {HOST: {"username": "u", "password": "p"}}}, HOST,
     Credentials("u", "p")),
    ("https:// key", {"auths": {f"https://{HOST}": {"auth": _auth("u", "p")}}}, HOST,
     Credentials("u", "p")),
    ("https:// key with a path", {"auths": {f"https://{HOST}/v1/": {"auth": _auth("u", "p")}}},
     HOST, Credentials("u", "p")),
    ("key without the port", {"auths": {"registry.example.com": {"auth": _auth("u", "p")}}},
     HOST, None),
    ("key with another port", {"auths": {"registry.example.com:5001": {"auth": _auth("u", "p")}}},
     HOST, None),
    ("host without a port", {"auths": {"registry.example.com": {"auth": _auth("u", "p")}}},
     "registry.example.com", Credentials("u", "p")),
    ("case-insensitive host", {"auths": {"Registry.Example.COM:5000": {"auth": _auth("u", "p")}}},
     HOST, Credentials("u", "p")),
    ("docker hub's legacy key", {"auths": {"https://index.docker.io/v1/": {
        "auth": _auth("u", "p")}}}, "docker.io", Credentials("u", "p")),
    ("IPv4 host and port", {"auths": {"127.0.0.1:5000": {"auth": _auth("u", "p")}}},
     "127.0.0.1:5000", Credentials("u", "p")),
    ("password with colons", {"auths": {HOST: {"auth": _auth("u", "p:a:ss")}}}, HOST,
     Credentials("u", "p:a:ss")),
    ("auth without padding", {"auths": {HOST: {"auth": _auth("ab", "c").rstrip("=")}}}, HOST,
     Credentials("ab", "c")),
    ("exact key wins", {"auths": {f"https://{HOST}": {"auth": _auth("url", "p")},
                                  HOST: {"auth": _auth("exact", "p")}}}, HOST,
     Credentials("exact", "p")),
    ("legacy .dockercfg", {HOST: {"auth": _auth("u", "p"), "email": "x@y"}}, HOST,
     Credentials("u", "p")),
    ("other hosts only", {"auths": {"other:5000": {"auth": _auth("u", "p")}}}, HOST, None),
    ("empty auths", {"auths": {}}, HOST, None),
    ("credential helper only", {"auths": {HOST: {}}, "credsStore": "desktop"}, HOST, None),
    ("no auths at all", {"credHelpers": {HOST: "ecr-login"}}, HOST, None),
]


@pytest.mark.parametrize(("config", "host", "expected"),
                         [case[1:] for case in DOCKERCONFIG_CASES],
                         ids=[case[0] for case in DOCKERCONFIG_CASES])
def test_dockerconfig(config: object, host: str, expected: Credentials | None,
                      tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert credentials_from_dockerconfig(path, host) == expected


DOCKERCONFIG_ERRORS = [
    ("malformed JSON", "{\"auths\": ", "not valid JSON"),
    ("not an object", "[1, 2]", "expected a JSON object"),
    ("auths not an object", "{\"auths\": []}", "\"auths\" must be an object"),
    ("auth not base64", json.dumps({"auths": {HOST: {"auth": "@@@"}}}), "is not base64"),
    ("auth without a colon", json.dumps({"auths": {HOST: {"auth": base64.b64encode(
        b"justuser").decode()}}}), "does not decode to"),
    ("entry not an object", json.dumps({"auths": {HOST: "x"}}), "must be an object"),
]


@pytest.mark.parametrize(("text", "message"), [case[1:] for case in DOCKERCONFIG_ERRORS],
                         ids=[case[0] for case in DOCKERCONFIG_ERRORS])
def test_dockerconfig_errors_name_the_file(text: str, message: str, tmp_path: Path) -> None:
    """A broken file is a clear error (CredentialsError, a ConfigError), never a silent
    anonymous pull; a well-formed file without the host is None."""
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(CredentialsError) as info:
        credentials_from_dockerconfig(path, HOST)
    assert str(path) in str(info.value) and message in str(info.value)


def test_dockerconfig_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="cannot read"):
        credentials_from_dockerconfig(tmp_path / "absent.json", HOST)


def test_credentials_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(Credentials("me", "hunter2"))
