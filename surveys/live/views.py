"""The journey's live step, /p/<slug>/live/: book a session, wait in its lobby, sit in the room,
and go on once it has closed. Thin: writes go through ``surveys.live.rooms`` (bookings and
rooms) and ``surveys.live.actions`` (everything said in a room, see ``surveys.live.room_api``).

One address serves every stage, so a participant who comes back through their return link, or
reloads, always lands where they are: the booking form, the booked session (with a calendar
file and the way to change it), the lobby, the room, or the end with the panel's answers.
"""

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from surveys.definition.markup import options_markup
from surveys.definition.spec import PollSpec, poll_spec
from surveys.journey import access, flow
from surveys.journey import actions as journey_actions
from surveys.journey import over_time as journey_time
from surveys.journey.flow import Place
from surveys.live import actions, moderator, room_api, rooms
from surveys.live.models import (
    MAX_MESSAGE_CHARS,
    MAX_QUESTION_CHARS,
    ExpertAnswer,
    MoveOnVote,
    Room,
    RoomMember,
)
from surveys.models import Participant, Poll

Step = Participant.Step
NO_STORE = "private, no-store"
# How often the lobby page looks again whether the room has opened (seconds).
LOBBY_REFRESH = 10


def participant_at_live(request: HttpRequest, slug: str) -> Participant | HttpResponse:
    """The participant of this browser at the live step, or where they belong instead."""
    participant = access.participant_from_cookie(request, slug)
    if participant is None or participant.consented_at is None:
        return redirect("surveys:entry", slug)
    if participant.step != Step.LIVE:
        return redirect(flow.url_of(slug, flow.current_place(participant)))
    if not access.poll_is_open(participant.poll):
        return redirect("surveys:entry", slug)
    return participant


def page_language(request: HttpRequest, participant: Participant) -> str:
    language, _explicit = access.choose_language(
        request, poll=participant.poll, participant=participant
    )
    journey_actions.record_language(participant=participant, language=language)
    return language


