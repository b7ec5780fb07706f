"""`kci-webhook doctor`: check a registry the way a node pulls from it, step by step.

A failed pull reaches people as `ErrImagePull` and one line of reason (`x509: certificate
signed by unknown authority`, `connection refused`, `401 Unauthorized`). The doctor walks
the path a node walks, from this machine, and stops at the first step a pull would fail:

1. `resolve`  the registry's name; `--host-alias IP=HOST` acts as the /etc/hosts entries
              that `k8s.ksyun.com/kci-host-aliases` gives the node;
2. `connect`  TCP to the port;
3. `tls`      the handshake, verified as containerd verifies (the system store plus `--ca`,
              SANs only, TLS 1.2 or newer), and when it fails, why: unknown authority (the
              chain served, whether the leaf is self-signed, what `--ca` holds instead),
              expired or not yet valid (the dates), name mismatch (the SANs against the
              name asked), a port that speaks plain HTTP, a server stuck below TLS 1.2;
4. `v2`       `GET /v2/`, the registry API's ping, and its `WWW-Authenticate` challenge;
5. `auth`     the challenge answered: Basic, or a Bearer token from the challenge's realm,
              with `--creds` (a dockerconfigjson: what a pull secret holds);
6. `manifest` with `--image`: `HEAD /v2/<repository>/manifests/<tag|digest>` with the
              manifest types containerd accepts, and the digest.

Every failure names its fix in the seeds' terms: the CA in the mirror's `caFile` or in a
TkgServiceConfiguration's `additionalTrustedCAs` (`kci-webhook trust`), and the KCI
annotations `kci-insecure-registry`, `kci-http-registry`, `kci-host-aliases`,
`kci-dns-config`. Exit code 0 only when a pull would work, 1 when it would not, 2 for a
usage error. Like the presence check (registry.py), it never sends credentials over plain
http:// and ignores proxy variables. Every network operation is bounded by `--timeout`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import importlib
import ipaddress
import json
import socket
import ssl
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cryptography import x509

from webhook.annotations import (
    KCI_DNS_CONFIG,
    KCI_HOST_ALIASES,
    KCI_HTTP_REGISTRY,
    KCI_INSECURE_REGISTRY,
    HostAlias,
    host_aliases_from_data,
    host_aliases_json,
)
from webhook.errors import AnnotationError, ReferenceError_
from webhook.reference import normalize_domain, parse, parse_registry_host
from webhook.tls import _name_covered


class _Deferred:
    """A module imported on first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)


if TYPE_CHECKING:
    import httpx

    from webhook import registry
else:  # The CLI builds every command's parser, so whatever this module imports, `mutate`,
    # `trust` and `certs` pay for too: httpx (whose package also imports rich, click and
    # pygments for its own CLI) and the registry client add ~0.3 s. They load when a
    # diagnosis runs instead.
    httpx = _Deferred("httpx")
    registry = _Deferred("webhook.registry")

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
DEFAULT_TIMEOUT = 5.0
USER_AGENT = "kci-webhook (doctor)"
EXPIRY_WARNING = timedelta(days=30)
DOCKER_HUB_API = "registry-1.docker.io"
STEPS = ("resolve", "connect", "tls", "v2", "auth", "manifest")

# OpenSSL verify codes (X509_V_ERR_*) and what containerd (Go) calls them.
_UNKNOWN_AUTHORITY = {2, 18, 19, 20, 21}  # no issuer / self-signed leaf / self-signed root
_SELF_SIGNED_LEAF = 18
_NOT_YET_VALID, _EXPIRED = 9, 10
_NAME_MISMATCH = {62, 64}  # hostname, IP address
_LEGACY_VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1")


class UsageError(Exception):
    """A command line that cannot be run: exit 2, the message on stderr."""


@dataclass
class Step:
    """One step's outcome. `detail` is the finding in one line; `notes` more lines for
    people (the chain, the dates); `fix` what to do ("" when ok); `facts` the same
    findings as data for `--json` (addresses, SANs, digest, ...)."""

    step: str
    ok: bool
    detail: str
    fix: str = ""
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"step": self.step, "ok": self.ok, "detail": self.detail,
                "fix": self.fix or None, "notes": self.notes, "facts": self.facts}


