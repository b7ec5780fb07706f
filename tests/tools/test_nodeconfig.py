"""`kci-webhook node-config`: the hosts.toml it renders, the files it owns, the watch.

The rendered TOML is read back with the standard library's TOML parser (the format
containerd's go-toml reads); tests/tools/test_nodeconfig_runtime.py pulls through it with the real
containerd. Ownership is checked byte for byte on files another tool wrote.
"""

from __future__ import annotations

import ssl
import threading
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import eventually, free_port
from webhook import cli
from webhook.adapters.tls.issue import generate_ca
from webhook.core.config import Config, config_from_data
from webhook.core.errors import ConfigError
from webhook.tools.nodeconfig import (
    MARKER,
    Status,
    apply,
    owner,
    plan,
    run_once,
    serve_status,
    watch,
)
from webhook.tools.nodeconfig.files import ca_copy

CA_PEM = generate_ca(common_name="kci-node-config-test", days=2).cert_pem
OTHER_CA_PEM = generate_ca(common_name="kci-node-config-other", days=2).cert_pem


def tls_trusts(path: Path) -> bool:
    """The file loads as a CA bundle (as a TLS client reads it: text before BEGIN skipped)."""
    context = ssl.create_default_context(cafile=str(path))
    return bool(context.get_ca_certs())


def make_config(*mirrors: dict[str, Any]) -> Config:
    return config_from_data({"mirrors": list(mirrors)}, source="test")


