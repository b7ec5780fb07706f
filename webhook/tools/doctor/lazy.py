"""httpx and the registry client, imported when a diagnosis first uses them.

The CLI builds every command's parser, so whatever `webhook.tools.doctor` imports, `mutate`,
`trust` and `certs` pay for too: httpx (whose package also imports rich, click and
pygments for its own CLI) and the registry client add ~0.3 s. The doctor's modules take
both from here, so they load when a diagnosis runs instead.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["httpx", "registry"]


class _Deferred:
    """A module imported on first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)


if TYPE_CHECKING:
    import httpx

    from webhook.adapters import registry
else:
    httpx = _Deferred("httpx")
    registry = _Deferred("webhook.adapters.registry")