class _Fail(Exception):
    """Ends a step as failed, from however deep the finding was made."""

    def __init__(self, detail: str, fix: str = "", notes: list[str] | None = None,
                 facts: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix
        self.notes, self.facts = notes or [], facts or {}


# --- what to check: the command line, validated -------------------------------------------


@dataclass(frozen=True)
class Target:
    """`registry` is `host[:port]` as image references and the KCI annotations write it;
    `host` the name or address dialled and verified (no brackets); `scheme` http(s)."""

    registry: str
    host: str
    port: int
    scheme: str

    @property
    def is_ip(self) -> bool:
        return _is_ip(self.host)

    @property
    def authority(self) -> str:
        """The `Host` header a node sends: the port only when it is not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class Options:
    target: Target
    aliases: dict[str, str]  # hostname -> IP, the first alias of a name winning (/etc/hosts)
    ca_file: str | None
    ca_certs: tuple[x509.Certificate, ...]
    creds_file: str | None
    credentials: registry.Credentials | None
    repository: str | None
    reference: str | None
    timeout: float


def parse_target(text: str, *, http: bool) -> Target:
    """REGISTRY[:PORT], optionally written as a URL (`https://h:5000`, `http://h:5000/`)."""
    raw = text.strip()
    scheme = "http" if http else "https"
    if "://" in raw:
        given, raw = raw.split("://", 1)
        given = given.lower()
        if given not in ("http", "https"):
            raise UsageError(f"REGISTRY {text!r}: the scheme may be https:// or http://")
        if given == "https" and http:
            raise UsageError(f"REGISTRY {text!r} says https:// but --http asks for plain HTTP")
        scheme = given
    raw = raw.rstrip("/")
    if raw.endswith("/v2"):
        raw = raw[:-3]
    if "/" in raw:
        raise UsageError(f"REGISTRY {text!r}: expected host[:port] with no path "
                         f"(write {raw.split('/', 1)[0]})")
    try:
        host, port = parse_registry_host(raw.lower())
    except ReferenceError_:
        raise UsageError(f"REGISTRY {text!r}: expected host[:port]: a DNS name, an IPv4 "
                         "address or a bracketed IPv6 address, and a port 1-65535") from None
    bare = host[1:-1] if host.startswith("[") else host
    if normalize_domain(bare) == "docker.io":  # what docker.io images are pulled from
        bare = DOCKER_HUB_API
    return Target(raw.lower(), bare, port or (443 if scheme == "https" else 80), scheme)


def parse_host_aliases(values: list[str]) -> dict[str, str]:
    """`IP=HOST[,HOST...]` options, validated exactly as a `kci-host-aliases` annotation."""
    items: list[dict[str, Any]] = []
    for value in values:
        ip, sep, names = value.partition("=")
        if not sep or not ip.strip() or not names.strip():
            raise UsageError(f"--host-alias {value!r}: expected IP=HOST (e.g. "
                             "10.0.0.5=harbor.example.com)")
        items.append({"ip": ip.strip(),
                      "hostnames": [n.strip().lower() for n in names.split(",") if n.strip()]})
    try:
        aliases = host_aliases_from_data(items, level="--host-alias")
    except AnnotationError as exc:
        raise UsageError("; ".join(exc.problems)) from None
    mapping: dict[str, str] = {}
    for alias in aliases:
        for name in alias.hostnames:
            mapping.setdefault(name, alias.ip)
    return mapping


def load_ca_file(path: str) -> tuple[x509.Certificate, ...]:
    """The certificates of a `--ca` PEM file; the base64-of-PEM pitfall is named."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"--ca {path}: cannot read: {exc.strerror or exc}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        hint = "a CA file is PEM text: -----BEGIN CERTIFICATE-----"
        if _is_base64_pem(data):
            hint = ("it holds base64 of a PEM certificate (what `kubectl get secret -o "
                    "jsonpath='{.data.ca\\.crt}'` prints): decode it first with base64 -d")
        raise UsageError(f"--ca {path}: no PEM certificate in it; {hint}")
    return tuple(certs)


def _is_base64_pem(data: bytes) -> bool:
    try:
        return b"-----BEGIN CERTIFICATE-----" in base64.b64decode(b"".join(data.split()),
                                                                   validate=True)
    except (binascii.Error, ValueError):
        return False


def parse_image(image: str, target: Target) -> tuple[str, str]:
    """(repository, tag or digest) on the target for `--image`: a repository path on it
    (`kci/app:1.0`) or a reference naming it (`REGISTRY/kci/app:1.0`)."""
    text = image.strip()
    first, slash, rest = text.partition("/")
    if slash and first.lower() == target.registry:
        text = rest
    elif slash and ("." in first or ":" in first or first == "localhost"):
        raise UsageError(f"--image {image!r} names the registry {first}, not {target.registry}: "
                         f"give the repository on {target.registry} (e.g. kci/app:1.0; for a "
                         "mirror, with its namespace, as the webhook rewrites it)")
    try:
        ref = parse(f"{target.registry}/{text}")
    except ReferenceError_ as exc:
        raise UsageError(f"--image {image!r}: not an image reference ({exc.kind})") from None
    path = ref.path
    if target.host == DOCKER_HUB_API and "/" not in path:
        path = f"library/{path}"
    return path, registry.manifest_reference(ref)


def options_from_args(args: argparse.Namespace) -> Options:
    target = parse_target(args.registry, http=args.http)
    aliases = parse_host_aliases(args.host_alias or [])
    ca_certs: tuple[x509.Certificate, ...] = ()
    if args.ca:
        ca_certs = load_ca_file(args.ca)
        try:
            _verifying_context(args.ca)
        except ssl.SSLError as exc:
            raise UsageError(f"--ca {args.ca}: cannot load: {exc.reason or exc}") from None
    credentials = None
    if args.creds:
        try:
            credentials = registry.credentials_from_dockerconfig(args.creds, target.registry)
        except registry.CredentialsError as exc:
            raise UsageError(f"--creds {exc}") from None
    repository = reference = None
    if args.image:
        repository, reference = parse_image(args.image, target)
    return Options(target, aliases, args.ca, ca_certs, args.creds, credentials, repository,
                   reference, args.timeout)


# --- the checks ---------------------------------------------------------------------------


class Doctor:
    """Runs the steps in order against one registry; `run()` stops at the first failure."""

    def __init__(self, options: Options) -> None:
        self.o = options
        self.t = options.target
        self.addresses: list[str] = []
        self.address = ""  # the address that accepted the connection; HTTP goes there too
        self._client: httpx.Client | None = None
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._basic: str | None = None  # the Authorization that /v2/ accepted (Basic)

    def run(self) -> list[Step]:
        checks: list[tuple[str, Callable[[], Step]]] = [
            ("resolve", self.resolve), ("connect", self.connect), ("tls", self.tls),
            ("v2", self.v2), ("auth", self.auth)]
        if self.o.repository is not None:
            checks.append(("manifest", self.manifest))
        steps: list[Step] = []
        try:
            for name, check in checks:
                try:
                    step = check()
                except _Fail as failed:
                    step = Step(name, False, failed.detail, failed.fix, failed.notes,
                                failed.facts)
                except Exception as exc:  # a diagnosis must end in a report, not a traceback
                    step = Step(name, False, f"unexpected {type(exc).__name__}: {exc}",
                                "this is a bug in kci-webhook doctor; please report it "
                                "with this output")
                steps.append(step)
                if not step.ok:
                    break
        finally:
            if self._client is not None:
                self._client.close()
        return steps

    # --- 1. resolve ---------------------------------------------------------------------

    def resolve(self) -> Step:
        host = self.t.host
        if self.t.is_ip:
            self.addresses = [host]
            return Step("resolve", True, f"{host} is an IP address: nothing to resolve",
                        facts={"addresses": [host], "source": "literal"})
        alias = self.o.aliases.get(host)
        if alias is not None:
            self.addresses = [alias]
            return Step("resolve", True, f"{host} → {alias} (--host-alias, as "
                        f"{KCI_HOST_ALIASES} writes it into the node's /etc/hosts)",
                        facts={"addresses": [alias], "source": "host-alias"})
        try:
            self.addresses = _lookup(host, self.t.port, self.o.timeout)
        except (socket.gaierror, UnicodeError, TimeoutError) as exc:
            why = (f"no answer within {self.o.timeout:g}s" if isinstance(exc, TimeoutError)
                   else getattr(exc, "strerror", None) or str(exc))
            raise _Fail(f"cannot resolve {host}: {why}", _resolve_fix(host),
                        notes=["looked up from this machine: a node resolves with its own "
                               "DNS servers, /etc/hosts and kci-host-aliases"]) from None
        return Step("resolve", True, f"{host} → {', '.join(self.addresses)} (this machine's "
                    "resolver)", notes=["a node resolves with its own DNS servers, /etc/hosts "
                                        "and kci-host-aliases: the answer may differ there"],
                    facts={"addresses": self.addresses, "source": "resolver"})

    # --- 2. connect ---------------------------------------------------------------------

    def connect(self) -> Step:
        failures: list[str] = []
        kinds: set[str] = set()
        for address in self.addresses:
            started = time.monotonic()
            try:
                with socket.create_connection((address, self.t.port), self.o.timeout):
                    elapsed = (time.monotonic() - started) * 1000
            except OSError as exc:
                kind, text = _connect_error(exc, self.o.timeout)
                kinds.add(kind)
                failures.append(f"{_hostport(address, self.t.port)}: {text}")
                continue
            self.address = address
            notes = [f"tried first, failed: {f}" for f in failures]
            return Step("connect", True, f"{_hostport(address, self.t.port)} accepted a TCP "
                        f"connection ({elapsed:.1f} ms)", notes=notes,
                        facts={"address": address, "port": self.t.port,
                               "milliseconds": round(elapsed, 1)})
        fix = _connect_fix(kinds, self.t)
        raise _Fail("; ".join(failures), fix, facts={"port": self.t.port})

    # --- 3. tls -------------------------------------------------------------------------

    def tls(self) -> Step:
        if self.t.scheme == "http":
            return Step("tls", True, f"not used: --http, the node speaks plain HTTP to "
                        f"{self.t.registry} as {KCI_HTTP_REGISTRY} tells it to",
                        notes=["--ca is not used over plain HTTP"] if self.o.ca_file else [],
                        facts={"scheme": "http"})
        context = _verifying_context(self.o.ca_file)
        try:
            with self._dial() as sock, \
                    context.wrap_socket(sock, server_hostname=self.t.host) as tls:
                version = tls.version() or "?"
                chain = _chain(tls, verified=True)
        except ssl.SSLCertVerificationError as exc:
            return self._verify_failed(exc)
        except (ssl.SSLError, OSError) as exc:  # TimeoutError and resets are OSErrors
            return self._handshake_failed(exc)
        leaf = chain[0] if chain else None
        now = datetime.now(UTC)
        notes: list[str] = []
        facts: dict[str, Any] = {"version": version}
        detail = f"{version}, certificate verified for {self.t.host}"
        if leaf is not None:
            facts.update(_cert_facts(leaf))
            notes = [_describe(c, leaf=i == 0) for i, c in enumerate(chain)]
            left = leaf.not_valid_after_utc - now
            detail += f" (valid until {_when(leaf.not_valid_after_utc)})"
            if left < EXPIRY_WARNING:
                notes.append(f"the certificate expires in {left.days} days: renew it before "
                             "nodes start refusing it")
        return Step("tls", True, detail, notes=notes, facts=facts)

    def _dial(self) -> socket.socket:
        return socket.create_connection((self.address, self.t.port), self.o.timeout)

    def _served_chain(self) -> list[x509.Certificate]:
        """The certificates the server sends, fetched without verifying them."""
        try:
            with self._dial() as sock, _unverified_context().wrap_socket(
                    sock, server_hostname=self.t.host) as tls:
                return _chain(tls, verified=False)
        except (ssl.SSLError, OSError):
            return []

    def _verify_failed(self, exc: ssl.SSLCertVerificationError) -> Step:
        code = exc.verify_code
        chain = self._served_chain()
        leaf = chain[0] if chain else None
        now = datetime.now(UTC)
        notes = [f"served: {_describe(c, leaf=i == 0)}" for i, c in enumerate(chain)]
        facts: dict[str, Any] = {"verify_code": code, "verify_message": exc.verify_message}
        if leaf is not None:
            facts.update(_cert_facts(leaf))
        if code in _UNKNOWN_AUTHORITY:
            kind = "authority"
            detail, fix, more = self._unknown_authority(code, chain)
        elif code in (_EXPIRED, _NOT_YET_VALID):
            kind = "dates"
            detail, fix, more = self._bad_dates(code, chain, now)
        elif code in _NAME_MISMATCH:
            kind = "name"
            detail, fix, more = self._name_mismatch(leaf)
        else:
            kind = "other"
            detail = f"x509: certificate verify failed: {exc.verify_message}"
            fix = ("fix the certificate the registry serves (see the chain above); last "
                   f"resort, no verification: {KCI_INSECURE_REGISTRY}: {self.t.registry}")
            more = []
        notes += more
        if leaf is not None:  # OpenSSL stops at the first problem; name the others too
            notes += [f"also: {p}" for k, p in _leaf_problems(leaf, self.t.host, now)
                      if k != kind]
        ca = f" -CAfile {self.o.ca_file}" if self.o.ca_file else ""
        sni = "" if self.t.is_ip else f" -servername {self.t.host}"
        notes.append(f"see for yourself: openssl s_client -connect "
                     f"{_hostport(self.address, self.t.port)}{sni}{ca} -showcerts")
        facts["problem"] = kind
        return Step("tls", False, detail, fix, notes, facts)

    def _unknown_authority(self, code: int, chain: list[x509.Certificate]
                           ) -> tuple[str, str, list[str]]:
        leaf_self_signed = code == _SELF_SIGNED_LEAF or (
            len(chain) == 1 and _self_signed(chain[0]))
        detail = "x509: certificate signed by unknown authority"
        notes: list[str] = []
        top = chain[-1] if chain else None
        if leaf_self_signed:
            detail += " (the certificate is self-signed: it is its own CA)"
            anchor = _name(chain[0].subject) if chain else "the server's certificate"
        elif top is not None and _self_signed(top):
            anchor = _name(top.subject)
            notes.append(f"the server sends its root CA {anchor} itself, but nodes do not "
                         "trust a root because the server sent it")
        else:
            anchor = _name(top.issuer) if top is not None else "the registry's CA"
        where = (f"neither in this machine's trust store nor in --ca {self.o.ca_file}"
                 if self.o.ca_file else "not in this machine's trust store (no --ca given)")
        notes.append(f"nodes must trust {anchor}; it is {where}")
        if self.o.ca_certs and top is not None:
            notes.append(self._what_ca_holds(top))
        ca_source = ("the server's own certificate (openssl s_client -showcerts prints it)"
                     if leaf_self_signed else f"the CA {anchor} (not the server's certificate)")
        fix = "\n".join((
            f"trust {ca_source} where pulls are verified:",
            "1. for a mirror, give it as the mirror's caFile (the webhook's checks use it; "
            "check here with --ca CA.pem)",
            "2. cluster-wide: kci-webhook trust CA.pem builds the TkgServiceConfiguration "
            "section spec.trust.additionalTrustedCAs (nodes get it as "
            "/etc/ssl/certs/tkg-<name>.pem at their next rolling update)",
            f"3. last resort, no verification at all: {KCI_INSECURE_REGISTRY}: "
            f"{self.t.registry}"))
        return detail, fix, notes

    def _what_ca_holds(self, top: x509.Certificate) -> str:
        wanted = top.subject if _self_signed(top) else top.issuer
        same_name = [c for c in self.o.ca_certs if c.subject == wanted]
        if same_name:
            return (f"--ca {self.o.ca_file} holds a certificate named {_name(wanted)}, but "
                    "it did not sign this chain: a different key (was the CA regenerated?)")
        held = ", ".join(_name(c.subject) for c in self.o.ca_certs[:5])
        return f"--ca {self.o.ca_file} holds {held}: none of them issued this certificate"

    def _bad_dates(self, code: int, chain: list[x509.Certificate], now: datetime
                   ) -> tuple[str, str, list[str]]:
        candidates = [*chain, *self.o.ca_certs]
        if code == _EXPIRED:
            bad = next((c for c in candidates if now > c.not_valid_after_utc), None)
            when = bad.not_valid_after_utc if bad is not None else None
            detail = "x509: certificate has expired or is not yet valid: current time " \
                     f"{_rfc3339(now)} is after {_rfc3339(when) if when else '?'}"
            what = "the registry's certificate" if bad is None or (chain and bad is chain[0]) \
                else f"the CA certificate {_name(bad.subject)}"
            fix = (f"renew {what} (expired on {_when(when) if when else '?'}): nodes refuse "
                   "an expired certificate whatever CA they trust; a renewed CA goes to the "
                   "mirror's caFile and additionalTrustedCAs again (kci-webhook trust). "
                   f"Stopgap only: {KCI_INSECURE_REGISTRY}: {self.t.registry} skips the check")
        else:
            bad = next((c for c in candidates if now < c.not_valid_before_utc), None)
            when = bad.not_valid_before_utc if bad is not None else None
            detail = "x509: certificate has expired or is not yet valid: current time " \
                     f"{_rfc3339(now)} is before {_rfc3339(when) if when else '?'}"
            fix = (f"the certificate is valid from {_when(when) if when else '?'}: check the "
                   "clocks (this machine's, the nodes', the CA's) or reissue it")
        notes = []
        if bad is not None:
            notes.append(f"{_name(bad.subject)}: valid from {_when(bad.not_valid_before_utc)} "
                         f"to {_when(bad.not_valid_after_utc)}; now is {_when(now)}")
        return detail, fix, notes

    def _name_mismatch(self, leaf: x509.Certificate | None) -> tuple[str, str, list[str]]:
        host = self.t.host
        sans = _sans(leaf) if leaf is not None else []
        if sans:
            detail = f"x509: certificate is valid for {', '.join(sans)}, not {host}"
        else:
            detail = (f"x509: certificate relies on legacy Common Name field, use SANs "
                      f"instead (it has no subjectAltName, so it is valid for no name; "
                      f"wanted {host})")
        kind = "IP" if self.t.is_ip else "DNS"
        lines = [f"reissue the certificate with {kind}:{host} in its subjectAltName"]
        name = next((s for s in sans if not _is_ip(s) and "*" not in s), None)
        if name is not None:
            port = "" if self.t.port == 443 else f":{self.t.port}"
            alias = host_aliases_json((HostAlias(self.address, (name,)),))
            lines.append(f"or pull by a name the certificate has: images {name}{port}/..., "
                         f"and if {name} has no DNS record, {KCI_HOST_ALIASES}: '{alias}' "
                         f"(check here: kci-webhook doctor {name}{port} "
                         f"--host-alias {self.address}={name})")
        lines.append(f"last resort, no verification: {KCI_INSECURE_REGISTRY}: "
                     f"{self.t.registry}")
        return detail, "\n".join(lines), [f"asked for {host}; the certificate's SANs: "
                                          f"{', '.join(sans) or '(none)'}"]

    def _handshake_failed(self, exc: BaseException) -> Step:
        reason = _ssl_reason(exc, self.o.timeout)
        banner = self._http_banner()
        if banner is not None:
            return Step(
                "tls", False, f"this port speaks plain HTTP, not TLS: the TLS handshake "
                f"failed ({reason}) and a plain HTTP request got {banner!r}",
                "\n".join((
                    f"if the registry is meant to be plain HTTP, tell the node: "
                    f"{KCI_HTTP_REGISTRY}: {self.t.registry} (for a mirror: an http:// "
                    f"endpoint); check here with --http",
                    "better: serve the registry over TLS")),
                facts={"problem": "plain-http", "http_status_line": banner})
        legacy = self._legacy_version()
        if legacy is not None:
            return Step(
                "tls", False, f"the server offers only {legacy}: nodes (containerd) require "
                "TLS 1.2 or newer",
                "enable TLS 1.2 or 1.3 on the registry (or the load balancer or proxy in "
                f"front of it); {KCI_INSECURE_REGISTRY} does not help: it skips the "
                "certificate checks, not the protocol version",
                facts={"problem": "tls-version", "version": legacy})
        return Step(
            "tls", False, f"TLS handshake failed: {reason}",
            f"check that {self.t.registry} serves HTTPS on port {self.t.port}: openssl "
            f"s_client -connect {_hostport(self.address, self.t.port)} shows the handshake",
            facts={"problem": "handshake"})

    def _http_banner(self) -> str | None:
        """The status line a plain HTTP request gets, or None when it gets none."""
        request = (f"GET /v2/ HTTP/1.1\r\nHost: {self.t.authority}\r\nUser-Agent: "
                   f"{USER_AGENT}\r\nConnection: close\r\n\r\n").encode()
        try:
            with self._dial() as sock:
                sock.sendall(request)
                data = sock.recv(512)
        except OSError:
            return None
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        return line[:120] if line.startswith("HTTP/") else None

    def _legacy_version(self) -> str | None:
        """The protocol a handshake that allows old versions gets, if it is an old one."""
        try:
            with self._dial() as sock, _unverified_context(legacy=True).wrap_socket(
                    sock, server_hostname=self.t.host) as tls:
                version = tls.version()
        except (ssl.SSLError, OSError, ValueError):
            return None
        return version if version in _LEGACY_VERSIONS else None

    # --- 4. GET /v2/ ----------------------------------------------------------------------

    def v2(self) -> Step:
        url = self._url("/v2/")
        try:
            response = self._request("GET", url)
        except httpx.HTTPError as exc:
            detail = f"GET /v2/: {registry.describe_transport_error(exc)}"
            if self.t.scheme == "http" and self._speaks_tls():
                raise self._speaks_tls_failure(detail) from None
            raise _Fail(detail, f"check that {self.t.registry} is a registry and answers on "
                        f"port {self.t.port}") from None
        code = response.status_code
        facts: dict[str, Any] = {"status": code}
        api = response.headers.get("docker-distribution-api-version")
        if api:
            facts["api_version"] = api
        if code == 200:
            notes = [] if api else ["no Docker-Distribution-Api-Version header: is this a "
                                    "registry or a web page?"]
            return Step("v2", True, f"GET /v2/ → 200: the registry API answers "
                        f"({api or 'no API version header'}) and lets anyone in",
                        notes=notes, facts=facts)
        if code == 401:
            headers = response.headers.get_list("www-authenticate")
            self._challenge = registry.parse_challenge(headers)
            if self._challenge is None:
                raise _Fail("GET /v2/ → 401 without a WWW-Authenticate challenge: no client "
                            "can log in", "fix the registry's (or its proxy's) auth "
                            "configuration", facts=facts)
            facts["challenge"] = {"scheme": self._challenge[0], **self._challenge[1]}
            return Step("v2", True, f"GET /v2/ → 401: the registry API answers and asks "
                        f"for authentication: {headers[0][:200]}", facts=facts)
        if self.t.scheme == "http" and (b"HTTPS server" in response.content[:300]
                                        or self._speaks_tls()):
            raise self._speaks_tls_failure(f"GET /v2/ → {code}")
        if 300 <= code < 400:
            where = response.headers.get("location", "?")[:200]
            raise _Fail(f"GET /v2/ → {code}: a redirect to {where}",
                        "use the registry's own address (the one it redirects to) in "
                        "image references", facts=facts)
        if code == 404:
            raise _Fail("GET /v2/ → 404: this is not a registry API (a web UI? another "
                        "service on this port?)", "point at the registry's API: "
                        "host[:port] whose /v2/ answers 200 or 401", facts=facts)
        raise _Fail(f"GET /v2/ → {code} {response.reason_phrase}{_error_codes(response)}",
                    "the registry is not healthy: look at its logs", facts=facts)

    def _speaks_tls(self) -> bool:
        try:
            with self._dial() as sock, _unverified_context().wrap_socket(
                    sock, server_hostname=self.t.host):
                return True
        except (ssl.SSLError, OSError):
            return False

    def _speaks_tls_failure(self, detail: str) -> _Fail:
        return _Fail(f"{detail}: this port speaks TLS (HTTPS), not plain HTTP",
                     f"drop --http, and remove {self.t.registry} from {KCI_HTTP_REGISTRY} "
                     "(the node would speak plain HTTP to a TLS port)",
                     facts={"problem": "speaks-tls"})

    # --- 5. auth ------------------------------------------------------------------------

    def auth(self) -> Step:
        creds, user = self.o.credentials, self._who()
        if self._challenge is None:
            notes = ["--creds not needed: the registry asks for none"] if creds else []
            return Step("auth", True, "none needed: /v2/ answers without credentials",
                        notes=notes, facts={"scheme": None})
        scheme, params = self._challenge
        if scheme == "basic":
            if creds is None:
                raise self._no_credentials(f"Basic realm=\"{params.get('realm', '')}\"")
            if self.t.scheme == "http":
                raise _Fail("the registry asks for a password over plain HTTP: a node would "
                            "send it in clear text, and kci-webhook never does",
                            "serve the registry over TLS (a self-signed certificate with "
                            f"{KCI_INSECURE_REGISTRY} is still better than clear text)",
                            facts={"scheme": "basic"})
            authorization = registry.basic_authorization(creds)
            response = self._checked("GET", self._url("/v2/"), {"Authorization": authorization})
            if response.status_code == 200:
                self._basic = authorization
                return Step("auth", True, f"{user} accepted (Basic)",
                            facts={"scheme": "basic", "username": creds.username})
            raise self._refused(response, f"the registry refused {user}")
        if scheme == "bearer":
            token = self._token(None)
            response = self._checked("GET", self._url("/v2/"),
                                     {"Authorization": f"Bearer {token}"})
            realm = params.get("realm", "")
            facts = {"scheme": "bearer", "realm": realm, "service": params.get("service"),
                     "username": creds.username if creds else None}
            if response.status_code == 200:
                if creds is None:
                    return Step("auth", True, f"anonymous token from {realm} accepted: "
                                "public repositories pull without a pull secret",
                                notes=["private repositories need one: check with --creds "
                                       "and --image"], facts=facts)
                return Step("auth", True, f"{user} got a token from {realm} and the "
                            "registry accepts it (Bearer)", facts=facts)
            raise _Fail(f"the registry refused the token from {realm}: GET /v2/ → "
                        f"{response.status_code}", "the registry and its token service "
                        "disagree (issuer, service name or the token's signing "
                        "certificate): fix the registry's auth.token settings", facts=facts)
        raise _Fail(f"the registry asks for {scheme!r} authentication: nodes answer only "
                    "Basic and Bearer challenges", "configure Basic or token (Bearer) auth "
                    "on the registry", facts={"scheme": scheme})

    def _who(self) -> str:
        creds = self.o.credentials
        return f"user {creds.username!r} (from {self.o.creds_file})" if creds else "anonymous"

    def _no_credentials(self, challenge: str, *, scheme: str = "basic") -> _Fail:
        if self.o.creds_file:
            why = (f"--creds {self.o.creds_file} has no entry for {self.t.registry} (keys "
                   "match host:port exactly, as the kubelet matches them)")
        else:
            why = "no --creds given"
        return _Fail(
            f"the registry requires a username and password ({challenge}); {why}",
            "a pull needs a pull secret: kubectl create secret docker-registry NAME "
            f"--docker-server={self.t.registry} --docker-username=... --docker-password=..., "
            "named in the pod's imagePullSecrets (or the mirror's pullSecret); check it here "
            "with --creds FILE (its .dockerconfigjson)", facts={"scheme": scheme})

    def _refused(self, response: httpx.Response, who: str) -> _Fail:
        code = response.status_code
        if code == 401:
            detail = f"{who}: 401 Unauthorized — wrong username or password"
        elif code == 403:
            detail = f"{who}: 403 Forbidden — the account may not log in"
        else:
            detail = f"{who}: {code} {response.reason_phrase}{_error_codes(response)}"
        return _Fail(detail, f"correct the password in {self.o.creds_file} and in the pull "
                     "secret it stands for (kubectl create secret docker-registry ... "
                     f"--docker-server={self.t.registry}); the account must exist on the "
                     "registry", facts={"status": code})

    def _token(self, scope: str | None) -> str:
        """A Bearer token from the challenge's realm, as the presence check fetches one."""
        assert self._challenge is not None
        params = self._challenge[1]
        realm = params.get("realm", "")
        try:
            url = httpx.URL(realm)
        except httpx.InvalidURL:
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            raise _Fail(f"the Bearer challenge's realm {realm[:200]!r} is not an http(s) URL",
                        "fix the registry's auth.token.realm")
        query = {k: v for k, v in (("service", params.get("service")), ("scope", scope)) if v}
        headers = {}
        creds = self.o.credentials
        notes = []
        if creds is not None and url.scheme == "https":
            headers["Authorization"] = registry.basic_authorization(creds)
        elif creds is not None:
            notes.append(f"credentials are never sent to a plain http:// token service "
                         f"({realm}): asked anonymously")
        try:
            response = self._request("GET", url.copy_merge_params(query), headers)
        except httpx.HTTPError as exc:
            raise _Fail(f"token service {realm[:200]}: {registry.describe_transport_error(exc)}",
                        "nodes must reach the token service too, and trust its certificate "
                        "(the same CA fixes as for the registry apply)", notes) from None
        if response.status_code in (401, 403):
            if creds is not None and "Authorization" not in headers:
                raise _Fail(f"the token service {realm[:200]} is plain http://: credentials "
                            "are never sent to it, and it gives no anonymous token "
                            f"({response.status_code})", "serve the token service over "
                            "https:// (the registry's auth.token.realm)", notes)
            if creds is None:
                raise self._no_credentials(f"the token service {realm[:200]} gives no "
                                           f"anonymous token: {response.status_code}",
                                           scheme="bearer")
            raise self._refused(response, f"the token service {realm[:200]} refused "
                                f"{self._who()}")
        if response.status_code != 200:
            raise _Fail(f"token service {realm[:200]}: HTTP {response.status_code}"
                        f"{_error_codes(response)}", "the token service is not healthy: "
                        "look at its logs", notes)
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise _Fail(f"token service {realm[:200]}: the answer has no token",
                        "the realm must answer {\"token\": ...} (distribution token spec)",
                        notes)
        return token

    # --- 6. manifest --------------------------------------------------------------------

    def manifest(self) -> Step:
        repository, reference = self.o.repository or "", self.o.reference or ""
        shown = _image_text(repository, reference)
        headers = {"Accept": registry.MANIFEST_ACCEPT, **self._authorization(repository)}
        response = self._checked(
            "HEAD", self._url(f"/v2/{repository}/manifests/{reference}"), headers)
        code = response.status_code
        facts: dict[str, Any] = {"status": code, "repository": repository,
                                 "reference": reference}
        if code == 200:
            digest = response.headers.get("docker-content-digest")
            media = response.headers.get("content-type", "?").split(";")[0]
            facts.update(digest=digest, media_type=media)
            return Step("manifest", True, f"{shown} is there: digest {digest or '(not sent)'}, "
                        f"{media}", facts=facts)
        if code == 404:
            notes = self._tags_note(repository, headers)
            raise _Fail(f"manifest unknown: {self.t.registry} has no {shown}",
                        "push the image, or correct the reference (repository path, tag or "
                        "digest; for a mirror, its namespace)", notes, facts)
        if code in (401, 403):
            challenge = registry.parse_challenge(response.headers.get_list("www-authenticate"))
            error = challenge[1].get("error", "") if challenge else ""
            status = f"{code}{' ' + error if error else ''}"
            if self.o.credentials is None:
                raise _Fail(f"{repository} needs credentials ({status})",
                            "give the pod a pull secret for it (imagePullSecrets); check "
                            "here with --creds FILE", facts=facts)
            raise _Fail(f"{self._who()} may not pull {repository} ({status})",
                        "grant the account pull (read) access to the repository",
                        facts=facts)
        raise _Fail(f"HEAD {shown} → {code} {response.reason_phrase}",
                    "the registry is not healthy: look at its logs", facts=facts)

    def _authorization(self, repository: str) -> dict[str, str]:
        if self._basic is not None:
            return {"Authorization": self._basic}
        if self._challenge is not None and self._challenge[0] == "bearer":
            return {"Authorization": f"Bearer {self._token(f'repository:{repository}:pull')}"}
        return {}

    def _tags_note(self, repository: str, headers: dict[str, str]) -> list[str]:
        try:
            response = self._request("GET", self._url(f"/v2/{repository}/tags/list"),
                                     {k: v for k, v in headers.items() if k != "Accept"})
        except httpx.HTTPError:
            return []
        if response.status_code == 404:
            return [f"the repository {repository} is unknown too: check the path"]
        try:
            tags = response.json().get("tags") or [] if response.status_code == 200 else None
        except (ValueError, AttributeError):
            tags = None
        if not isinstance(tags, list):
            return []
        listed = ", ".join(str(t) for t in tags[:10]) + (", ..." if len(tags) > 10 else "")
        return [f"the repository {repository} exists; its tags: {listed or '(none)'}"]

    # --- HTTP plumbing --------------------------------------------------------------------

    def _url(self, path: str) -> httpx.URL:
        return httpx.URL(f"{self.t.scheme}://{self.t.authority}{path}")

    def _checked(self, method: str, url: httpx.URL, headers: dict[str, str]) -> httpx.Response:
        try:
            return self._request(method, url, headers)
        except httpx.HTTPError as exc:
            raise _Fail(f"{method} {url.path}: {registry.describe_transport_error(exc)}",
                        "the registry stopped answering: try again, and look at its logs"
                        ) from None

    def _request(self, method: str, url: httpx.URL,
                 headers: dict[str, str] | None = None) -> httpx.Response:
        """Send to the address this run resolved and connected to (or a --host-alias),
        while TLS verifies, and `Host` names, the registry as the image reference does."""
        headers = dict(headers or {})
        extensions: dict[str, Any] = {}
        host = url.host.lower()
        port = url.port or (443 if url.scheme == "https" else 80)
        address = None
        if host == self.t.host.lower() and port == self.t.port:
            address = self.address
        elif host in self.o.aliases:
            address = self.o.aliases[host]
        if address and address != host:
            headers.setdefault("Host", url.netloc.decode("ascii"))
            if url.scheme == "https" and not _is_ip(host):
                extensions["sni_hostname"] = host
            url = url.copy_with(host=address)
        return self._http().request(method, url, headers=headers, extensions=extensions)

    def _http(self) -> httpx.Client:
        if self._client is None:
            verify: ssl.SSLContext | bool = (
                _verifying_context(self.o.ca_file) if self.t.scheme == "https" else False)
            self._client = httpx.Client(
                verify=verify, http1=True, http2=False, trust_env=False,
                follow_redirects=False, timeout=httpx.Timeout(self.o.timeout),
                headers={"User-Agent": USER_AGENT})
        return self._client


# --- helpers ------------------------------------------------------------------------------


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _lookup(host: str, port: int, timeout: float) -> list[str]:
    """getaddrinfo, bounded: the resolver's own timeouts can add up to much longer."""
    box: list[Any] = []

    def work() -> None:
        try:
            box.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except Exception as exc:  # handed to the caller
            box.append(exc)

    thread = threading.Thread(target=work, daemon=True, name=f"resolve {host}")
    thread.start()
    thread.join(timeout)
    if not box:
        raise TimeoutError(f"no answer within {timeout:g}s")
    if isinstance(box[0], Exception):
        raise box[0]
    return list(dict.fromkeys(str(info[4][0]) for info in box[0]))


def _resolve_fix(host: str) -> str:
    alias = host_aliases_json((HostAlias("<registry IP>", (host,)),))
    return "\n".join((
        f"give nodes a way to resolve {host}: a host alias, {KCI_HOST_ALIASES}: '{alias}' "
        "on the pod template or the namespace (or KCI_HOST_ALIASES on the virtual kubelet)",
        f"or a DNS server that knows it: {KCI_DNS_CONFIG}: "
        "'{\"nameservers\":[\"<DNS server IP>\"]}' (or KCI_DNS_CONFIG)",
        f"check the alias here with --host-alias <registry IP>={host}"))


def _connect_error(exc: OSError, timeout: float) -> tuple[str, str]:
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, TimeoutError):
        return "timeout", f"no answer within {timeout:g}s"
    return "other", exc.strerror or str(exc)


