"""The API server's size limits on annotations, checked before anything else."""

from __future__ import annotations

from webhook.core.values.problems import Problems

# The API server caps all annotations of one object together at 256 KiB (the sum of
# len(key) + len(value) in bytes, TotalAnnotationSizeLimitB), so a longer value can never
# be legitimate; refusing it first bounds the work any input can cause.
MAX_VALUE_BYTES = 256 * 1024
MAX_ANNOTATIONS_BYTES = 256 * 1024


def check_size(raw: str, problems: Problems) -> None:
    # Characters first (each is at least one byte) so a huge value is never encoded.
    if len(raw) > MAX_VALUE_BYTES or len(raw.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
        problems.fail(f"value too large: more than {MAX_VALUE_BYTES} bytes, the API's limit "
                      "for all annotations of an object together")
