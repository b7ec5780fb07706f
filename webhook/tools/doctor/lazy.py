"""httpx, and the registry code that needs it, imported when a diagnosis first uses them.

The CLI builds every command's parser, so whatever `webhook.tools.doctor` imports, `mutate`,
`trust` and `certs` pay for too: httpx (whose package also imports rich, click and
pygments for its own CLI) adds ~0.3 s. The doctor's modules take httpx and
`describe_transport_error` from here, so they load when a diagnosis runs instead. The
imports are plain `import` statements inside functions, which the import contracts see.
The rest of the registry code the doctor reads (credentials, challenges, the manifest
question) imports no httpx and is imported directly.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

__all__ = ["describe_transport_error", "httpx"]


class _Deferred:
    """A module imported by `load` on first attribute access."""

    def __init__(self, load: Callable[[], ModuleType]) -> None:
        self._load = load

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._load(), attribute)


def _import_httpx() -> ModuleType:
    import httpx

    return httpx


def describe_transport_error(exc: BaseException) -> str:
    """`webhook.adapters.registry.describe.describe_transport_error`, whose module imports
    httpx: a connection failure named as a person searches for it."""
    from webhook.adapters.registry.describe import describe_transport_error as describe

    return describe(exc)


if TYPE_CHECKING:
    import httpx
else:
    httpx = _Deferred(_import_httpx)
