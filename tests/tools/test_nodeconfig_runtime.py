"""What `kci-webhook node-config` writes, pulled through by the real containerd.

containerd (Debian's package, started by the fixture under a temporary root) pulls with
`ctr images pull --hosts-dir DIR` from real registries (Debian's docker-registry, started
by tests/registry_support.py) with CAs of the tests' own:

- `mirror`: TLS (the mirror CA) and htpasswd; `kci/app:1.0`, and `mirror-ns/kci/app:1.0`
  as a namespace mirror of the source;
- `source`: TLS with another CA, no auth, standing for a public registry; the nodes trust
  it as they trust public CAs (here `ctr --tlscacert`, the trust for hosts no hosts.toml
  gives a CA); `kci/app:1.0` (another image than the mirror's) and `kci/only-source:1.0`;
- `plain`: plain HTTP, no auth; `kci/app:1.0`.

They are reached by this machine's host name, not 127.0.0.1: containerd would assume plain
HTTP without verification for a loopback address that no hosts.toml names.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import eventually, free_port, terminate
from tests.containerd_support import (
    Containerd,
    containerd_fixture,  # noqa: F401
    node_name,
    require_containerd,
)
from tests.registry_support import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    RecordingServer,
    Registry,
    make_pki,
    push_image,
    start_registry,
)
from webhook import cli
from webhook.tools.nodeconfig.files import ca_copy

USER = f"{DEFAULT_USER}:{DEFAULT_PASSWORD}"
X509 = "x509: certificate signed by unknown authority"
NAMESPACE = "mirror-ns"


@dataclass
class Registries:
    mirror: Registry
    source: Registry
    plain: Registry
    digests: dict[str, str]

    def stop(self) -> None:
        for registry in (self.mirror, self.source, self.plain):
            registry.stop()


@pytest.fixture(scope="session")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    """The three registries, started once (each start and push takes about a second)."""
    require_containerd()
    name, address = node_name()
    root = tmp_path_factory.mktemp("node-registries")
    mirror = start_registry(root / "mirror", name=name, address=address,
                            pki=make_pki(root / "mirror-pki", common_name="kci-mirror-ca",
                                         dns_names=(name,)))
    source = start_registry(root / "source", auth=False, name=name, address=address,
                            pki=make_pki(root / "source-pki", common_name="kci-source-ca",
                                         dns_names=(name,)))
    plain = start_registry(root / "plain", tls=False, auth=False, name=name, address=address)
    running = Registries(mirror, source, plain, {})
    try:
        running.digests.update({
            "mirror/kci/app": push_image(mirror, "kci/app", "1.0"),
            "mirror/ns/kci/app": push_image(mirror, f"{NAMESPACE}/kci/app", "1.0"),
            "source/kci/app": push_image(source, "kci/app", "1.0"),
            "source/kci/only-source": push_image(source, "kci/only-source", "1.0"),
            "plain/kci/app": push_image(plain, "kci/app", "1.0"),
        })
        yield running
    finally:
        running.stop()


@pytest.fixture
def hosts_dir(tmp_path: Path) -> Path:
    path = tmp_path / "certs.d"
    path.mkdir()
    return path


def write_config(path: Path, *mirrors: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"mirrors": list(mirrors)}))
    return path


def node_config(config: Path, hosts_dir: Path, *flags: str) -> int:
    return cli.main(["node-config", "--config", str(config), "--hosts-dir", str(hosts_dir),
                     *flags])


def mirror_entry(registry: Registry, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"endpoint": registry.url, "hosts": ["docker.io"]}
    if registry.pki is not None:
        entry["caFile"] = str(registry.pki.ca_file)
    entry.update(extra)
    return {k: v for k, v in entry.items() if v is not None}


def test_without_the_config_the_pull_fails_with_x509_and_with_it_succeeds(
        containerd: Containerd, registries: Registries, hosts_dir: Path,
        tmp_path: Path) -> None:
    mirror = registries.mirror
    ref = f"{mirror.host}/kci/app:1.0"
    before = containerd.pull(ref, hosts_dir=hosts_dir, user=USER)
    assert not before.ok and X509 in before.output, before.output
    assert node_config(write_config(tmp_path / "config.yaml", mirror_entry(mirror)),
                       hosts_dir) == 0
    after = containerd.pull(ref, hosts_dir=hosts_dir, user=USER)
    assert after.ok, after.output
    assert containerd.digest(after) == registries.digests["mirror/kci/app"]


def test_credentials_given_to_ctr_reach_the_tls_registry(
        containerd: Containerd, registries: Registries, hosts_dir: Path,
        tmp_path: Path) -> None:
    mirror = registries.mirror
    assert node_config(write_config(tmp_path / "config.yaml", mirror_entry(
        mirror, pullSecret="mirror-pull")), hosts_dir) == 0
    # the files say nothing of credentials: the pull secret stays with the kubelet
    for path in hosts_dir.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert DEFAULT_PASSWORD not in text and "mirror-pull" not in text
    ref = f"{mirror.host}/kci/app:1.0"
    anonymous = containerd.pull(ref, hosts_dir=hosts_dir)
    assert not anonymous.ok and "401 Unauthorized" in anonymous.output, anonymous.output
    assert containerd.pull(ref, hosts_dir=hosts_dir, user=USER).ok


def test_a_ca_that_rotates_is_used_at_the_next_pull_with_no_restart(
        containerd: Containerd, hosts_dir: Path, tmp_path: Path) -> None:
    name, address = node_name()
    old = make_pki(tmp_path / "old-pki", common_name="kci-old-ca", dns_names=(name,))
    new = make_pki(tmp_path / "new-pki", common_name="kci-new-ca", dns_names=(name,))
    # the registry's certificate is already issued by the new CA; nodes still trust the old
    with start_registry(tmp_path / "rotated", auth=False, pki=new, name=name,
                        address=address) as registry:
        push_image(registry, "kci/rotated", "1.0")
        ca = tmp_path / "ca-bundle.pem"
        ca.write_bytes(old.ca.cert_pem)
        config = write_config(tmp_path / "config.yaml", mirror_entry(registry, caFile=str(ca)))
        port = free_port()
        watch = subprocess.Popen(
            [sys.executable, "-m", "webhook", "node-config", "--config", str(config),
             "--hosts-dir", str(hosts_dir), "--watch", "--interval", "0.2",
             "--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            copy = hosts_dir / registry.host / "ca.crt"
            assert eventually(lambda: copy.exists()
                              and copy.read_bytes() == ca_copy(old.ca.cert_pem))
            ref = f"{registry.host}/kci/rotated:1.0"
            stale = containerd.pull(ref, hosts_dir=hosts_dir)
            assert not stale.ok and X509 in stale.output, stale.output
            # the rotation: the CA file holds old and new; the watch copies it
            ca.write_bytes(old.ca.cert_pem + new.ca.cert_pem)
            assert eventually(lambda: copy.read_bytes() == ca_copy(ca.read_bytes()))
            daemon = containerd.process.pid
            rotated = containerd.pull(ref, hosts_dir=hosts_dir)
            assert rotated.ok, rotated.output
            assert containerd.process.pid == daemon and containerd.process.poll() is None
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            assert ready.status_code == 200
        finally:
            terminate(watch)


def test_an_http_mirror(containerd: Containerd, registries: Registries, hosts_dir: Path,
                        tmp_path: Path) -> None:
    plain = registries.plain
    ref = f"{plain.host}/kci/app:1.0"
    before = containerd.pull(ref, hosts_dir=hosts_dir)
    assert not before.ok and "server gave HTTP response to HTTPS client" in before.output, \
        before.output
    assert node_config(write_config(tmp_path / "config.yaml", mirror_entry(plain)),
                       hosts_dir) == 0
    after = containerd.pull(ref, hosts_dir=hosts_dir)
    assert after.ok, after.output
    assert containerd.digest(after) == registries.digests["plain/kci/app"]


def test_insecure_skip_verify(containerd: Containerd, registries: Registries, hosts_dir: Path,
                              tmp_path: Path) -> None:
    mirror = registries.mirror
    assert node_config(write_config(tmp_path / "config.yaml", mirror_entry(
        mirror, caFile=None, insecureSkipVerify=True)), hosts_dir) == 0
    assert not (hosts_dir / mirror.host / "ca.crt").exists()
    pulled = containerd.pull(f"{mirror.host}/kci/app:1.0", hosts_dir=hosts_dir, user=USER)
    assert pulled.ok, pulled.output


def answers(registry: Registry, method: str, path: str) -> list[int]:
    """The statuses `registry` answered `METHOD PATH` with, from its access log; containerd
    adds `?ns=<source host>` to what it asks a mirror, so the query is ignored."""
    found = []
    for line in registry.access_lines():
        request, _, rest = line.partition('"')[2].partition('"')
        verb, _, target = request.partition(" ")
        if verb == method and target.split(" ")[0].split("?")[0] == path:
            found.append(int(rest.split()[0]))
    return found


def source_mirror_config(registries: Registries, path: Path, **extra: Any) -> Path:
    return write_config(path, mirror_entry(
        registries.mirror, endpoint=f"{registries.mirror.url}/v2/{NAMESPACE}",
        hosts=[registries.source.host], **extra))


def test_node_mirrors_serve_the_source_from_the_mirror_namespace(
        containerd: Containerd, registries: Registries, hosts_dir: Path,
        tmp_path: Path) -> None:
    source, mirror = registries.source, registries.mirror
    assert source.pki is not None
    assert node_config(source_mirror_config(registries, tmp_path / "config.yaml"), hosts_dir,
                       "--node-mirrors") == 0
    manifest = f"/v2/{NAMESPACE}/kci/app/manifests/1.0"
    served = answers(mirror, "HEAD", manifest).count(200)
    asked = len(answers(source, "HEAD", "/v2/kci/app/manifests/1.0"))
    pulled = containerd.pull(f"{source.host}/kci/app:1.0", hosts_dir=hosts_dir, user=USER,
                             tlscacert=source.pki.ca_file)
    assert pulled.ok, pulled.output
    assert containerd.digest(pulled) == registries.digests["mirror/ns/kci/app"]
    assert eventually(lambda: answers(mirror, "HEAD", manifest).count(200) == served + 1)
    assert len(answers(source, "HEAD", "/v2/kci/app/manifests/1.0")) == asked


def test_node_mirrors_fall_back_to_the_source_when_the_mirror_lacks_the_image(
        containerd: Containerd, registries: Registries, hosts_dir: Path,
        tmp_path: Path) -> None:
    source, mirror = registries.source, registries.mirror
    assert source.pki is not None
    assert node_config(source_mirror_config(registries, tmp_path / "config.yaml"), hosts_dir,
                       "--node-mirrors") == 0
    manifest = f"/v2/{NAMESPACE}/kci/only-source/manifests/1.0"
    missed = answers(mirror, "HEAD", manifest).count(404)
    pulled = containerd.pull(f"{source.host}/kci/only-source:1.0", hosts_dir=hosts_dir,
                             user=USER, tlscacert=source.pki.ca_file)
    assert pulled.ok, pulled.output
    assert containerd.digest(pulled) == registries.digests["source/kci/only-source"]
    # asked the mirror first, which had no such image
    assert eventually(lambda: answers(mirror, "HEAD", manifest).count(404) == missed + 1)


def test_a_plain_http_node_mirror_never_receives_the_nodes_credentials(
        containerd: Containerd, registries: Registries, hosts_dir: Path,
        tmp_path: Path) -> None:
    """containerd answers any registry's Basic challenge with the pull's credentials,
    plain HTTP or not: an http:// mirror of a source is written only when the config
    accepts credentials over HTTP for it, and then it does get them."""
    source = registries.source
    assert source.pki is not None
    challenges = {"www-authenticate": 'Basic realm="kci-test"'}
    with RecordingServer(lambda request: (404, {}, b"") if "authorization" in request["headers"]
                         else (401, challenges, b"")) as recorder:
        entry = {"endpoint": recorder.url, "hosts": [source.host]}
        config = write_config(tmp_path / "refused.yaml", entry)
        assert node_config(config, hosts_dir, "--node-mirrors") == 0
        assert not (hosts_dir / source.host).exists()
        refused = containerd.pull(f"{source.host}/kci/app:1.0", hosts_dir=hosts_dir, user=USER,
                                  tlscacert=source.pki.ca_file)
        assert refused.ok and recorder.requests == []
        allowed = write_config(tmp_path / "allowed.yaml",
                               {**entry, "allowCredentialsOverHTTP": True})
        assert node_config(allowed, hosts_dir, "--node-mirrors") == 0
        through = containerd.pull(f"{source.host}/kci/app:1.0", hosts_dir=hosts_dir, user=USER,
                                  tlscacert=source.pki.ca_file)
        assert through.ok, through.output  # the mirror said 404: the source served it
        sent = {r["headers"].get("authorization") for r in recorder.requests}
        assert "Basic " + base64.b64encode(USER.encode()).decode() in sent


def test_ownership_a_foreign_hosts_toml_stays_and_a_removed_mirror_goes(
        containerd: Containerd, registries: Registries, hosts_dir: Path,
        tmp_path: Path) -> None:
    source, mirror = registries.source, registries.mirror
    assert source.pki is not None and mirror.pki is not None
    # another tool configured the mirror's host (its CA under its own file name)
    foreign_dir = hosts_dir / mirror.host
    foreign_dir.mkdir()
    shutil.copy(mirror.pki.ca_file, foreign_dir / "other-tool.crt")
    foreign = (f'server = "https://{mirror.host}"\n[host."https://{mirror.host}"]\n'
               '  ca = "other-tool.crt"\n').encode()
    (foreign_dir / "hosts.toml").write_bytes(foreign)
    config = source_mirror_config(registries, tmp_path / "config.yaml")
    assert node_config(config, hosts_dir, "--node-mirrors") == 0
    assert (foreign_dir / "hosts.toml").read_bytes() == foreign
    assert sorted(p.name for p in foreign_dir.iterdir()) == ["hosts.toml", "other-tool.crt"]
    direct = containerd.pull(f"{mirror.host}/kci/app:1.0", hosts_dir=hosts_dir, user=USER)
    assert direct.ok, direct.output
    through = containerd.pull(f"{source.host}/kci/app:1.0", hosts_dir=hosts_dir, user=USER,
                              tlscacert=source.pki.ca_file)
    assert containerd.digest(through) == registries.digests["mirror/ns/kci/app"]
    # the mirror leaves the config: its source entry goes, the foreign file stays
    write_config(config)
    assert node_config(config, hosts_dir, "--node-mirrors") == 0
    assert not (hosts_dir / source.host).exists()
    assert (foreign_dir / "hosts.toml").read_bytes() == foreign
    after = containerd.pull(f"{source.host}/kci/app:1.0", hosts_dir=hosts_dir, user=USER,
                            tlscacert=source.pki.ca_file)
    assert containerd.digest(after) == registries.digests["source/kci/app"]
