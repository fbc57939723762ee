"""Watch streams: one JSON event per line over a chunked response.

A watch without a resourceVersion (or with "0") first sends an ADDED event for every
existing object; one with a resourceVersion replays the history after it, or answers
with a 410 Expired ERROR event. ``sendInitialEvents=true`` (watch-list, kubectl >= 1.35)
sends the objects, then a BOOKMARK marking the end of them. Objects that stop matching
the selectors leave the stream with a DELETED event, as from kube-apiserver's cache.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from labkit.embedded import store as st
from labkit.embedded.apiserver import tables
from labkit.embedded.apiserver.status import expired
from labkit.embedded.resources import ResourceType

Matcher = Callable[[dict[str, Any]], bool]


@dataclass
class WatchRequest:
    """What a watch asks for."""

    rt: ResourceType
    namespace: str | None
    matches: Matcher
    resource_version: str | None
    send_initial_events: bool
    bookmarks: bool
    timeout: float | None
    table: bool
    include_object: str
    filtered: bool  # a label or field selector narrows the stream


class _Encoder:
    """Turns events into stream lines; as Tables, the first carries the column definitions."""

    def __init__(self, req: WatchRequest) -> None:
        self.req = req
        self.first = True

    def line(self, event_type: str, obj: dict[str, Any], cached: st.Event | None = None) -> bytes:
        if self.req.table and event_type in (st.ADDED, st.MODIFIED, st.DELETED):
            table = tables.to_table(
                self.req.rt,
                [obj],
                resource_version=obj["metadata"].get("resourceVersion", ""),
                include_object=self.req.include_object,
                column_definitions=self.first,
            )
            self.first = False
            return json.dumps({"type": event_type, "object": table}).encode() + b"\n"
        if cached is not None and cached.type == event_type:
            return cached.line()
        return json.dumps({"type": event_type, "object": obj}).encode() + b"\n"


def _bookmark(rt: ResourceType, rv: int, initial_end: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}


async def serve(request: web.Request, store: st.Store, req: WatchRequest) -> web.StreamResponse:
    """Stream changes until the timeout, the client leaving, or the server stopping."""
    rt = req.rt
    since: int | None = None
    initial: list[dict[str, Any]] = []
    rv_text = req.resource_version
    if req.send_initial_events or not rv_text or rv_text == "0":
        items, _ = store.list(rt.key, req.namespace)
        initial = [o for o in items if req.matches(o)]
    else:
        try:
            since = int(rv_text)
        except ValueError:
            since = None
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    encoder = _Encoder(req)
    try:
        watch, backlog = store.watch(rt.key, req.namespace, since)
    except st.ExpiredError as e:
        await response.prepare(request)
        error = {"type": "ERROR", "object": expired(e.requested, e.oldest).to_status()}
        await response.write(json.dumps(error).encode() + b"\n")
        await response.write_eof()
        return response
    start_rv = store.revision
    await response.prepare(request)
    if since is not None and req.filtered:
        initial_state = [o for o in store.list(rt.key, req.namespace)[0] if req.matches(o)]
    else:
        initial_state = initial
    shown = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in initial_state}
    try:
        chunk = b"".join(encoder.line(st.ADDED, o) for o in initial)
        if req.send_initial_events:
            chunk += (
                json.dumps({"type": "BOOKMARK", "object": _bookmark(rt, start_rv, True)}).encode() + b"\n"
            )
        if chunk:
            await response.write(chunk)
        if since is not None:
            chunk = b"".join(_encode(encoder, req, event, shown) for event in backlog)
            if chunk:
                await response.write(chunk)
        deadline = time.monotonic() + req.timeout if req.timeout else None
        open_ = True
        while open_:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            try:
                first = await asyncio.wait_for(watch.queue.get(), remaining)
            except asyncio.TimeoutError:
                break
            # send what has piled up in one write: one TLS record instead of one per event
            pending = [first]
            while not watch.queue.empty():
                pending.append(watch.queue.get_nowait())
            parts = []
            for event in pending:
                if event is None:  # the server is stopping
                    open_ = False
                    break
                parts.append(_encode(encoder, req, event, shown))
            chunk = b"".join(parts)
            if chunk:
                await response.write(chunk)
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        watch.close()
    return response


def _encode(
    encoder: _Encoder, req: WatchRequest, event: st.Event, shown: set[tuple[str | None, str]]
) -> bytes:
    """The stream line(s) an event gives this watch: none when it concerns objects not selected."""
    obj = event.obj
    ident = (obj["metadata"].get("namespace"), obj["metadata"]["name"])
    if event.type == st.DELETED:
        if ident in shown or req.matches(obj):
            shown.discard(ident)
            return encoder.line(st.DELETED, obj, event)
        return b""
    if req.matches(obj):
        event_type = event.type
        if req.filtered:  # an object can enter the selection by a change: to this client it is new
            event_type = st.MODIFIED if ident in shown else st.ADDED
        shown.add(ident)
        return encoder.line(event_type, obj, event)
    if ident in shown:
        shown.discard(ident)
        return encoder.line(st.DELETED, obj, event)
    return b""
