"""The pages of a poll over time: not open yet, see you on <date> (with the return link and a
calendar file), and the briefing offered read-only to the control arm after its T2.

Free of writes, like ``surveys.journey.pages``; the views decide who may see what.
"""

from datetime import UTC, datetime, timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from surveys.definition import markup, schedule
from surveys.definition.spec import poll_spec
from surveys.journey import tokens
from surveys.journey.pages import render_step
from surveys.models import Participant, Poll

Step = Participant.Step


def return_url(request: HttpRequest, participant: Participant) -> str:
    token = tokens.return_token(participant.public_id)
    return request.build_absolute_uri(reverse("surveys:return", args=[token]))


def wait_page(request: HttpRequest, participant: Participant) -> HttpResponse:
    """See you on <date>: the participant's return link, to copy or put in a calendar."""
    response = render_step(
        request,
        poll=participant.poll,
        participant=participant,
        step=Step.WAIT,
        extra={"return_url": return_url(request, participant)},
    )
    # The page carries a personal link: no shared cache may keep it.
    response["Cache-Control"] = "private, no-store"
    return response


def not_startable(
    request: HttpRequest, poll: Poll, language: str, timing: schedule.Schedule
) -> HttpResponse:
    """The poll's link before T1 opens (when it will) or after T1 closed (politely, 410)."""
    spec = poll_spec(poll)
    closed = schedule.t1_closed(timing, now=timezone.now())
    with translation.override(language):
        return render(
            request,
            "surveys/journey/not_yet.html",
            {
                "poll_title": spec.text(spec.title, language),
                "closed": closed,
                "opens": timing.t1_opens,
            },
            status=410 if closed else 403,
        )


def _escape(text: str) -> str:
    """RFC 5545 section 3.3.11: backslash, semicolon, comma and newline are escaped in TEXT."""
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """RFC 5545 section 3.1: lines longer than 75 octets continue on lines starting with a
    space (cut between characters, never inside a UTF-8 sequence)."""
    parts, current = [], ""
    for char in line:
        if len((current + char).encode()) > (75 if not parts else 74):
            parts.append(current)
            current = ""
        current += char
    parts.append(current)
    return "\r\n ".join(parts)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_text(
    *, uid: str, title: str, description: str, url: str, starts: datetime, now: datetime
) -> str:
    """One VEVENT of an hour from ``starts``, with the return link. A handful of lines, so
    written here rather than adding a calendar library to the running site."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Deliberate//Deliberative Poll//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{_stamp(now)}",
        f"DTSTART:{_stamp(starts)}",
        f"DTEND:{_stamp(starts + timedelta(hours=1))}",
        f"SUMMARY:{_escape(title)}",
        f"DESCRIPTION:{_escape(description)}",
        f"URL:{url}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines)


def calendar_response(request: HttpRequest, participant: Participant) -> HttpResponse:
    poll = participant.poll
    spec = poll_spec(poll)
    timing = schedule.Schedule.of(poll)
    starts = schedule.t2_opens_for(timing, t1_completed_at=participant.t1_completed_at)
    starts = starts or timezone.now()
    link = return_url(request, participant)
    language = participant.language if participant.language in spec.languages else "en"
    with translation.override(language):
        title = _("Second questionnaire: %(poll)s") % {"poll": spec.text(spec.title, language)}
        description = _("Your personal link to the second questionnaire: %(link)s") % {"link": link}
    text = calendar_text(
        uid=f"{participant.public_id}-t2@{request.get_host()}",
        title=title,
        description=description,
        url=link,
        starts=starts,
        now=timezone.now(),
    )
    response = HttpResponse(text, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{poll.slug}-t2.ics"'
    response["Cache-Control"] = "private, no-store"
    return response


def positions_page(request: HttpRequest, participant: Participant) -> HttpResponse:
    spec = poll_spec(participant.poll)
    language = participant.language if participant.language in spec.languages else "en"
    order = participant.position_order or [p.key for p in spec.positions]
    with translation.override(language):
        # The body's headings go under each position's h2 here (the briefing page has h1).
        positions = [
            {
                "markup": {
                    **markup.position_markup(spec, key, language),
                    "body": markup.render_markdown(
                        spec.text(spec.position(key).body, language), top_heading=3
                    ),
                },
                "sources": spec.position(key).sources,
            }
            for key in order
        ]
        texts = markup.options_markup(spec, language)
        options = [(key, texts[key]) for key in spec.option_keys() if key in texts]
        return render(
            request,
            "surveys/journey/positions.html",
            {
                "poll_title": spec.text(spec.title, language),
                "positions": positions,
                "options": options,
                "done_url": reverse("surveys:done", args=[spec.slug]),
            },
        )
