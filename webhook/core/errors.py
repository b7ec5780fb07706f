"""The exception tree, and the two channels errors travel on.

    WebhookError
    ├── InvalidInput          the user's object is wrong: a denial (or a warning) they read
    │   ├── AnnotationError   a KCI annotation (or a default of the same shape) is invalid
    │   └── ReferenceError_   an image reference does not follow the reference grammar
    ├── BadRequest            this webhook call is malformed: HTTP 4xx to the API server
    │   ├── UnsupportedMediaType   HTTP 415
    │   └── PayloadTooLarge        HTTP 413
    └── ConfigError           the platform's configuration is wrong: refuse to start/reload

`InvalidInput` never becomes an HTTP error: the API server called us correctly and the
person who wrote the Pod needs to read why it was refused. `BadRequest` never becomes a
denial: the envelope itself is broken and there is no user to tell.
"""

from __future__ import annotations


class WebhookError(Exception):
    """Root of every error this package raises on purpose."""


class InvalidInput(WebhookError):
    """The admitted object (or an annotation on it) is wrong; the message is for its author."""


class AnnotationError(InvalidInput):
    """One or more problems with a KCI annotation value.

    `problems` holds one message per problem, each already naming the annotation, the
    level it came from and the position, e.g.
    ``k8s.ksyun.com/kci-host-aliases (pod): item 1: "ip": "1.2.3" is not an IPv4 or IPv6 address``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class ReferenceError_(InvalidInput):  # noqa: N801 - trailing underscore avoids the builtin
    """An image reference is invalid. `kind` is a stable identifier tests compare exactly."""

    def __init__(self, kind: str, reference: str) -> None:
        self.kind = kind
        self.reference = reference
        super().__init__(f"{kind}: {reference[:300]!r}")


class BadRequest(WebhookError):
    """The call itself is malformed (not an AdmissionReview, bad JSON, ...): HTTP 400."""

    status_code = 400


class UnsupportedMediaType(BadRequest):
    """The body is not declared as JSON."""

    status_code = 415


class PayloadTooLarge(BadRequest):
    """The body is larger than the configured cap; it was not read whole."""

    status_code = 413


class ConfigError(WebhookError):
    """The configuration (file or environment) is invalid; the message names where."""