def _connect_fix(kinds: set[str], target: Target) -> str:
    if kinds == {"refused"}:
        return (f"nothing listens on port {target.port}: is the registry running, and is "
                f"{target.port} its port? An image reference without a port means "
                f"{'443' if target.scheme == 'https' else '80'}: write host:port in images "
                "and in the KCI registry annotations")
    if "timeout" in kinds:
        return ("a firewall or security group drops the traffic, or the address is wrong "
                "(check the DNS answer or the host alias)")
    return "check the network path from the nodes to the registry"


def _verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """Verification as containerd (Go) does it: the system store plus `ca_file` (added,
    never replacing), names from SANs only, any certificate of the pool an anchor."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.hostname_checks_common_name = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def _unverified_context(*, legacy: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if legacy:  # to tell "below TLS 1.2" from other failures; never used to send anything
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def _chain(tls: ssl.SSLSocket, *, verified: bool) -> list[x509.Certificate]:
    """The peer's chain: public since Python 3.13, on the internal object before."""
    name = "get_verified_chain" if verified else "get_unverified_chain"
    ders: list[bytes] = []
    method = getattr(tls, name, None) or getattr(getattr(tls, "_sslobj", None), name, None)
    if method is not None:
        for item in method() or []:
            ders.append(item if isinstance(item, bytes)
                        else item.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
    if not ders:
        leaf = tls.getpeercert(binary_form=True)
        ders = [leaf] if leaf else []
    certs = []
    for der in ders:
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError:
            break
    return certs


def _image_text(repository: str, reference: str) -> str:
    """repository:tag, or repository@digest (a digest has a ':', a tag never)."""
    return f"{repository}{'@' if ':' in reference else ':'}{reference}"


def _name(name: x509.Name) -> str:
    return name.rfc4514_string() or "(empty name)"


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName),
            *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # InvalidSignature, or a key type it cannot check
        return False
    return True


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe(cert: x509.Certificate, *, leaf: bool) -> str:
    text = f"{_name(cert.subject)}, issued by {_name(cert.issuer)}"
    if _self_signed(cert):
        text += " (self-signed)"
    text += f"; valid {_when(cert.not_valid_before_utc)} to {_when(cert.not_valid_after_utc)}"
    if leaf:
        text += f"; SANs: {', '.join(_sans(cert)) or '(none)'}"
    return text