def _finish(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = NO_STORE
    if request.GET.get("lang") in request_poll_languages(request):
        access.keep_language(response, request.GET["lang"])
    return response


def request_poll_languages(request: HttpRequest) -> tuple[str, ...]:
    return getattr(request, "_live_languages", ())


def common_context(
    request: HttpRequest, spec: PollSpec, participant: Participant, language: str
) -> dict[str, Any]:
    """What the journey's base template needs (title, progress bar, language switch)."""
    place = Place(Step.LIVE, 0)
    before, total = flow.progress(spec, arm=participant.arm, place=place)
    request._live_languages = spec.languages  # type: ignore[attr-defined]
    return {
        "spec": spec,
        "participant": participant,
        "place": place,
        "language": language,
        "poll_title": spec.text(spec.title, language),
        "step_label": Step.LIVE.label,
        "page_number": 1,
        "page_total": 1,
        "progress_value": before,
        "progress_total": total,
        "progress_percent": round(100 * before / total) if total else 0,
        "languages": access.language_links(spec.languages),
        "path": request.path,
    }


@require_http_methods(["GET", "POST"])
def live_step(request: HttpRequest, slug: str) -> HttpResponse:
    found = participant_at_live(request, slug)
    if isinstance(found, HttpResponse):
        return found
    participant = found
    spec = poll_spec(participant.poll)
    language = page_language(request, participant)
    with translation.override(language):
        if request.method == "POST":
            return _finish(request, _posted(request, participant, spec))
        context = common_context(request, spec, participant, language)
        return _finish(request, _page(request, participant, spec, context))


def _posted(request: HttpRequest, participant: Participant, spec: PollSpec) -> HttpResponse:
    here = reverse("surveys:live", args=[spec.slug])
    if request.POST.get("action") == "continue":
        nxt = rooms.leave(participant_id=participant.pk, spec=spec)
        return redirect(flow.url_of(spec.slug, nxt))
    try:
        slot_id = int(request.POST.get("slot", ""))
    except ValueError:
        context = common_context(request, spec, participant, participant.language)
        context["error"] = _("Choose one of the sessions.")
        return _page(request, participant, spec, context, status=400)
    try:
        rooms.book(participant_id=participant.pk, slot_id=slot_id)
    except rooms.BookingError as error:
        context = common_context(request, spec, participant, participant.language)
        context["error"] = str(error)
        return _page(request, participant, spec, context, status=400)
    return redirect(f"{here}?booked=1")


def _page(
    request: HttpRequest,
    participant: Participant,
    spec: PollSpec,
    context: dict[str, Any],
    status: int = 200,
) -> HttpResponse:
    """The page for where the participant is in the live step."""
    seat = rooms.seat_of(participant.pk)
    if seat is not None and seat.removed_at is None and seat.room.state != Room.State.CLOSED:
        return room_page(request, participant, spec, seat, context)
    if seat is not None:
        return _ended(request, participant, spec, seat, context)
    rooms.release_missed(participant_id=participant.pk)
    booking = rooms.active_booking(participant.pk)
    slots = list(rooms.bookable_slots(participant.poll))
    if booking is None and len(slots) == 1 and request.method == "GET":
        # One session offered: the participant is booked for it and may still change their mind
        # when another is added.
        try:
            booking = rooms.book(participant_id=participant.pk, slot_id=slots[0].pk)
            context["assigned"] = True
        except rooms.BookingError:
            booking = None
    if booking is not None and request.method == "GET" and "error" not in context:
        arrival = rooms.arrive(participant_id=participant.pk, spec=spec)
        if arrival.room is not None:
            return redirect(reverse("surveys:live", args=[spec.slug]))
        context["lobby_open"] = arrival.opens_at is None and not arrival.missed
    # The personal link back to this page, for the day of the session.
    journey_actions.keep_return_link(participant_id=participant.pk)
    context.update(
        booking=booking,
        slot=booking.slot if booking else None,
        slot_ends=rooms.ends_at(booking.slot) if booking else None,
        lobby_opens=rooms.arrival_window(booking.slot)[0] if booking else None,
        slots=[
            {"id": slot.pk, "starts": slot.starts_at, "ends": rooms.ends_at(slot)}
            for slot in slots
            if booking is None or slot.pk != booking.slot_id
        ],
        missed=request.GET.get("missed") == "1",
        booked_now=request.GET.get("booked") == "1",
        return_url=journey_time.return_url(request, participant),
        ics_url=reverse("surveys:live-calendar", args=[spec.slug]),
        lobby_refresh=LOBBY_REFRESH,
        async_after=getattr(spec, "deliberation", "") == Poll.Deliberation.BOTH,
    )
    return render(request, "live/book.html", context, status=status)


def room_page(
    request: HttpRequest,
    participant: Participant,
    spec: PollSpec,
    seat: RoomMember,
    context: dict[str, Any],
) -> HttpResponse:
    """The room: agenda, timer, members, messages, hands, questions. The messages so far are
    drawn by the server, so the page reads without the script; the script then follows the
    room over its WebSocket (or by polling) from the last seq shown."""
    room = seat.room
    language = context["language"]
    texts = options_markup(spec, language)
    state = moderator.room_state(room)
    # Every member follows the room's agenda (the poll's order, not each one's shuffled one).
    agenda = [(item["key"], texts[item["key"]]) for item in state["items"] if item["key"] in texts]
    names = {member["id"]: member["pseudonym"] for member in state["members"]}
    voted = MoveOnVote.objects.filter(room=room, member=seat, item_index=room.item_index)
    context.update(
        room=room,
        seat=seat,
        agenda=agenda,
        state=state,
        item_number=room.item_index + 1,
        hands=[names.get(member_id, "") for member_id in state["queue"]],
        hand_raised=seat.pk in state["queue"],
        you_voted=voted.exists(),
        # Nudges to others keep their seq for the script, but are nothing to show here.
        messages=[
            moderator.for_member(moderator.message_payload(m), seat.pk)
            for m in actions.messages_since(member=seat, seq=0)
            if m.to_member_id in (None, seat.pk)
        ],
        config=room_api.page_config(request, spec, room, seat, language),
        max_message=MAX_MESSAGE_CHARS,
        max_question=MAX_QUESTION_CHARS,
        # Without the script each form sends one message: a fresh client id per page.
        client_id=uuid.uuid4().hex,
        question_client_id=uuid.uuid4().hex,
    )
    return render(request, "live/room.html", context)


def _ended(
    request: HttpRequest,
    participant: Participant,
    spec: PollSpec,
    seat: RoomMember,
    context: dict[str, Any],
) -> HttpResponse:
    context.update(
        removed=seat.removed_at is not None,
        answers=published_answers(participant.poll, context["language"]),
        async_after=getattr(spec, "deliberation", "") == Poll.Deliberation.BOTH,
    )
    return render(request, "live/ended.html", context)


def published_answers(poll: Poll, language: str) -> list[ExpertAnswer]:
    """The panel's published answers a participant reads before T2: those in their language
    and those written for everyone."""
    return list(
        ExpertAnswer.objects.filter(poll=poll, published_at__isnull=False)
        .filter(language__in=["", language])
        .prefetch_related("questions")
        .order_by("published_at", "pk")
    )


def slot_calendar(request: HttpRequest, slug: str) -> HttpResponse:
    """/p/<slug>/live/session.ics: the booked session, with the link back to the room."""
    found = participant_at_live(request, slug)
    if isinstance(found, HttpResponse):
        return found
    booking = rooms.active_booking(found.pk)
    if booking is None:
        return redirect("surveys:live", slug)
    journey_actions.keep_return_link(participant_id=found.pk)
    link = journey_time.return_url(request, found)
    spec = poll_spec(found.poll)
    language = found.language if found.language in spec.languages else "en"
    with translation.override(language):
        title = _("Live discussion: %(poll)s") % {"poll": spec.text(spec.title, language)}
        description = _("Your personal link to the discussion room: %(link)s") % {"link": link}
    text = journey_time.calendar_text(
        uid=f"{found.public_id}-live-{booking.slot_id}@{request.get_host()}",
        title=title,
        description=description,
        url=link,
        starts=booking.slot.starts_at,
        now=timezone.now(),
    )
    response = HttpResponse(text, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{slug}-session.ics"'
    response["Cache-Control"] = NO_STORE
    return response
