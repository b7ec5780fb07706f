"""`kci-webhook trust`: build and check the CAs that VMware Tanzu clusters trust.

A Tanzu Kubernetes cluster pulls from a private registry with a self-signed or internal
CA only if that CA is in `trust.additionalTrustedCAs` (otherwise: `x509: certificate
signed by unknown authority`, `ErrImagePull`). It comes in two encodings, and mixing them
up is the classic mistake the Tanzu documentation warns about:

- TkgServiceConfiguration `spec.trust.additionalTrustedCAs` (and a TanzuKubernetesCluster's
  `spec.settings.network.trust.additionalTrustedCAs` entries with `data`): `data` is the
  base64 of the PEM text — single base64.
- The Secret form (`<cluster>-user-trusted-ca-secret`, referenced by name from a Cluster's
  `trust` variable or a v1alpha3 TanzuKubernetesCluster): each `data` value is base64 of
  the base64 of the PEM — double, because Secret `data` is itself base64.
  (`stringData` gets no base64 layer from the API server, so there it is single.)

`kci-webhook trust PEM...` prints either form from certificate files; `trust --check
FILE` reads such YAML and names every problem with its fix. Private keys are refused on
input and flagged on check, and never printed.

This is a shell module: it reads files and prints; nothing in the core imports it.

Its modules, bottom up; each imports only modules listed before it:

- `errors`: TrustError (input refused) and the exit codes
- `pem`: certificate inspection, base64 layers (`peel`); knows nothing of Tanzu
- `tanzu`: Tanzu's kinds, names and entry-name rule; the forms and their encodings
- `build`: entries from PEM files; the TkgServiceConfiguration and Secret YAML
- `report`: findings and the check report (`--check --json`)
- `collect`: YAML loading (duplicate keys kept), the entries of each document kind
- `check`: each entry against its form; duplicates; Secret references
- `output`: the printed report
- `command`: the `kci-webhook trust` arguments and exit codes

The names below are the package's surface; `webhook.cli` needs only `add_parser`.
"""

from __future__ import annotations

from webhook.tools.trust.build import (
    Entry,
    build_entries,
    certificates_from_pem,
    render,
    sanitize_name,
    tkg_service_configuration,
    trust_secret,
)
from webhook.tools.trust.check import check_documents, check_text
from webhook.tools.trust.collect import load_documents
from webhook.tools.trust.command import add_parser, run
from webhook.tools.trust.errors import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, TrustError
from webhook.tools.trust.output import print_report
from webhook.tools.trust.pem import (
    DEFAULT_WARN_DAYS,
    CertInfo,
    Peeled,
    PemContent,
    describe_certificate,
    inspect_pem,
    peel,
)
from webhook.tools.trust.report import CheckReport, DocumentReport, EntryReport, Finding
from webhook.tools.trust.tanzu import (
    CNIS,
    SECRET_SUFFIX,
    TKG_API_VERSION,
    TKG_KIND,
    TKG_NAME,
    Form,
    secret_name,
)

__all__ = [
    "CNIS", "DEFAULT_WARN_DAYS", "EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE",
    "SECRET_SUFFIX", "TKG_API_VERSION", "TKG_KIND", "TKG_NAME",
    "CertInfo", "CheckReport", "DocumentReport", "Entry", "EntryReport", "Finding", "Form",
    "PemContent", "Peeled", "TrustError",
    "add_parser", "build_entries", "certificates_from_pem", "check_documents", "check_text",
    "describe_certificate", "inspect_pem", "load_documents", "peel", "print_report", "render",
    "run", "sanitize_name", "secret_name", "tkg_service_configuration", "trust_secret",
]
