"""Step 3, `tls`: the handshake, verified as containerd verifies, and when it fails, why.
(Over 300 lines: every handshake failure a node meets, each with its fix, told apart here.)

Verification uses the system store plus `--ca`, SANs only, TLS 1.2 or newer. A failure
is told apart as a node would meet it, each with its fix: unknown authority (the chain
served, whether the leaf is self-signed, what `--ca` holds instead), expired or not yet
valid (the dates), name mismatch (the SANs against the name asked), a port that speaks
plain HTTP, a server stuck below TLS 1.2.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509

from webhook.core.dialects.kci import host_aliases_json
from webhook.core.model import HostAlias
from webhook.core.values.keys import KCI_HOST_ALIASES, KCI_HTTP_REGISTRY, KCI_INSECURE_REGISTRY
from webhook.tools.doctor.certs import (
    _cert_facts,
    _chain,
    _describe,
    _is_leaf,
    _leaf_problems,
    _name,
    _rfc3339,
    _sans,
    _self_signed,
    _ssl_reason,
    _unverified_context,
    _verifying_context,
    _when,
)
from webhook.tools.doctor.report import Step
from webhook.tools.doctor.session import USER_AGENT, Session
from webhook.tools.doctor.target import _hostport, _is_ip

EXPIRY_WARNING = timedelta(days=30)

# OpenSSL verify codes (X509_V_ERR_*) and what containerd (Go) calls them.
_UNKNOWN_AUTHORITY = {2, 18, 19, 20, 21}  # no issuer / self-signed leaf / self-signed root
_SELF_SIGNED_LEAF = 18
_NOT_YET_VALID, _EXPIRED = 9, 10
_NAME_MISMATCH = {62, 64}  # hostname, IP address
_LEGACY_VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1")


def check_tls(s: Session) -> Step:
    """The handshake, and a note when `--ca` trusts a server certificate, not its CA."""
    step = _check_tls(s)
    if s.t.scheme == "https":
        step.notes.extend(_leaf_ca_notes(s))
    return step


def _leaf_ca_notes(s: Session) -> list[str]:
    return [f"--ca {s.o.ca_file} holds a leaf (server) certificate, {_name(cert.subject)}, "
            f"issued by {_name(cert.issuer)}: trusting it works only until that certificate "
            f"is renewed; trust the CA that issued it ({_name(cert.issuer)}) instead, in "
            "--ca, the mirror's caFile and additionalTrustedCAs"
            for cert in s.o.ca_certs if _is_leaf(cert)]


def _check_tls(s: Session) -> Step:
    if s.t.scheme == "http":
        return Step("tls", True, f"not used: --http, the node speaks plain HTTP to "
                    f"{s.t.registry} as {KCI_HTTP_REGISTRY} tells it to",
                    notes=["--ca is not used over plain HTTP"] if s.o.ca_file else [],
                    facts={"scheme": "http"})
    context = _verifying_context(s.o.ca_file)
    try:
        with s.dial() as sock, \
                context.wrap_socket(sock, server_hostname=s.t.host) as tls:
            version = tls.version() or "?"
            chain = _chain(tls, verified=True)
    except ssl.SSLCertVerificationError as exc:
        return _verify_failed(s, exc)
    except (ssl.SSLError, OSError) as exc:  # TimeoutError and resets are OSErrors
        return _handshake_failed(s, exc)
    leaf = chain[0] if chain else None
    now = datetime.now(UTC)
    notes: list[str] = []
    facts: dict[str, Any] = {"version": version}
    detail = f"{version}, certificate verified for {s.t.host}"
    if leaf is not None:
        facts.update(_cert_facts(leaf))
        notes = [_describe(c, leaf=i == 0) for i, c in enumerate(chain)]
        left = leaf.not_valid_after_utc - now
        detail += f" (valid until {_when(leaf.not_valid_after_utc)})"
        if left < EXPIRY_WARNING:
            notes.append(f"the certificate expires in {left.days} days: renew it before "
                         "nodes start refusing it")
    return Step("tls", True, detail, notes=notes, facts=facts)


def _served_chain(s: Session) -> list[x509.Certificate]:
    """The certificates the server sends, fetched without verifying them."""
    try:
        with s.dial() as sock, _unverified_context().wrap_socket(
                sock, server_hostname=s.t.host) as tls:
            return _chain(tls, verified=False)
    except (ssl.SSLError, OSError):
        return []


def _verify_failed(s: Session, exc: ssl.SSLCertVerificationError) -> Step:
    code = exc.verify_code
    chain = _served_chain(s)
    leaf = chain[0] if chain else None
    now = datetime.now(UTC)
    notes = [f"served: {_describe(c, leaf=i == 0)}" for i, c in enumerate(chain)]
    facts: dict[str, Any] = {"verify_code": code, "verify_message": exc.verify_message}
    if leaf is not None:
        facts.update(_cert_facts(leaf))
    if code in _UNKNOWN_AUTHORITY:
        kind = "authority"
        detail, fix, more = _unknown_authority(s, code, chain)
    elif code in (_EXPIRED, _NOT_YET_VALID):
        kind = "dates"
        detail, fix, more = _bad_dates(s, code, chain, now)
    elif code in _NAME_MISMATCH:
        kind = "name"
        detail, fix, more = _name_mismatch(s, leaf)
    else:
        kind = "other"
        detail = f"x509: certificate verify failed: {exc.verify_message}"
        fix = ("fix the certificate the registry serves (see the chain above); last "
               f"resort, no verification: {KCI_INSECURE_REGISTRY}: {s.t.registry}")
        more = []
    notes += more
    if leaf is not None:  # OpenSSL stops at the first problem; name the others too
        notes += [f"also: {p}" for k, p in _leaf_problems(leaf, s.t.host, now)
                  if k != kind]
    ca = f" -CAfile {s.o.ca_file}" if s.o.ca_file else ""
    sni = "" if s.t.is_ip else f" -servername {s.t.host}"
    notes.append(f"see for yourself: openssl s_client -connect "
                 f"{_hostport(s.address, s.t.port)}{sni}{ca} -showcerts")
    facts["problem"] = kind
    return Step("tls", False, detail, fix, notes, facts)


def _unknown_authority(s: Session, code: int, chain: list[x509.Certificate]
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
    where = (f"neither in this machine's trust store nor in --ca {s.o.ca_file}"
             if s.o.ca_file else "not in this machine's trust store (no --ca given)")
    notes.append(f"nodes must trust {anchor}; it is {where}")
    if s.o.ca_certs and top is not None:
        notes.append(_what_ca_holds(s, top))
    ca_source = ("the server's own certificate (openssl s_client -showcerts prints it)"
                 if leaf_self_signed else f"the CA {anchor} (not the server's certificate)")
    fix = "\n".join((
        f"trust {ca_source} where pulls are verified:",
        "1. for a mirror, give it as the mirror's caFile (the webhook's checks use it; "
        "check here with --ca CA.pem)",
        f"2. {_node_trust(s.t.registry, tanzu=s.o.tanzu)}",
        f"3. last resort, no verification at all: {KCI_INSECURE_REGISTRY}: "
        f"{s.t.registry}"))
    return detail, fix, notes


def _node_trust(registry: str, *, tanzu: bool) -> str:
    """Where the nodes that pull learn the CA: the route that fits how they are managed
    (--nodes). A Tanzu cluster's nodes are rebuilt from its TkgServiceConfiguration, so a
    file put on them by hand is lost; plain containerd nodes read their registry hosts
    directory, or the system store."""
    if tanzu:
        return ("on the nodes of a Tanzu (TKG) cluster: kci-webhook trust CA.pem builds the "
                "TkgServiceConfiguration section spec.trust.additionalTrustedCAs (nodes get it "
                "as /etc/ssl/certs/tkg-<name>.pem at their next rolling update)")
    return (f"on the nodes (containerd): put it in /etc/containerd/certs.d/{registry}/ca.crt "
            f"with a hosts.toml there naming it (ca = \"/etc/containerd/certs.d/{registry}/"
            "ca.crt\"; config_path = \"/etc/containerd/certs.d\" in containerd's registry "
            "config), or in the node's trust store (/usr/local/share/ca-certificates/, then "
            "update-ca-certificates and restart containerd); for a Tanzu (TKG) cluster, see "
            "--nodes tanzu")


def _what_ca_holds(s: Session, top: x509.Certificate) -> str:
    wanted = top.subject if _self_signed(top) else top.issuer
    same_name = [c for c in s.o.ca_certs if c.subject == wanted]
    if same_name:
        return (f"--ca {s.o.ca_file} holds a certificate named {_name(wanted)}, but "
                "it did not sign this chain: a different key (was the CA regenerated?)")
    held = ", ".join(_name(c.subject) for c in s.o.ca_certs[:5])
    return f"--ca {s.o.ca_file} holds {held}: none of them issued this certificate"


def _bad_dates(s: Session, code: int, chain: list[x509.Certificate], now: datetime
               ) -> tuple[str, str, list[str]]:
    candidates = [*chain, *s.o.ca_certs]
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
               f"Stopgap only: {KCI_INSECURE_REGISTRY}: {s.t.registry} skips the check")
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


def _name_mismatch(s: Session, leaf: x509.Certificate | None) -> tuple[str, str, list[str]]:
    host = s.t.host
    sans = _sans(leaf) if leaf is not None else []
    if sans:
        detail = f"x509: certificate is valid for {', '.join(sans)}, not {host}"
    else:
        detail = (f"x509: certificate relies on legacy Common Name field, use SANs "
                  f"instead (it has no subjectAltName, so it is valid for no name; "
                  f"wanted {host})")
    kind = "IP" if s.t.is_ip else "DNS"
    lines = [f"reissue the certificate with {kind}:{host} in its subjectAltName"]
    name = next((san for san in sans if not _is_ip(san) and "*" not in san), None)
    if name is not None:
        port = "" if s.t.port == 443 else f":{s.t.port}"
        alias = host_aliases_json((HostAlias(s.address, (name,)),))
        lines.append(f"or pull by a name the certificate has: images {name}{port}/..., "
                     f"and if {name} has no DNS record, {KCI_HOST_ALIASES}: '{alias}' "
                     f"(check here: kci-webhook doctor {name}{port} "
                     f"--host-alias {s.address}={name})")
    lines.append(f"last resort, no verification: {KCI_INSECURE_REGISTRY}: "
                 f"{s.t.registry}")
    return detail, "\n".join(lines), [f"asked for {host}; the certificate's SANs: "
                                      f"{', '.join(sans) or '(none)'}"]


def _handshake_failed(s: Session, exc: BaseException) -> Step:
    reason = _ssl_reason(exc, s.o.timeout)
    banner = _http_banner(s)
    if banner is not None:
        return Step(
            "tls", False, f"this port speaks plain HTTP, not TLS: the TLS handshake "
            f"failed ({reason}) and a plain HTTP request got {banner!r}",
            "\n".join((
                f"if the registry is meant to be plain HTTP, tell the node: "
                f"{KCI_HTTP_REGISTRY}: {s.t.registry} (for a mirror: an http:// "
                f"endpoint); check here with --http",
                "better: serve the registry over TLS")),
            facts={"problem": "plain-http", "http_status_line": banner})
    legacy = _legacy_version(s)
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
        f"check that {s.t.registry} serves HTTPS on port {s.t.port}: openssl "
        f"s_client -connect {_hostport(s.address, s.t.port)} shows the handshake",
        facts={"problem": "handshake"})


def _http_banner(s: Session) -> str | None:
    """The status line a plain HTTP request gets, or None when it gets none."""
    request = (f"GET /v2/ HTTP/1.1\r\nHost: {s.t.authority}\r\nUser-Agent: "
               f"{USER_AGENT}\r\nConnection: close\r\n\r\n").encode()
    try:
        with s.dial() as sock:
            sock.sendall(request)
            data = sock.recv(512)
    except OSError:
        return None
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    return line[:120] if line.startswith("HTTP/") else None


def _legacy_version(s: Session) -> str | None:
    """The protocol a handshake that allows old versions gets, if it is an old one."""
    try:
        with s.dial() as sock, _unverified_context(legacy=True).wrap_socket(
                sock, server_hostname=s.t.host) as tls:
            version = tls.version()
    except (ssl.SSLError, OSError, ValueError):
        return None
    return version if version in _LEGACY_VERSIONS else None