def parsed(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


def files_of(config: Config, *, node_mirrors: bool = False) -> dict[str, dict[str, Any]]:
    return {d.name: parsed(d.hosts_toml) for d in plan(config, node_mirrors=node_mirrors).dirs}


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "mirror-ca.pem"
    path.write_bytes(CA_PEM)
    return path


# --- rendering ------------------------------------------------------------------------------


def test_an_https_mirror_with_a_ca_names_it_and_the_ca_copy(ca_file: Path) -> None:
    config = make_config({"endpoint": "https://mirror.example:5000/v2/team",
                          "hosts": ["docker.io"], "caFile": str(ca_file)})
    [entry] = plan(config).dirs
    assert entry.name == "mirror.example:5000"
    assert entry.cas == (("ca.crt", str(ca_file)),)
    assert entry.hosts_toml.startswith(MARKER + "\n")
    doc = parsed(entry.hosts_toml)
    # the pods the webhook rewrote pull mirror.example:5000/team/...: the host's root API
    assert doc["server"] == "https://mirror.example:5000"
    assert doc["ca"] == "ca.crt" and doc["capabilities"] == ["pull", "resolve"]
    assert doc["host"] == {"https://mirror.example:5000": {
        "capabilities": ["pull", "resolve"], "ca": "ca.crt"}}
    assert "skip_verify" not in entry.hosts_toml


def test_an_http_mirror_is_pulled_over_http_with_no_tls_settings(ca_file: Path) -> None:
    config = make_config({"endpoint": "http://10.0.0.5:5000", "hosts": ["gcr.io"],
                          "caFile": str(ca_file), "insecureSkipVerify": True})
    [entry] = plan(config).dirs
    doc = parsed(entry.hosts_toml)
    assert doc["server"] == "http://10.0.0.5:5000"
    assert list(doc["host"]) == ["http://10.0.0.5:5000"]
    assert entry.cas == ()
    assert "ca" not in doc and "skip_verify" not in doc["host"]["http://10.0.0.5:5000"]


@pytest.mark.parametrize("skip", [True, False])
def test_skip_verify_only_for_insecure_skip_verify(skip: bool) -> None:
    config = make_config({"endpoint": "https://m.example", "hosts": ["docker.io"],
                          "insecureSkipVerify": skip})
    doc = files_of(config)["m.example"]
    assert doc.get("skip_verify", False) is skip
    assert doc["host"]["https://m.example"].get("skip_verify", False) is skip


def test_no_credential_is_ever_written(tmp_path: Path) -> None:
    docker_config = tmp_path / "config.json"
    docker_config.write_text('{"auths": {"m.example": {"auth": "a2NpOnMzY3JldA=="}}}')
    config = make_config({"endpoint": "https://m.example/v2/ns", "hosts": ["docker.io"],
                          "pullSecret": "regcred",
                          "pullCredentialConfigPath": str(docker_config)})
    for entry in plan(config, node_mirrors=True).dirs:
        assert "regcred" not in entry.hosts_toml
        assert "a2NpOnMzY3JldA" not in entry.hosts_toml and "config.json" not in entry.hosts_toml
        assert "header" not in parsed(entry.hosts_toml)
        assert all("header" not in host for host in parsed(entry.hosts_toml)["host"].values())


def test_without_node_mirrors_only_mirror_hosts_are_written() -> None:
    config = make_config({"endpoint": "https://m.example/v2/ns", "hosts": ["docker.io",
                                                                           "gcr.io"]})
    assert set(files_of(config)) == {"m.example"}


def test_node_mirrors_list_the_mirror_with_its_namespace_then_the_source(ca_file: Path) -> None:
    config = make_config({"endpoint": "https://m.example:5000/v2/team/sub",
                          "hosts": ["docker.io", "gcr.io"], "caFile": str(ca_file)})
    docs = files_of(config, node_mirrors=True)
    assert set(docs) == {"m.example:5000", "docker.io", "gcr.io"}
    # containerd's own name for Docker Hub's API; gcr.io serves its API at its own name
    assert docs["docker.io"]["server"] == "https://registry-1.docker.io"
    assert docs["gcr.io"]["server"] == "https://gcr.io"
    assert docs["gcr.io"]["host"] == {"https://m.example:5000/v2/team/sub": {
        "capabilities": ["pull", "resolve"], "ca": "ca.crt", "override_path": True}}
    source = next(d for d in plan(config, node_mirrors=True).dirs if d.name == "gcr.io")
    assert source.role == "source" and source.cas == (("ca.crt", str(ca_file)),)


def test_a_mirror_at_the_root_needs_no_override_path() -> None:
    config = make_config({"endpoint": "m.example:5000", "hosts": ["quay.io"]})
    doc = files_of(config, node_mirrors=True)["quay.io"]
    assert doc["host"] == {"https://m.example:5000": {"capabilities": ["pull", "resolve"]}}


def test_several_mirrors_of_a_source_keep_config_order_and_their_own_cas(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pem", tmp_path / "b.pem"
    first.write_bytes(CA_PEM)
    second.write_bytes(OTHER_CA_PEM)
    config = make_config(
        {"endpoint": "https://b.example/v2/hub", "hosts": ["docker.io"], "caFile": str(first)},
        {"endpoint": "https://a.example", "hosts": ["docker.io"], "caFile": str(second)})
    source = next(d for d in plan(config, node_mirrors=True).dirs if d.name == "docker.io")
    doc = parsed(source.hosts_toml)
    assert list(doc["host"]) == ["https://b.example/v2/hub", "https://a.example"]
    assert source.hosts_toml.index("b.example") < source.hosts_toml.index("a.example")
    assert doc["host"]["https://b.example/v2/hub"]["ca"] == "ca.crt"
    assert doc["host"]["https://a.example"]["ca"] == "ca-2.crt"
    assert source.cas == (("ca.crt", str(first)), ("ca-2.crt", str(second)))


def test_a_plain_http_mirror_is_not_a_node_mirror_unless_credentials_over_http_are_allowed(
        ) -> None:
    plain = {"endpoint": "http://m.example:5000", "hosts": ["docker.io"]}
    refused = plan(make_config(plain), node_mirrors=True)
    assert refused.names() == {"m.example:5000"}
    assert "allowCredentialsOverHTTP" in refused.warnings[0]
    allowed = plan(make_config({**plain, "allowCredentialsOverHTTP": True}), node_mirrors=True)
    assert allowed.names() == {"m.example:5000", "docker.io"} and not allowed.warnings


def test_two_entries_for_one_host_must_agree(ca_file: Path) -> None:
    agreeing = make_config({"endpoint": "https://m.example/v2/a", "hosts": ["docker.io"]},
                           {"endpoint": "https://m.example/v2/b", "hosts": ["gcr.io"]})
    assert plan(agreeing).names() == {"m.example"}
    disagreeing = make_config(
        {"endpoint": "https://m.example/v2/a", "hosts": ["docker.io"]},
        {"endpoint": "https://m.example/v2/b", "hosts": ["gcr.io"], "caFile": str(ca_file)})
    with pytest.raises(ConfigError, match=r"mirrors\[1\]: m.example is also the host"):
        plan(disagreeing)


def test_only_validated_values_reach_the_file() -> None:
    """The loader strips an endpoint's surrounding whitespace but keeps the raw value: a
    newline in it must not end the comment line and break the TOML."""
    config = make_config({"endpoint": "https://m.example/v2/ns\n", "hosts": ["docker.io"]})
    for entry in plan(config, node_mirrors=True).dirs:
        assert parsed(entry.hosts_toml)  # the whole file is TOML: comments stayed comments
        assert entry.hosts_toml.count("\n#") == 1


# --- files ----------------------------------------------------------------------------------


def test_apply_writes_atomically_and_a_second_pass_changes_nothing(
        tmp_path: Path, ca_file: Path) -> None:
    root = tmp_path / "certs.d"
    root.mkdir()
    wanted = plan(make_config({"endpoint": "https://m.example/v2/ns", "hosts": ["docker.io"],
                               "caFile": str(ca_file)}), node_mirrors=True)
    first = apply(wanted, root)
    assert first.ok and sorted(first.written) == ["docker.io", "m.example"]
    # the CA as it was, after the marker line (PEM readers skip text before BEGIN)
    assert (root / "m.example" / "ca.crt").read_bytes() == ca_copy(CA_PEM)
    assert (root / "docker.io" / "ca.crt").read_bytes() == ca_copy(CA_PEM)
    assert tls_trusts(root / "m.example" / "ca.crt")
    assert (root / "m.example" / "hosts.toml").stat().st_mode & 0o777 == 0o644
    inode = (root / "m.example" / "hosts.toml").stat().st_ino
    second = apply(wanted, root)
    assert second.ok and second.written == [] and sorted(second.unchanged) == [
        "docker.io", "m.example"]
    assert (root / "m.example" / "hosts.toml").stat().st_ino == inode
    assert not list(root.rglob(".*.tmp"))


def test_a_foreign_hosts_toml_is_never_touched(tmp_path: Path) -> None:
    root = tmp_path / "certs.d"
    (root / "docker.io").mkdir(parents=True)
    foreign = b'server = "https://registry-1.docker.io"\n[host."https://other-mirror"]\n'
    (root / "docker.io" / "hosts.toml").write_bytes(foreign)
    (root / "docker.io" / "ca.crt").write_bytes(OTHER_CA_PEM)
    wanted = plan(make_config({"endpoint": "https://m.example", "hosts": ["docker.io"]}),
                  node_mirrors=True)
    outcome = apply(wanted, root)
    assert outcome.ok and outcome.foreign == ["docker.io"] and outcome.written == ["m.example"]
    assert "another tool" in outcome.warnings[0]
    assert (root / "docker.io" / "hosts.toml").read_bytes() == foreign
    assert (root / "docker.io" / "ca.crt").read_bytes() == OTHER_CA_PEM
    # and it is not removed when the config stops naming it
    apply(plan(make_config()), root)
    assert (root / "docker.io" / "hosts.toml").read_bytes() == foreign


def test_a_docker_style_certs_directory_is_foreign(tmp_path: Path) -> None:
    root = tmp_path / "certs.d"
    (root / "m.example").mkdir(parents=True)
    (root / "m.example" / "client.cert").write_bytes(b"someone's")
    assert owner(root / "m.example") == "foreign"
    outcome = apply(plan(make_config({"endpoint": "https://m.example", "hosts": ["gcr.io"]})),
                    root)
    assert outcome.foreign == ["m.example"]
    assert sorted(p.name for p in (root / "m.example").iterdir()) == ["client.cert"]


def test_our_ca_copy_alone_keeps_a_directory_ours_any_other_file_does_not(
        tmp_path: Path, ca_file: Path) -> None:
    root = tmp_path / "certs.d"
    root.mkdir()
    apply(plan(make_config({"endpoint": "https://m.example", "hosts": ["docker.io"],
                            "caFile": str(ca_file)})), root)
    (root / "m.example" / "hosts.toml").unlink()
    assert owner(root / "m.example") == "ours"
    (root / "m.example" / "client.cert").write_bytes(b"someone's")
    assert owner(root / "m.example") == "foreign"


def test_removing_a_mirror_removes_its_files_and_only_them(
        tmp_path: Path, ca_file: Path) -> None:
    root = tmp_path / "certs.d"
    root.mkdir()
    two = make_config({"endpoint": "https://a.example", "hosts": ["docker.io"],
                       "caFile": str(ca_file)},
                      {"endpoint": "https://b.example", "hosts": ["gcr.io"],
                       "caFile": str(ca_file)})
    assert apply(plan(two, node_mirrors=True), root).ok
    (root / "gcr.io" / "notes.txt").write_text("an operator's file")
    one = make_config({"endpoint": "https://a.example", "hosts": ["docker.io"],
                       "caFile": str(ca_file)})
    outcome = apply(plan(one, node_mirrors=True), root)
    assert outcome.ok and sorted(outcome.removed) == ["b.example", "gcr.io"]
    assert not (root / "b.example").exists()
    # our files went; the operator's file (and so the directory) stayed
    assert sorted(p.name for p in (root / "gcr.io").iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in root.iterdir()) == ["a.example", "docker.io", "gcr.io"]


def test_a_stale_ca_copy_goes_when_the_mirror_drops_its_ca(tmp_path: Path, ca_file: Path) -> None:
    root = tmp_path / "certs.d"
    root.mkdir()
    apply(plan(make_config({"endpoint": "https://m.example", "hosts": ["docker.io"],
                            "caFile": str(ca_file)})), root)
    apply(plan(make_config({"endpoint": "https://m.example", "hosts": ["docker.io"],
                            "insecureSkipVerify": True})), root)
    assert sorted(p.name for p in (root / "m.example").iterdir()) == ["hosts.toml"]


@pytest.mark.parametrize(("content", "reason"), [
    (CA_PEM + b"-----BEGIN PRIVATE KEY-----\nMII=\n-----END PRIVATE KEY-----\n",
     "private key"),
    (b"not a certificate", "no PEM certificate"),
    (None, "No such file"),
])
def test_a_bad_ca_leaves_the_hosts_files_as_they_were(
        tmp_path: Path, ca_file: Path, content: bytes | None, reason: str) -> None:
    root = tmp_path / "certs.d"
    root.mkdir()
    good = make_config({"endpoint": "https://m.example", "hosts": ["docker.io"],
                        "caFile": str(ca_file)})
    assert apply(plan(good), root).ok
    before = {p.name: p.read_bytes() for p in (root / "m.example").iterdir()}
    bad_ca = tmp_path / "bad.pem"
    if content is not None:
        bad_ca.write_bytes(content)
    bad = make_config({"endpoint": "https://m.example", "hosts": ["docker.io"],
                       "caFile": str(bad_ca)})
    outcome = apply(plan(bad), root)
    assert not outcome.ok and reason in outcome.errors[0]
    assert {p.name: p.read_bytes() for p in (root / "m.example").iterdir()} == before


def test_a_missing_hosts_directory_is_an_error(tmp_path: Path) -> None:
    outcome = apply(plan(make_config()), tmp_path / "absent")
    assert not outcome.ok and "not a directory" in outcome.errors[0]


# --- the command ----------------------------------------------------------------------------


def write_config(path: Path, *mirrors: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"mirrors": list(mirrors)}))
    return path


