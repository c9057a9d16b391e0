"""The pages of a poll over time: not open yet, see you on <date> (with the return link, a
calendar file and the optional email reminder), the briefing offered read-only to the control
arm after its T2, and withdrawal (the confirmation, and the page a withdrawn link shows).

Writes go through ``surveys.journey.actions`` and ``surveys.journey.reminders``. The reminder
and withdrawal views live here, at the end, as thin adapters (the journey's other views are in
``surveys.journey.views``, which decides who may see the other pages).
"""

from datetime import UTC, datetime, timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from surveys.definition import markup, schedule
from surveys.definition.spec import poll_spec
from surveys.journey import access, actions, flow, reminders, tokens
from surveys.journey.pages import render_step
from surveys.models import Participant, Poll, ReminderAddress, Withdrawal, localized

Step = Participant.Step
# The longest address SMTP allows (RFC 5321 with its erratum), as the field's maxlength says.
ADDRESS_MAX = 254


def return_url(request: HttpRequest, participant: Participant) -> str:
    token = tokens.return_token(participant.public_id)
    return request.build_absolute_uri(reverse("surveys:return", args=[token]))


def wait_page(
    request: HttpRequest, participant: Participant, *, email: str = "", error: str = ""
) -> HttpResponse:
    """See you on <date>: the participant's return link, to copy or put in a calendar, and
    the optional reminder by email (``email`` and ``error`` bring back a rejected address)."""
    address = (
        ReminderAddress.objects.filter(participant_id=participant.pk)
        .values_list("email", flat=True)
        .first()
    )
    response = render_step(
        request,
        poll=participant.poll,
        participant=participant,
        step=Step.WAIT,
        extra={
            "return_url": return_url(request, participant),
            "reminder_url": reverse("surveys:reminder", args=[participant.poll.slug]),
            "reminder_email": address or "",
            "reminder_given": email,
            "reminder_error": error,
            "reminder_news": request.GET.get("reminder", ""),
            "title_prefix": _("Error:") if error else "",
        },
    )
    if error:
        response.status_code = 400
    # The page carries a personal link (and perhaps an address): no shared cache may keep it.
    response["Cache-Control"] = "private, no-store"
    return response


def reminder_submitted(request: HttpRequest, participant: Participant) -> HttpResponse:
    """The see-you page's reminder form: keep the address (``send``) or delete it
    (``forget``), then back to the page with a word on what was done."""
    wait_url = reverse("surveys:wait", args=[participant.poll.slug])
    if participant.step != Step.WAIT:
        return redirect(flow.url_of(participant.poll.slug, flow.current_place(participant)))
    if request.POST.get("action") == "forget":
        reminders.forget_address(participant_id=participant.pk)
        return redirect(f"{wait_url}?reminder=forgotten#reminder")
    given = request.POST.get("email", "").strip()
    language = participant.language if participant.language in participant.poll.languages else "en"
    try:
        email = forms.EmailField(max_length=ADDRESS_MAX).clean(given)
    except ValidationError:
        with translation.override(language):
            error = _("Enter an email address in the form name@example.org.")
        # Shown again to be corrected, within the field's own limit: a huge refused value is
        # not reflected back into the page in full.
        return wait_page(request, participant, email=given[:ADDRESS_MAX], error=error)
    reminders.save_address(
        participant_id=participant.pk, email=email, site=request.build_absolute_uri("/")[:-1]
    )
    return redirect(f"{wait_url}?reminder=saved#reminder")


def withdrawal(request: HttpRequest, participant: Participant, language: str) -> HttpResponse:
    """/p/<slug>/withdraw/: what withdrawing deletes, and a button that does it (POST, CSRF);
    then the browser forgets the participant and goes to the page that confirms it."""
    poll = participant.poll
    if request.method == "POST":
        actions.withdraw(participant_id=participant.pk)
        response = redirect("surveys:withdrawn", poll.slug)
        response.delete_cookie(access.cookie_name(poll.slug), samesite="Lax")
        return response
    with translation.override(language):
        response = render(
            request,
            "surveys/journey/withdraw.html",
            {
                "poll_title": localized(poll.title, language),
                "language": language,
                "languages": access.language_links(poll.languages),
                "path": request.path,
                "back_url": flow.url_of(poll.slug, flow.current_place(participant)),
                "reminder": participant.step == Step.WAIT,
            },
        )
    response["Cache-Control"] = "private, no-store"
    return response


def withdrawn_page(
    request: HttpRequest, poll: Poll, language: str, status: int = 200
) -> HttpResponse:
    """You have withdrawn: shown once after the withdrawal, and by the withdrawn person's
    return or invitation link ever after (with 410: what it led to is gone)."""
    with translation.override(language):
        return render(
            request,
            "surveys/journey/withdrawn.html",
            {
                "poll_title": localized(poll.title, language),
                "contact_email": poll.contact_email,
                "language": language,
                "languages": access.language_links(poll.languages),
                "path": request.path,
            },
            status=status,
        )


def withdrawn_link(request: HttpRequest, token: str) -> HttpResponse | None:
    """The page for a return or invitation link of someone who withdrew; None for any other
    token (the caller answers those with the one 404 and counts the failure)."""
    digest = tokens.hash_token(token)
    found = (
        Withdrawal.objects.filter(Q(return_token_hash=digest) | Q(invitation_token_hash=digest))
        .select_related("poll")
        .first()
    )
    if found is None:
        return None
    language, _explicit = access.choose_language(request, poll=found.poll, participant=None)
    return withdrawn_page(request, found.poll, language, status=410)


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
                # Whoever lands here in the wrong language can still switch and read the date.
                "language": language,
                "languages": access.language_links(poll.languages),
                "path": request.path,
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


def _returning(request: HttpRequest, slug: str) -> tuple[Participant, str, bool] | HttpResponse:
    """This browser's participant in the poll with the language of the page (and whether it
    was chosen explicitly), as the journey's own views find them; else the poll's start."""
    participant = access.participant_from_cookie(request, slug)
    if participant is None or participant.consented_at is None:
        return redirect("surveys:entry", slug)
    language, explicit = access.choose_language(
        request, poll=participant.poll, participant=participant
    )
    actions.record_language(participant=participant, language=language)
    return participant, language, explicit


def _kept(response: HttpResponse, language: str, explicit: bool) -> HttpResponse:
    if explicit:
        access.keep_language(response, language)
    return response


@require_POST
def reminder(request: HttpRequest, slug: str) -> HttpResponse:
    """/p/<slug>/reminder/: the see-you page's optional email reminder (keep or delete)."""
    found = _returning(request, slug)
    if isinstance(found, HttpResponse):
        return found
    participant, language, explicit = found
    return _kept(reminder_submitted(request, participant), language, explicit)


@require_http_methods(["GET", "POST"])
def withdraw(request: HttpRequest, slug: str) -> HttpResponse:
    """/p/<slug>/withdraw/: what withdrawing deletes, then (POST, with the CSRF check) the
    withdrawal of this browser's participant; open in any state of the poll."""
    found = _returning(request, slug)
    if isinstance(found, HttpResponse):
        return found
    participant, language, explicit = found
    return _kept(withdrawal(request, participant, language), language, explicit)


def withdrawn(request: HttpRequest, slug: str) -> HttpResponse:
    """/p/<slug>/withdrawn/: the polite page after a withdrawal (the same for anyone)."""
    poll = get_object_or_404(Poll, slug=slug)
    language, explicit = access.choose_language(request, poll=poll, participant=None)
    return _kept(withdrawn_page(request, poll, language), language, explicit)
