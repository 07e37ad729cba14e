"""GET /events: the live push (Server-Sent Events) of incident events in the caller's scope.

Thin: the log, its fan-out and the scope filter are gis.work.events and gis.work.eventhub.
Browsers' EventSource cannot send headers, so the key comes as ``?key=`` (api.auth admits it
like any other).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from sse_starlette import EventSourceResponse

from api.auth import Viewer
from gis.work import eventhub
from gis.work.events import BACKLOG_AGE, BACKLOG_EVENTS

router = APIRouter(tags=["events"])
PING_S = 15  # a comment line this often keeps proxies from closing an idle stream


class _Stream(EventSourceResponse):
    """sse-starlette's response without its per-write timeout scope when no timeout is set: that
    scope (an anyio CancelScope entered and left for every chunk) was a sixth of a worker's CPU
    under 500 streams (bench/bench_events.py, cProfile), for a timeout this route never sets. A
    failed write is still marked so the response's closing logic skips further sends."""

    async def _send_with_timeout(self, send: Any, message: Any) -> None:
        if self.send_timeout is not None:
            await super()._send_with_timeout(send, message)
            return
        try:
            await send(message)
        except BaseException:
            self._send_interrupted = True
            raise


DESCRIPTION = f"""Events of the incidents in the caller's scope, as they are committed: `incident.created`,
`incident.status` (accepted, dispatched, closed, ...: `to_status`), `incident.escalated`,
`incident.overdue` (escalated by its deadline). The dispatch steps (`action`: dispatch, accept,
decline, arrive, summon, supervise, reply, remind, expire) come as `incident.status` with the
status unchanged and the step in `action`, its actor and `note` (who was offered it, why it was
declined). Each carries the event id as the SSE `id`, the
event's fields, the incident's assignment codes and its live-map `feature` (GeoJSON, personal
data masked below dispatcher).

The stream starts with `ready` (its `id` is where it follows from). A client resuming with
`Last-Event-ID` (or `?last_event_id=`) first gets the events it missed, at most
{BACKLOG_EVENTS} and none older than {BACKLOG_AGE.total_seconds() / 3600:g} hours; when more
were missed it gets `resync` and should reload what it shows. Ids are in commit order except
when two commits race (an earlier id may follow a later one; never lost, never repeated within a
stream)."""


def _resume(header: str | None, query: str | None) -> int | None:
    for field, value in (("Last-Event-ID", header), ("last_event_id", query)):
        if value is None or value == "":
            continue
        if not value.isdigit():
            raise HTTPException(422, f"{field}: {value!r} is not an event id (a non-negative integer)")
        return int(value)
    return None


@router.get(
    "/events",
    summary="Live incident events (Server-Sent Events)",
    description=DESCRIPTION,
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "an endless event stream"}},
)
async def events(
    request: Request,
    principal: Viewer,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", include_in_schema=False)] = None,
    resume: Annotated[
        str | None, Query(alias="last_event_id", description="resume after this event id (as Last-Event-ID)")
    ] = None,
) -> EventSourceResponse:
    after = _resume(last_event_id, resume)
    hub: eventhub.EventHub = request.app.state.events
    settings = request.app.state.settings
    display_crs = str(settings.tile_crs) if settings.tile_url else "wgs84"
    return _Stream(eventhub.stream(hub, principal, after, display_crs=display_crs), ping=PING_S)
