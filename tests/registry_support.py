"""A real container registry for tests: Debian's `docker-registry` on loopback.

What it gives (every piece usable on its own, for presence checks and `doctor` alike):
- `make_pki`: a CA and a serving certificate for localhost / 127.0.0.1 / ::1, made with
  `webhook.adapters.tls` (the project's own certificate code);
- `write_htpasswd`: a bcrypt htpasswd file, as the registry's `htpasswd` auth reads it;
- `start_registry(workdir, tls=, auth=, token_auth=)`: `docker-registry serve config.yml`
  on a free loopback port, waited for until `/v2/` answers; `Registry.stop()`, and it is
  a context manager. Its access log (stdout) counts the requests it served;
- `TokenServer`: a tiny Bearer-token service (HTTPS, loopback) issuing ES256 JWTs that the
  registry's `auth.token` verifies through an x5c chain to a CA of ours;
- `push_image`: a one-layer OCI image layout written here (no download) and pushed with
  `skopeo copy`; returns the manifest digest;
- `write_docker_config`: a dockerconfigjson for the registry;
- `RecordingServer`: a plain-HTTP loopback stand-in that records what a client sends;
  `SilentServer`: accepts TCP connections and never answers (timeouts);
- fixtures `registry` (TLS + htpasswd + one image) and `token_registry` (TLS + Bearer
  token auth + one image), session-scoped. A test module imports the fixture functions,
  whose Python names differ from the fixture names so the import is not shadowed:
  `from tests.registry_support import registry_fixture  # noqa: F401`.

Nothing is skipped: without the tools the fixtures fail and say `run make deps`.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tarfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.conftest import free_port, terminate
from webhook.adapters.tls.issue import KeyPair, generate_ca, generate_serving_cert
from webhook.core.config import Mirror, config_from_data

REGISTRY_BINARY = Path("/usr/bin/docker-registry")
SKOPEO = "skopeo"
DEFAULT_USER = "kci"
DEFAULT_PASSWORD = "s3cret-Passw0rd"
TOKEN_SERVICE = "kci-test-registry"
TOKEN_ISSUER = "kci-test-token-issuer"
POLL = 0.05  # serve_forever's poll interval: stop() waits up to this long
START_TIMEOUT = 30.0  # seconds; two shared cores can be slow, a healthy start takes < 1 s


def require_tools() -> None:
    """Fail (never skip) when the registry or skopeo is missing."""
    missing = [str(REGISTRY_BINARY)] if not REGISTRY_BINARY.exists() else []
    if shutil.which(SKOPEO) is None:
        missing.append(SKOPEO)
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run `make deps`", pytrace=False)


# --- certificates and passwords ----------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A CA and a server certificate for loopback, written to `directory`."""

    ca: KeyPair
    server: KeyPair
    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def cert_file(self) -> Path:
        return self.directory / "server.crt"

    @property
    def key_file(self) -> Path:
        return self.directory / "server.key"

    @property
    def cert_dir(self) -> Path:
        """A directory holding only `ca.crt`, as `skopeo --dest-cert-dir` wants it
        (any other `.key` there would be taken for a client key)."""
        return self.directory / "trust"

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_pki(directory: Path, *, common_name: str = "kci-test-registry-ca",
             dns_names: tuple[str, ...] = ("localhost",),
             ip_addresses: tuple[str, ...] = ("127.0.0.1", "::1")) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = generate_ca(common_name=common_name, days=30)
    server = generate_serving_cert(ca, dns_names=dns_names, ip_addresses=ip_addresses, days=7)
    pki = Pki(ca, server, directory)
    pki.ca_file.write_bytes(ca.cert_pem)
    pki.cert_file.write_bytes(server.cert_pem)
    pki.key_file.write_bytes(server.key_pem)
    pki.key_file.chmod(0o600)
    pki.cert_dir.mkdir(exist_ok=True)
    (pki.cert_dir / "ca.crt").write_bytes(ca.cert_pem)
    return pki


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash at the lowest cost (4): the registry checks it on every request.

    The `bcrypt` package when installed; else the C library's crypt(3) through the
    standard `crypt` module (libxcrypt does `$2b$`; the module exists up to Python 3.12).
    """
    try:
        import bcrypt  # type: ignore[import-not-found,unused-ignore]

        return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode())
    except ImportError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # type: ignore[import-not-found,unused-ignore]
    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    if not hashed or not hashed.startswith("$2"):
        raise RuntimeError("no bcrypt available: add the `bcrypt` package to the test extras")
    return str(hashed)


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    path.write_text("".join(f"{user}:{bcrypt_hash(pw)}\n" for user, pw in users.items()))
    return path


def write_docker_config(path: Path, host: str, username: str, password: str, *,
                        form: str = "auth", key: str | None = None) -> Path:
    """A dockerconfigjson with one entry for `host` (key `key`, default the host):
    `form="auth"` (base64 of user:password) or `"username"` (separate fields)."""
    if form == "auth":
        entry = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    else:
        entry = {"username": username, "password": password}
    path.write_text(json.dumps({"auths": {key or host: entry}}))
    return path


# --- a Bearer token service ----------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenServer:
    """The token service of the distribution auth spec, over HTTPS on loopback.

    GET /token?service=…&scope=repository:NAME:ACTIONS with Basic credentials gets a JWT
    granting the asked actions; without credentials a JWT granting nothing (as public
    registries do); with wrong credentials 401. The JWT is ES256, signed by a key whose
    certificate (x5c) chains to `root_file`, the registry's `rootcertbundle`.
    """

    def __init__(self, directory: Path, pki: Pki, users: dict[str, str], *,
                 service: str = TOKEN_SERVICE, issuer: str = TOKEN_ISSUER) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.users, self.service, self.issuer = dict(users), service, issuer
        self.requests: list[dict[str, Any]] = []
        signing_ca = generate_ca(common_name="kci-test-token-ca", days=30)
        signer = generate_serving_cert(signing_ca, dns_names=["token-signer"], days=7)
        self.root_file = directory / "token-root.crt"
        self.root_file.write_bytes(signing_ca.cert_pem)
        key = serialization.load_pem_private_key(signer.key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self._key = key
        leaf = x509.load_pem_x509_certificate(signer.cert_pem)
        self._x5c = [base64.b64encode(leaf.public_bytes(serialization.Encoding.DER)).decode()]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(pki.cert_file), str(pki.key_file))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        self.realm = f"https://127.0.0.1:{self.port}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL,),
                                        daemon=True, name="token-server")
        self._thread.start()

    def issue(self, subject: str, access: list[dict[str, Any]], lifetime: int = 300) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": self._x5c}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "iat": now,
                  "nbf": now - 60, "exp": now + lifetime, "jti": uuid.uuid4().hex,
                  "access": access}
        signing_input = (_b64url(json.dumps(header).encode()) + "."
                         + _b64url(json.dumps(claims).encode()))
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def _answer(self, path: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        query = parse_qs(urlsplit(path).query)
        user = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            try:
                name, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                name, password = "", ""
            if scheme.lower() != "basic" or self.users.get(name) != password or not name:
                return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
            user = name
        access = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository" and user is not None:
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        lifetime = 300
        token = self.issue(user or "", access, lifetime)
        return 200, {"token": token, "access_token": token, "expires_in": lifetime}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                authorization = self.headers.get("Authorization")
                outer.requests.append({"path": self.path, "authorization": authorization})
                code, body = outer._answer(self.path, authorization)
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --- the registry ---------------------------------------------------------------------------


@dataclass
class PushedImage:
    repository: str
    tag: str
    digest: str


@dataclass
class Registry:
    """A running `docker-registry`. `host` is `127.0.0.1:PORT`."""

    workdir: Path
    port: int
    tls: bool
    pki: Pki | None
    username: str | None
    password: str | None
    process: subprocess.Popen[bytes] | None
    log_file: Path
    access_log: Path
    token_server: TokenServer | None = None
    images: list[PushedImage] = field(default_factory=list)
    name: str = "127.0.0.1"  # what clients call it: `host` is NAME:PORT

    @property
    def host(self) -> str:
        return f"{self.name}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def ca_file(self) -> Path | None:
        return self.pki.ca_file if self.pki else None

    def client(self, **kwargs: Any) -> httpx.Client:
        verify: ssl.SSLContext | bool = self.pki.client_context() if self.pki else False
        return httpx.Client(base_url=self.url, verify=verify, timeout=10, **kwargs)

    def docker_config(self, path: Path, *, username: str | None = None,
                      password: str | None = None, form: str = "auth",
                      key: str | None = None) -> Path:
        """A dockerconfigjson for this registry (its own user unless told otherwise)."""
        return write_docker_config(path, self.host, username or self.username or "",
                                   password if password is not None else self.password or "",
                                   form=form, key=key)

    def mirror(self, *, hosts: tuple[str, ...] = ("docker.io",), namespace: str = "",
               **extra: Any) -> Mirror:
        """A `Mirror` for this registry, through the config loader (validated as a user's
        file would be). Defaults: the registry's CA as caFile; `extra` uses the file's
        camelCase keys (pullCredentialConfigPath=…, caFile=None to drop it, …)."""
        entry: dict[str, Any] = {"endpoint": f"{self.url}/v2/{namespace}".rstrip("/"),
                                 "hosts": list(hosts)}
        if self.pki:
            entry["caFile"] = str(self.pki.ca_file)
        entry.update(extra)
        entry = {k: v for k, v in entry.items() if v is not None}
        return config_from_data({"mirrors": [entry]}, source="test").mirrors[0]

    def access_lines(self) -> list[str]:
        try:
            return self.access_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def count(self, method: str, path: str) -> int:
        """Requests served for exactly `METHOD PATH`, from the registry's access log."""
        needle = f'"{method} {path} HTTP/'
        return sum(needle in line for line in self.access_lines())

    def wait_count(self, method: str, path: str, expected: int, timeout: float = 5.0) -> int:
        """`count`, once the log shows at least `expected` (a line is written just after
        the response, so a client can be a moment ahead of the log), or at `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.count(method, path)
            if seen >= expected or time.monotonic() > deadline:
                time.sleep(0.2)  # and let any extra request show up too
                return self.count(method, path)
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process)
        if self.token_server is not None:
            self.token_server.stop()
            self.token_server = None

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _registry_config(workdir: Path, port: int, *, pki: Pki | None, htpasswd: Path | None,
                     token: TokenServer | None, address: str = "127.0.0.1") -> dict[str, Any]:
    http: dict[str, Any] = {"addr": f"{address}:{port}", "secret": secrets.token_hex(16),
                            "headers": {"X-Content-Type-Options": ["nosniff"]}}
    if pki is not None:
        http["tls"] = {"certificate": str(pki.cert_file), "key": str(pki.key_file)}
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "formatter": "text", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "data")},
                    "delete": {"enabled": True}},
        "http": http,
    }
    if token is not None:
        config["auth"] = {"token": {"realm": token.realm, "service": token.service,
                                    "issuer": token.issuer,
                                    "rootcertbundle": str(token.root_file)}}
    elif htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "kci-test-registry", "path": str(htpasswd)}}
    return config


def start_registry(workdir: Path, *, tls: bool = True, auth: bool = True,
                   token_auth: bool = False, pki: Pki | None = None,
                   users: dict[str, str] | None = None, name: str = "127.0.0.1",
                   address: str = "127.0.0.1") -> Registry:
    """`docker-registry serve` on a free loopback port, ready when it returns.

    `auth` is htpasswd Basic auth, `token_auth` the Bearer flow through a `TokenServer`
    (which needs TLS). `pki` reuses a CA; `users` defaults to one user. `name` is the host
    name clients use (`host`, and a SAN of a made PKI), `address` the one it listens on:
    containerd treats 127.0.0.1 and localhost specially (plain HTTP, no verification),
    so its tests reach the registry by another name of this machine.
    """
    require_tools()
    if token_auth and not tls:
        raise ValueError("token auth needs TLS (the token service is HTTPS)")
    workdir.mkdir(parents=True, exist_ok=True)
    if tls and pki is None:
        named = () if name.replace(".", "").isdigit() else (name,)
        pki = make_pki(workdir / "pki", dns_names=tuple(dict.fromkeys(("localhost", *named))))
    users = users or {DEFAULT_USER: DEFAULT_PASSWORD}
    with_users = auth or token_auth
    htpasswd = write_htpasswd(workdir / "htpasswd", users) if auth and not token_auth else None
    token = TokenServer(workdir / "token", pki, users) if token_auth and pki else None
    username, password = next(iter(users.items())) if with_users else (None, None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    last_log = ""
    for _attempt in range(3):  # a free port can be taken between probe and bind
        port = free_port()
        config_file = workdir / "config.yml"
        config_file.write_text(yaml.safe_dump(
            _registry_config(workdir, port, pki=pki if tls else None, htpasswd=htpasswd,
                             token=token, address=address)))
        log_file, access_log = workdir / "registry.log", workdir / "access.log"
        with log_file.open("wb") as err, access_log.open("wb") as out:
            process = subprocess.Popen([str(REGISTRY_BINARY), "serve", str(config_file)],
                                       cwd=workdir, stdout=out, stderr=err, env=env)
        registry = Registry(workdir, port, tls, pki if tls else None, username, password,
                            process, log_file, access_log, token, name=name)
        if _wait_ready(registry):
            return registry
        last_log = log_file.read_text(errors="replace")
        registry.token_server = None  # keep it for the next attempt
        registry.stop()
        if "address already in use" not in last_log:
            break
    if token is not None:
        token.stop()
    raise RuntimeError(f"docker-registry did not start:\n{last_log[-4000:]}")


def _wait_ready(registry: Registry) -> bool:
    """Until `/v2/` answers anything over HTTP (401 counts), the process exits, or timeout."""
    assert registry.process is not None
    deadline = time.monotonic() + START_TIMEOUT
    with registry.client() as client:
        while time.monotonic() < deadline:
            if registry.process.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                client.get("/v2/")
                return True
            time.sleep(0.05)
    return False


# --- images ------------------------------------------------------------------------------------


def _blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_oci_layout(layout: Path, tag: str, *, content: bytes | None = None) -> str:
    """A one-layer OCI image layout (layer, config, manifest, index.json, oci-layout),
    all written here; the layer holds `content` (random by default, so each image is
    unique). Returns the manifest digest."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    content = secrets.token_bytes(64) if content is None else content
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("kci-test/content.bin")
        info.size, info.mtime, info.mode = len(content), 0, 0o644
        tar.addfile(info, io.BytesIO(content))
    raw_tar = tar_bytes.getvalue()
    layer = _blob(layout, gzip.compress(raw_tar, mtime=0))
    config = _blob(layout, json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers",
                   "diff_ids": [f"sha256:{hashlib.sha256(raw_tar).hexdigest()}"]},
    }).encode())
    manifest = _blob(layout, json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
    }).encode())
    (layout / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return str(manifest["digest"])


def push_image(registry: Registry, repository: str, tag: str) -> str:
    """Build a tiny image and `skopeo copy` it to `registry` as repository:tag; return the
    manifest digest the push reported (skopeo keeps an OCI manifest as it is)."""
    require_tools()
    work = registry.workdir / "push" / f"{repository.replace('/', '_')}-{tag}-{uuid.uuid4().hex}"
    work.mkdir(parents=True)
    layout = work / "layout"
    built = write_oci_layout(layout, tag)
    policy = work / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    digest_file = work / "digest"
    cmd = [SKOPEO, "--policy", str(policy), "copy", "--quiet", "--digestfile", str(digest_file)]
    if registry.pki is not None:
        cmd += ["--dest-tls-verify=true", "--dest-cert-dir", str(registry.pki.cert_dir)]
    else:
        cmd += ["--dest-tls-verify=false"]
    if registry.username is not None:
        cmd += ["--dest-creds", f"{registry.username}:{registry.password}"]
    cmd += [f"oci:{layout}:{tag}", f"docker://{registry.host}/{repository}:{tag}"]
    env = {**os.environ, "TMPDIR": str(work), "HOME": str(work)}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"skopeo copy failed ({result.returncode}): {result.stderr[-4000:]}"
                           f"\nregistry log:\n{registry.log_file.read_text()[-2000:]}")
    digest = digest_file.read_text().strip() or built
    registry.images.append(PushedImage(repository, tag, digest))
    return digest


