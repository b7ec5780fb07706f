"""Bare ASGI apps for `python -m bench --layers`: the webhook's work without FastAPI.

- `static_app` reads the body and answers with fixed bytes (the answer `admit` gives for
  $BENCH_BODY): the cost of uvicorn, httptools, the event loop and the sockets alone.
- `admit_app` reads the body and calls `webhook.core.admission.pipeline.admit` as the
  FastAPI route does.

Both answer any GET (the harness's readiness probe) with a small JSON body.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from bench.samples import CONFIG_PATH, context_factory
from webhook.core.admission.pipeline import admit, admit_offline, answer_nothing

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_context_for = context_factory(Path(os.environ.get("KCI_WEBHOOK_CONFIG") or CONFIG_PATH))
_body_path = os.environ.get("BENCH_BODY")
# computed at import, inside the worker's running loop: the loop-free drive of the same admit
STATIC_ANSWER = (admit_offline(Path(_body_path).read_bytes(), context_for=_context_for).body
                 if _body_path else b"{}")
HEALTHY = b'{"status":"ok"}'


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _answer(send: Send, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def static_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    await _read_body(receive)
    await _answer(send, STATIC_ANSWER if scope["method"] == "POST" else HEALTHY)


async def admit_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    body = await _read_body(receive)
    if scope["method"] != "POST":
        return await _answer(send, HEALTHY)
    decision = await admit(body, context_for=_context_for, ask=answer_nothing)
    await _answer(send, decision.body)
