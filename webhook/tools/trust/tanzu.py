"""What Tanzu expects: object kinds and names, the entry-name rule, and the forms.

A form says where entries live and how many base64 layers their `data` carries over the
PEM (see the package docstring): 1 in a TkgServiceConfiguration or TanzuKubernetesCluster,
2 in a Secret's `data`, 1 in its `stringData`, none for name-only references.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TKG_API_VERSION = "run.tanzu.vmware.com/v1alpha1"
TKG_KIND = "TkgServiceConfiguration"
TKG_NAME = "tkg-service-configuration"
# spec.defaultCNI of a TkgServiceConfiguration takes one of these (VMware's documentation)
CNIS = ("antrea", "calico")
SECRET_SUFFIX = "-user-trusted-ca-secret"

# Tanzu: "a valid key name must consist only of alphanumeric characters, '-', '_' or '.'"
# (it is a Secret data key, and the node file /etc/ssl/certs/tkg-<name>.pem).
_KEY_NAME = re.compile(r"[-._a-zA-Z0-9]+")


def secret_name(cluster: str) -> str:
    return f"{cluster}{SECRET_SUFFIX}"


@dataclass(frozen=True)
class Form:
    """Where entries live and how their data must be encoded."""

    layers: int | None       # base64 layers over the PEM; None: name-only references
    what: str                # "the TkgServiceConfiguration form", ...

    @property
    def expects(self) -> str:
        if self.layers is None:
            return "names only; the certificates are in a Secret"
        return "base64 of the PEM" if self.layers == 1 else \
            "double base64 (base64 of the base64 PEM)"

    @property
    def header(self) -> str:
        if self.layers is None:
            return "names only, the certificates are in the cluster's Secret"
        return f"data: {self.expects}"

    @property
    def encoding(self) -> str:
        return {None: "secret-reference", 1: "base64", 2: "double-base64"}[self.layers]


_TKG = Form(1, "the TkgServiceConfiguration form")
_TKC = Form(1, "the TanzuKubernetesCluster form")
_SECRET = Form(2, "the Secret form")
_STRING_DATA = Form(1, "a Secret's stringData (the API server adds the second base64 itself)")
_REFERENCE = Form(None, "a reference to the cluster's Secret")