# --- stand-ins ---------------------------------------------------------------------------------


Responder = Callable[[dict[str, Any]], tuple[int, dict[str, str], bytes]]


class RecordingServer:
    """A loopback HTTP server (plain, or HTTPS with `pki`) that records each request
    (method, path, lower-cased headers) and answers `respond(request)` ->
    (status, headers, body): a stand-in for checking what a client *sends*."""

    def __init__(self, respond: Responder | None = None, *, pki: Pki | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.respond: Responder = respond or (lambda request: (404, {}, b""))
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                request = {"method": self.command, "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}}
                outer.requests.append(request)
                code, headers, body = outer.respond(request)
                self.send_response(code)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = _handle  # noqa: N815 - the http.server API

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if pki is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(pki.cert_file), str(pki.key_file))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if pki else 'http'}://{self.host}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL,),
                                        daemon=True, name="recording-server")
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RecordingServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SilentServer:
    """Listens on loopback and accepts connections, then never says a word: a TLS
    handshake or an HTTP request to it hangs until the client's timeout."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self.host = f"127.0.0.1:{self.port}"
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._sock.settimeout(POLL)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
                self._held.append(conn)
            except TimeoutError:
                continue
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._sock.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session", name="registry")
def registry_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with TLS (a CA of ours) and htpasswd auth, holding one pushed image
    (`registry.images[0]`: kci/app:1.0)."""
    require_tools()
    with start_registry(tmp_path_factory.mktemp("registry")) as running:
        push_image(running, "kci/app", "1.0")
        yield running


@pytest.fixture(scope="session", name="token_registry")
def token_registry_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with TLS and Bearer-token auth (its `token_server`), holding one image
    (`token_registry.images[0]`: kci/tokened:2.0)."""
    require_tools()
    with start_registry(tmp_path_factory.mktemp("token-registry"), token_auth=True) as running:
        push_image(running, "kci/tokened", "2.0")
        yield running
