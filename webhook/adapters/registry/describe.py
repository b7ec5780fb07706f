"""A failed presence check in the words a person searches for.

containerd reports a failed pull as `x509: certificate signed by unknown authority`,
`connection refused`, `401 Unauthorized`; the presence check's warnings and log lines, and
`kci-webhook doctor`, say the same, with the mirror setting that fixes it when there is one.
httpx is imported only for the exception types it names.
"""

from __future__ import annotations

import errno
import socket
import ssl

import httpx

from webhook.adapters.registry.credentials import Credentials
from webhook.core.config import Mirror

_VERIFY_REASONS = {
    18: "x509: certificate signed by unknown authority (self-signed; mirror caFile?)",
    19: "x509: certificate signed by unknown authority (mirror caFile?)",
    20: "x509: certificate signed by unknown authority (mirror caFile?)",
    21: "x509: certificate signed by unknown authority (mirror caFile?)",
    9: "x509: certificate is not yet valid (clock skew?)",
    10: "x509: certificate has expired",
    62: "x509: certificate is not valid for this host (the mirror's SANs?)",
    64: "x509: certificate is not valid for this host (the mirror's SANs?)",
}


def describe_transport_error(exc: BaseException) -> str:
    """Name a connection failure as a person searches for it (containerd's wording)."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            reason = _VERIFY_REASONS.get(item.verify_code, "x509: certificate verify failed")
            return f"{reason}: {item.verify_message}"
    text = " ".join(str(item) for item in chain)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        if "unable to get local issuer" in text or "self-signed" in text or \
                "self signed" in text:
            return "x509: certificate signed by unknown authority (mirror caFile?)"
        return f"x509: certificate verify failed: {str(exc)[:200]}"
    for item in chain:
        if isinstance(item, TimeoutError | httpx.TimeoutException):
            return "timeout"
        if isinstance(item, ConnectionRefusedError) or \
                (isinstance(item, OSError) and item.errno == errno.ECONNREFUSED):
            return "connection refused"
        if isinstance(item, socket.gaierror):
            return f"cannot resolve host: {item.strerror or item}"
        if isinstance(item, ssl.SSLError):
            hint = " (is the mirror plain http://?)" if "WRONG_VERSION" in str(item) else ""
            return f"TLS handshake failed: {item.reason or item}{hint}"
    lowered = text.lower()
    if "connection refused" in lowered or "errno 111" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "temporary failure in name" in lowered:
        return "cannot resolve host"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"protocol error: {str(exc)[:200] or 'connection closed by the mirror'}"
    return f"{type(exc).__name__}: {str(exc)[:200]}".rstrip(": ")


def auth_hint(mirror: Mirror, credentials: Credentials | None) -> str:
    """What to look at when a mirror answers a manifest HEAD with 401."""
    if mirror.scheme == "http" and mirror.pull_credential_config_path:
        return ("the mirror requires credentials, which are never sent over plain http://; "
                "use an https:// endpoint")
    if credentials is not None:
        return "check pullCredentialConfigPath (the registry refused the credentials)"
    if mirror.pull_credential_config_path:
        return "check pullCredentialConfigPath (it has no credentials for this mirror)"
    return "the mirror requires credentials; set pullCredentialConfigPath"
