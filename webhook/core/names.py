"""Object names as the Kubernetes API validates them, and its words when it refuses one.

k8s.io/apimachinery/pkg/util/validation: a Service's name is a DNS-1035 label (it becomes
a DNS name, `svc.ns.svc`, so it must start with a letter); a Namespace's name is an
RFC 1123 label. Both: lower-case alphanumerics and '-', at most 63 characters, ending
with an alphanumeric. The messages are the API server's, field error and all
(`FIELD: Invalid value: "Foo": a DNS-1035 label must ...`), so what a tool refuses reads
as what `kubectl apply` would have said.
"""

from __future__ import annotations

import json
import re

MAX_LABEL_LENGTH = 63

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                      "characters or '-', and must start and end with an alphanumeric character")
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or "
                      "'-', start with an alphabetic character, and end with an alphanumeric "
                      "character")
_DNS1123 = re.compile(_DNS1123_LABEL_FMT)
_DNS1035 = re.compile(_DNS1035_LABEL_FMT)


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    """validation.RegexError, word for word."""
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _label_errors(value: str, pattern: re.Pattern[str], message: str, fmt: str,
                  examples: tuple[str, str]) -> list[str]:
    errors = []
    if len(value) > MAX_LABEL_LENGTH:
        errors.append(f"must be no more than {MAX_LABEL_LENGTH} characters")
    if not pattern.fullmatch(value):
        errors.append(_regex_error(message, fmt, *examples))
    return errors


def dns1123_label_errors(value: str) -> list[str]:
    """validation.IsDNS1123Label: what is wrong with `value` as a Namespace name."""
    return _label_errors(value, _DNS1123, _DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT,
                         ("my-name", "123-abc"))


def dns1035_label_errors(value: str) -> list[str]:
    """validation.IsDNS1035Label: what is wrong with `value` as a Service name."""
    return _label_errors(value, _DNS1035, _DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT,
                         ("my-name", "abc-123"))


def invalid_value(value: str, errors: list[str]) -> str:
    """field.Invalid's text without the field: `Invalid value: "VALUE": ERROR, ERROR`."""
    return f"Invalid value: {json.dumps(value)}: {', '.join(errors)}"


def invalid(field: str, value: str, errors: list[str]) -> str:
    """field.Invalid's text: `FIELD: Invalid value: "VALUE": ERROR, ERROR`."""
    return f"{field}: {invalid_value(value, errors)}"
