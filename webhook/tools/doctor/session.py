"""One diagnosis in progress: what its steps have found so far, and how it talks.

The steps run in order and hand on what they learn through a `Session`: the addresses
the name resolved to, the one that accepted the connection (TLS and HTTP go there too),
the `/v2/` challenge, the Authorization that Basic auth got accepted. Sockets and HTTP
requests go to that address while TLS verifies, and `Host` names, the registry as the
image reference does; proxy variables are ignored.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from webhook.tools.doctor.certs import _verifying_context
from webhook.tools.doctor.lazy import describe_transport_error, httpx
from webhook.tools.doctor.options import Options
from webhook.tools.doctor.report import _Fail
from webhook.tools.doctor.target import _is_ip

USER_AGENT = "kci-webhook (doctor)"


class Session:
    """The state the steps share, and the HTTP client (closed by `close()`)."""

    def __init__(self, options: Options) -> None:
        self.o = options
        self.t = options.target
        self.addresses: list[str] = []
        self.address = ""  # the address that accepted the connection; HTTP goes there too
        self.challenge: tuple[str, dict[str, str]] | None = None
        self.basic: str | None = None  # the Authorization that /v2/ accepted (Basic)
        self.api_version: str | None = None  # /v2/'s Docker-Distribution-Api-Version
        self._client: httpx.Client | None = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def dial(self) -> socket.socket:
        return socket.create_connection((self.address, self.t.port), self.o.timeout)

    def url(self, path: str) -> httpx.URL:
        return httpx.URL(f"{self.t.scheme}://{self.t.authority}{path}")

    def checked(self, method: str, url: httpx.URL, headers: dict[str, str]) -> httpx.Response:
        try:
            return self.request(method, url, headers)
        except httpx.HTTPError as exc:
            raise _Fail(f"{method} {url.path}: {describe_transport_error(exc)}",
                        "the registry stopped answering: try again, and look at its logs"
                        ) from None

    def request(self, method: str, url: httpx.URL,
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


def _error_codes(response: httpx.Response) -> str:
    """`: CODE message` from a registry's JSON error body, when it has one."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return f": {first.get('code', '')} {first.get('message', '')}".rstrip()
    except (ValueError, AttributeError, IndexError, KeyError, TypeError, httpx.ResponseNotRead):
        return ""