def test_command_exit_codes(tmp_path: Path, ca_file: Path,
                            caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "certs.d"
    root.mkdir()
    good = write_config(tmp_path / "good.yaml", {"endpoint": "https://m.example",
                                                 "hosts": ["docker.io"],
                                                 "caFile": str(ca_file)})
    assert cli.main(["node-config", "--config", str(good), "--hosts-dir", str(root),
                     "--node-mirrors"]) == 0
    assert sorted(p.name for p in root.iterdir()) == ["docker.io", "m.example"]
    missing_ca = write_config(tmp_path / "missing.yaml", {
        "endpoint": "https://m.example", "hosts": ["docker.io"],
        "caFile": str(tmp_path / "nope.pem")})
    assert cli.main(["node-config", "--config", str(missing_ca), "--hosts-dir",
                     str(root), "--node-mirrors"]) == 1
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("mirrors: [{endpoint: ftp://x, hosts: [docker.io]}]\n")
    assert cli.main(["node-config", "--config", str(invalid), "--hosts-dir", str(root)]) == 2
    assert "scheme 'ftp' is not http or https" in caplog.text
    assert cli.main(["node-config", "--config", str(tmp_path / "absent.yaml"),
                     "--hosts-dir", str(root)]) == 2
    # nothing of ours changed on a refused config
    assert sorted(p.name for p in root.iterdir()) == ["docker.io", "m.example"]
    assert cli.main(["node-config", "--clean", "--hosts-dir", str(root)]) == 0
    assert list(root.iterdir()) == []


def test_listen_goes_with_watch(tmp_path: Path) -> None:
    assert cli.main(["node-config", "--config", "x.yaml", "--hosts-dir", str(tmp_path),
                     "--listen", "127.0.0.1:1"]) == 2


# --- the watch ------------------------------------------------------------------------------


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[tuple[Path, Path, Status, str]]:
    """A watch over tmp config and hosts directory at a short interval, with its status
    endpoint; stopped at the end."""
    root, config = tmp_path / "certs.d", tmp_path / "config.yaml"
    root.mkdir()
    config.write_text("mirrors: []\n")
    status, stop = Status(), threading.Event()
    server = serve_status(status, ("127.0.0.1", free_port()))
    thread = threading.Thread(target=watch, kwargs={
        "once": lambda: run_once(config, root, node_mirrors=True), "interval": 0.05,
        "stop": stop, "status": status}, daemon=True)
    thread.start()
    try:
        yield root, config, status, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        thread.join(timeout=10)
        server.shutdown()
        server.server_close()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_watch_follows_the_config_and_ca_files_and_readiness_follows_failures(
        watching: tuple[Path, Path, Status, str], tmp_path: Path) -> None:
    root, config, status, url = watching
    ca = tmp_path / "ca.pem"
    ca.write_bytes(CA_PEM)
    write_config(config, {"endpoint": "https://m.example", "hosts": ["docker.io"],
                          "caFile": str(ca)})
    copy = root / "m.example" / "ca.crt"
    assert eventually(lambda: copy.exists() and copy.read_bytes() == ca_copy(CA_PEM))
    assert eventually(lambda: get(url + "/readyz")[0] == 200)
    # the CA file rotates in place: the copy follows
    ca.write_bytes(OTHER_CA_PEM)
    assert eventually(lambda: copy.read_bytes() == ca_copy(OTHER_CA_PEM))
    # a broken CA: not ready, the metric says so, the last good copy stays
    ca.write_bytes(b"garbage")
    assert eventually(lambda: get(url + "/readyz")[0] == 503)
    code, body = get(url + "/readyz")
    assert "no PEM certificate" in body
    assert "kci_node_config_ready 0.0" in get(url + "/metrics")[1]
    assert copy.read_bytes() == ca_copy(OTHER_CA_PEM)
    # a deleted file is written again; a mirror removed from the config goes
    ca.write_bytes(CA_PEM)
    assert eventually(lambda: get(url + "/readyz")[0] == 200)
    (root / "m.example" / "hosts.toml").unlink()
    assert eventually(lambda: (root / "m.example" / "hosts.toml").exists())
    write_config(config)
    assert eventually(lambda: list(root.iterdir()) == [])
    metrics = get(url + "/metrics")[1]
    assert "kci_node_config_ready 1.0" in metrics
    assert 'kci_node_config_changes_total{action="removed"}' in metrics