def _cert_facts(leaf: x509.Certificate) -> dict[str, Any]:
    return {"subject": _name(leaf.subject), "issuer": _name(leaf.issuer),
            "self_signed": _self_signed(leaf), "sans": _sans(leaf),
            "not_before": _rfc3339(leaf.not_valid_before_utc),
            "not_after": _rfc3339(leaf.not_valid_after_utc)}


def _leaf_problems(leaf: x509.Certificate, host: str, now: datetime) -> list[tuple[str, str]]:
    """(kind, text) of what is wrong with the leaf by itself: dates and names."""
    problems = []
    if now > leaf.not_valid_after_utc:
        problems.append(("dates", f"the certificate expired on {_when(leaf.not_valid_after_utc)}"))
    elif now < leaf.not_valid_before_utc:
        problems.append(("dates", f"the certificate is valid only from "
                                  f"{_when(leaf.not_valid_before_utc)}"))
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns, ips = san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)
    except x509.ExtensionNotFound:
        dns, ips = [], []
    if not _name_covered(host, dns, ips):
        problems.append(("name", f"the certificate is not valid for {host} (SANs: "
                                 f"{', '.join(_sans(leaf)) or 'none'})"))
    return problems


def _ssl_reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    return str(exc) or type(exc).__name__


def _error_codes(response: httpx.Response) -> str:
    """`: CODE message` from a registry's JSON error body, when it has one."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return f": {first.get('code', '')} {first.get('message', '')}".rstrip()
    except (ValueError, AttributeError, IndexError, KeyError, TypeError, httpx.ResponseNotRead):
        return ""


# --- output -------------------------------------------------------------------------------


class _Printer:
    """Lines for people: ✔/✘ and colour (rich) on a terminal, OK/FAIL in plain text
    otherwise (pipes, files, CI logs)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._console: Any = None
        tty = _isatty(stream)
        self.marks = ("✔", "✘") if tty and _can_encode(stream, "✔✘→") else ("OK", "FAIL")
        if tty:
            try:
                from rich.console import Console
            except ImportError:  # rich is optional: plain text on a terminal too
                return
            self._console = Console(file=stream, highlight=False, soft_wrap=True)

    def line(self, *parts: tuple[str, str]) -> None:
        """One line from (text, style) parts; styles apply only with rich."""
        if self._console is not None:
            from rich.text import Text

            self._console.print(Text.assemble(*parts))
        else:
            print("".join(text for text, _ in parts), file=self._stream)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _can_encode(stream: IO[str], text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def print_report(steps: list[Step], options: Options, stream: IO[str]) -> None:
    out = _Printer(stream)
    target = options.target
    title = f"kci-webhook doctor {target.scheme}://{target.registry}"
    if options.repository is not None:
        title += f" (image {_image_text(options.repository, options.reference or '')})"
    out.line((title, "bold"))
    ok_mark, fail_mark = out.marks
    width = max(len(ok_mark), len(fail_mark))
    indent = " " * (width + 1 + 9)
    for step in steps:
        mark = ok_mark if step.ok else fail_mark
        out.line((f"{mark:<{width}} ", "bold green" if step.ok else "bold red"),
                 (f"{step.step:<9}", "bold"), (step.detail, "" if step.ok else "red"))
        for note in step.notes:
            out.line((indent + note, "dim"))
        for i, fix in enumerate(step.fix.splitlines()):
            label = "fix: " if i == 0 else "     "
            out.line((" " * (len(indent) - 5) + label, "bold yellow"), (fix, "yellow"))
    failed = next((s for s in steps if not s.ok), None)
    if failed is not None:
        out.line((f"a pull from {target.registry} would fail at step {failed.step}.",
                  "bold red"))
    elif options.repository is None:
        out.line((f"nodes can reach and log in to {target.registry}; add --image REF to "
                  "check an image too.", "bold green"))
    else:
        out.line((f"a pull from {target.registry} would work.", "bold green"))


# --- command line -------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 600, got {text}")
    return value


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "doctor", help="check a registry as a node pulling from it would",
        description="Check REGISTRY step by step as a node pulls from it: resolve the name, "
                    "connect, verify TLS (system store + --ca), GET /v2/ and its auth "
                    "challenge, log in with --creds, and with --image find the manifest. "
                    "Stops at the first step a pull would fail and names the fix. Exit "
                    "code 0 only when a pull would work, 1 otherwise, 2 for usage errors.")
    parser.add_argument("registry", metavar="REGISTRY[:PORT]",
                        help="the registry as image references name it, e.g. "
                             "harbor.example.com or 192.168.0.10:5000")
    parser.add_argument("--ca", metavar="FILE",
                        help="PEM CA certificate(s) to trust on top of the system store "
                             "(a mirror's caFile, an additionalTrustedCAs entry)")
    parser.add_argument("--creds", metavar="FILE",
                        help="dockerconfigjson with credentials for REGISTRY (the "
                             ".dockerconfigjson of a pull secret)")
    parser.add_argument("--image", metavar="REF",
                        help="check this image's manifest: a repository on REGISTRY with a "
                             "tag or digest (kci/app:1.0), or REGISTRY/kci/app:1.0")
    parser.add_argument("--host-alias", metavar="IP=HOST", action="append", default=[],
                        help="resolve HOST to IP, as a kci-host-aliases entry does on the "
                             "node (repeatable)")
    parser.add_argument("--http", action="store_true",
                        help="speak plain HTTP, as for a registry in kci-http-registry")
    parser.add_argument("--json", action="store_true",
                        help="print the steps as JSON: [{step, ok, detail, fix, notes, "
                             "facts}, ...]")
    parser.add_argument("--timeout", metavar="S", type=_positive_float,
                        default=DEFAULT_TIMEOUT,
                        help=f"seconds for each network operation (default {DEFAULT_TIMEOUT:g})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        options = options_from_args(args)
    except UsageError as exc:
        print(f"kci-webhook doctor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    steps = Doctor(options).run()
    if args.json:
        print(json.dumps([s.as_json() for s in steps], indent=2, ensure_ascii=False))
    else:
        print_report(steps, options, sys.stdout)
    return EXIT_OK if steps and all(s.ok for s in steps) else EXIT_FAIL
