"""The room over plain HTTP: the same events the WebSocket sends, for clients without one.

``GET /p/<slug>/live/events/?since=N`` answers ``{"events": [state, message...]}`` with the
room's state and every message after seq N the member may see; ``POST /p/<slug>/live/send/``
takes one client message (JSON, the WebSocket's shape: post, flag, raise_hand, lower_hand,
vote_move_on, question_draft, question_vote) and answers the events it causes (an ack, or an
error naming what was wrong). Without the script, the room page's forms post here too
(form-encoded) and come back to the page.

The events are the moderator's (``moderator.room_state``, ``moderator.message_payload``), so
both transports say the same; docs/live-rooms.md describes the protocol.
"""

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from surveys.definition.spec import PollSpec
from surveys.journey import access
from surveys.live import actions, client, moderator
from surveys.live.models import MAX_MESSAGE_CHARS, MAX_QUESTION_CHARS, Room, RoomMember
from surveys.models import Participant

__all__ = ["MAX_MESSAGE_CHARS", "MAX_QUESTION_CHARS"]
# A request body is one small message; anything larger is refused before it is parsed.
MAX_BODY_BYTES = 8 * 1024


def seat_for(request: HttpRequest, slug: str) -> RoomMember | None:
    """The seat of this browser's participant in an open room of the poll ``slug``."""
    participant = access.participant_from_cookie(request, slug)
    if participant is None or participant.step != Participant.Step.LIVE:
        return None
    return (
        RoomMember.objects.select_related("room", "room__slot", "participant")
        .filter(participant=participant, removed_at__isnull=True)
        .exclude(room__state=Room.State.CLOSED)
        .first()
    )


def events_since(seat: RoomMember, since: int) -> list[dict[str, Any]]:
    """The room's state, a ``hidden`` event for each message up to ``since`` hidden now (the
    client may have it with its text) and a ``shown`` one for each shown again (the client may
    have it as a stub), and every message after ``since`` it may see: the same events, in the
    same shapes, as the WebSocket's sync."""
    room = Room.objects.select_related("slot", "turn_member").get(pk=seat.room_id)
    return [
        {**moderator.room_state(room), "you": seat.pk},
        *(moderator.for_member(e, seat.pk) for e in moderator.reviewed_before(room.pk, since)),
        *(
            moderator.for_member(moderator.message_payload(m), seat.pk)
            for m in actions.messages_since(member=seat, seq=since)
        ),
    ]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def handle(seat: RoomMember, payload: Any) -> list[dict[str, Any]]:
    """One client message from ``seat`` through the socket's own dispatch: the events for this
    client (an ack, an error), else the room's new state so the page shows what it did."""
    found = client.handle(member=seat, payload=payload)
    if found:
        return found
    room = Room.objects.select_related("slot", "turn_member").get(pk=seat.room_id)
    return [{**moderator.room_state(room), "you": seat.pk}]


def _form_payload(posted: dict[str, str]) -> dict[str, Any]:
    """A form's fields as the JSON message they stand for (numbers as numbers)."""
    payload: dict[str, Any] = {k: v for k, v in posted.items() if k != "csrfmiddlewaretoken"}
    for name in ("seq", "question", "reply_to"):
        if name in payload:
            payload[name] = _int(payload[name])
    return payload


def _error(code: str, message: str, client_id: Any = "") -> dict[str, Any]:
    event = {"type": "error", "code": code, "message": message}
    if isinstance(client_id, str) and client_id:
        event["client_id"] = client_id
    return event


def _language(seat: RoomMember) -> str:
    return seat.room.language or seat.participant.language or "en"


@require_GET
def events(request: HttpRequest, slug: str) -> HttpResponse:
    seat = seat_for(request, slug)
    if seat is None:
        return JsonResponse({"events": [], "gone": True}, status=410)
    since = max(0, _int(request.GET.get("since")) or 0)
    with translation.override(_language(seat)):
        if not client.spend(seat.pk, "ping"):
            # Each poll takes the room row lock: a client polling in a loop is slowed down.
            message = _("At most %(count)s actions in %(seconds)s seconds; wait a moment.") % {
                "count": client.READ_COUNT,
                "seconds": client.RATE_SECONDS,
            }
            return JsonResponse({"events": [_error("too_fast", message)]}, status=429)
        try:
            # Polling is this client's presence (and, without a worker, the room's clock).
            if seat.joined_at is None:
                actions.join(member=seat)
            else:
                actions.ping(member=seat)
        except actions.Refused as refused:
            return JsonResponse({"events": [refused.as_event()], "gone": True}, status=410)
        response = JsonResponse({"events": events_since(seat, since)})
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
def send(request: HttpRequest, slug: str) -> HttpResponse:
    seat = seat_for(request, slug)
    is_json = request.content_type == "application/json"
    if seat is None:
        if is_json:
            return JsonResponse({"events": [], "gone": True}, status=410)
        return redirect("surveys:live", slug)
    with translation.override(_language(seat)):
        if len(request.body) > MAX_BODY_BYTES:
            found = [_error("too_large", _("This message is too long."))]
        elif is_json:
            try:
                found = handle(seat, json.loads(request.body))
            except ValueError:
                found = [_error("malformed", _("The message could not be read."))]
        else:
            found = handle(seat, _form_payload(request.POST.dict()))
    if not is_json:
        # The page without the script: back to the room, at the newest message.
        return redirect(reverse("surveys:live", args=[slug]) + "#messages-end")
    status = 400 if found and found[0]["type"] == "error" else 200
    return JsonResponse({"events": found}, status=status)


def page_config(
    request: HttpRequest, spec: PollSpec, room: Room, seat: RoomMember, language: str
) -> dict[str, Any]:
    """What the room's script needs, put in the page as JSON (json_script)."""
    return {
        "socket": f"/ws/live/{room.pk}/",
        "events": reverse("surveys:live-events", args=[spec.slug]),
        "send": reverse("surveys:live-send", args=[spec.slug]),
        "page": reverse("surveys:live", args=[spec.slug]),
        "me": seat.pseudonym,
        "me_id": seat.pk,
        "language": language,
        "max_message": MAX_MESSAGE_CHARS,
        "max_question": MAX_QUESTION_CHARS,
    }
