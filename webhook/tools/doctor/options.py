"""What to check: the command line, validated into `Options`.

Every problem here is a `UsageError` (exit 2) before any network step runs: a registry
that is not host[:port], a `--host-alias` a `kci-host-aliases` annotation would refuse, a
`--ca` that is not PEM (base64 of PEM is named), `--creds` without an entry for the
registry, an `--image` on another registry.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from webhook.adapters.registry.credentials import (
    Credentials,
    CredentialsError,
    credentials_from_dockerconfig,
)
from webhook.adapters.registry.manifest import manifest_reference
from webhook.core.config import Mirror
from webhook.core.dialects.kci import host_aliases_from_data
from webhook.core.errors import AnnotationError, ReferenceError_
from webhook.core.reference import parse
from webhook.core.values.checks import is_ip
from webhook.tools.doctor.certs import _verifying_context
from webhook.tools.doctor.errors import UsageError
from webhook.tools.doctor.target import DOCKER_HUB_API, Target, parse_target


@dataclass(frozen=True)
class Options:
    target: Target
    aliases: dict[str, str]  # hostname -> IP, the first alias of a name winning (/etc/hosts)
    ca_file: str | None
    ca_certs: tuple[x509.Certificate, ...]
    creds_file: str | None
    credentials: Credentials | None
    repository: str | None
    reference: str | None
    timeout: float
    tanzu: bool = False    # nodes of a Tanzu (TKG) cluster: their trust comes from the TKGS


def parse_host_aliases(values: list[str]) -> dict[str, str]:
    """`IP=HOST[,HOST...]` options, validated exactly as a `kci-host-aliases` annotation."""
    items: list[dict[str, Any]] = []
    for value in values:
        ip, sep, names = value.partition("=")
        if not sep or not ip.strip() or not names.strip():
            raise UsageError(f"--host-alias {value!r}: expected IP=HOST (e.g. "
                             "10.0.0.5=harbor.example.com)")
        if not is_ip(ip.strip()) and all(is_ip(n.strip()) for n in names.split(",")
                                         if n.strip()):
            raise UsageError(f"--host-alias {value!r}: the format is IP=HOST, the address "
                             f"first as in /etc/hosts: --host-alias {names.strip()}="
                             f"{ip.strip()}")
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


def load_ca_file(path: str, *, flag: str = "--ca") -> tuple[x509.Certificate, ...]:
    """The certificates of a `--ca` PEM file; the base64-of-PEM pitfall is named."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot read: {exc.strerror or exc}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        hint = "a CA file is PEM text: -----BEGIN CERTIFICATE-----"
        if _is_base64_pem(data):
            hint = ("it holds base64 of a PEM certificate (what `kubectl get secret -o "
                    "jsonpath='{.data.ca\\.crt}'` prints): decode it first with base64 -d")
        raise UsageError(f"{flag} {path}: no PEM certificate in it; {hint}")
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
    if target.namespace and not path.startswith(f"{target.namespace}/"):
        path = f"{target.namespace}/{path}"      # as the webhook rewrites it to the mirror
    return path, manifest_reference(ref)


def _image_text(repository: str, reference: str) -> str:
    """repository:tag, or repository@digest (a digest has a ':', a tag never)."""
    return f"{repository}{'@' if ':' in reference else ':'}{reference}"


def options_from_args(args: argparse.Namespace) -> Options:
    return _options(parse_target(args.registry, http=args.http), args, ca=args.ca,
                    creds=args.creds)


def mirror_options(mirror: Mirror, args: argparse.Namespace) -> Options:
    """What to check for one mirror of a config: its endpoint as written there, its caFile
    and pullCredentialConfigPath; --host-alias, --image and --timeout from the command."""
    target = parse_target(mirror.endpoint, http=mirror.scheme == "http")
    return _options(target, args, ca=mirror.ca_file, creds=mirror.pull_credential_config_path,
                    ca_flag="caFile", creds_flag="pullCredentialConfigPath")


def _options(target: Target, args: argparse.Namespace, *, ca: str | None, creds: str | None,
             ca_flag: str = "--ca", creds_flag: str = "--creds") -> Options:
    aliases = parse_host_aliases(args.host_alias or [])
    ca_certs: tuple[x509.Certificate, ...] = ()
    if ca:
        ca_certs = load_ca_file(ca, flag=ca_flag)
        try:
            _verifying_context(ca)
        except ssl.SSLError as exc:
            raise UsageError(f"{ca_flag} {ca}: cannot load: {exc.reason or exc}") from None
    credentials = None
    if creds:
        try:
            credentials = credentials_from_dockerconfig(creds, target.registry)
        except CredentialsError as exc:
            raise UsageError(f"{creds_flag} {exc}") from None
    repository = reference = None
    if args.image:
        repository, reference = parse_image(args.image, target)
    return Options(target, aliases, ca, ca_certs, creds, credentials, repository, reference,
                   args.timeout, tanzu=getattr(args, "nodes", "containerd") == "tanzu")
