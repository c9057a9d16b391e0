"""Participant pages. Views are thin adapters: every write goes through surveys.journey.actions,
every page is drawn by surveys.journey.pages.render_step (which the admin preview calls too).
"""

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.core import signing
from django.db import connection
from django.db.models import OuterRef
from django.db.models.functions import JSONArray
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from surveys.definition import schedule
from surveys.definition.markup import FormState
from surveys.definition.spec import poll_spec
from surveys.journey import access, actions, flow, invitations, paradata
from surveys.journey import over_time as journey_time
from surveys.journey.flow import Place
from surveys.journey.forms import page_form, reasons_form
from surveys.journey.pages import Posted, render_step
from surveys.models import Answer, Participant, Poll, ReasonReport, localized

__all__ = ["render_step"]

Step = Participant.Step
ENTRY_SALT = "surveys.entry"
ENTRY_AGE = 7 * 24 * 3600
NO_STORE = "private, no-store"
CLOSED_COOKIE = "journey_closed"


def _remember_closed(response: HttpResponse, slug: str, step: str) -> None:
    """Browser Back to a step the participant has left is sent on to their current page; a
    short cookie tells that page to say the step is closed (the redirect itself must stay the
    same for every client, and the step is no secret: it is in the URL just left)."""
    response.set_cookie(
        CLOSED_COOKIE, step, max_age=120, path=f"/p/{slug}/", httponly=True, samesite="Lax"
    )


def _closed_notice(request: HttpRequest, slug: str) -> dict[str, Any]:
    step = request.COOKIES.get(CLOSED_COOKIE, "")
    if step not in Step.values or step in (Step.WELCOME, Step.DONE):
        return {}
    # Only the questionnaires and the reasons take input; the other steps are just behind.
    gave = step in (Step.T1, Step.DELIBERATION, Step.T2)
    return {"closed_step": Step(step).label, "closed_step_gave": gave}


def _forget_closed(request: HttpRequest, response: HttpResponse, slug: str) -> None:
    if CLOSED_COOKIE in request.COOKIES:
        response.delete_cookie(CLOSED_COOKIE, path=f"/p/{slug}/", samesite="Lax")


def home(request: HttpRequest) -> HttpResponse:
    """What Deliberate is and the polls anyone may join, in the visitor's language.

    The language is the link's ``?lang=`` (remembered in the same cookie the poll pages read),
    else what LocaleMiddleware chose from that cookie or the browser. A poll not written in
    that language is listed in its first language, marked with ``lang`` for screen readers.
    Invitation-only polls are not listed: a stranger could only reach their refusal page.
    """
    codes = [code for code, _name in settings.LANGUAGES]
    asked = request.GET.get("lang")
    language = asked if asked in codes else translation.get_language() or codes[0]
    polls = []
    # Only polls whose T1 takes participants now: one not opened yet or past its T1 would
    # answer "not yet" or "no longer" to whoever followed "Polls you can join".
    now = timezone.now()
    joinable = (
        Poll.objects.open()
        .filter(access=Poll.Access.OPEN)
        .exclude(t1_opens__gt=now)
        .exclude(t1_closes__lte=now)
    )
    for poll in joinable.order_by("pk"):
        shown = language if language in poll.languages else (poll.languages or ["en"])[0]
        polls.append(
            {
                "slug": poll.slug,
                "language": shown,
                "title": localized(poll.title, shown),
                "question": localized(poll.question, shown),
            }
        )
    with translation.override(language):
        response = render(
            request,
            "surveys/home.html",
            {
                "polls": polls,
                "language": language,
                "languages": access.language_links(codes),
                "path": request.path,
            },
        )
    if asked in codes:
        access.keep_language(response, language)
    return response


def _unavailable(
    request: HttpRequest, poll: Poll, language: str, *, took_part: bool = False
) -> HttpResponse:
    """The poll is not open. Someone who took part (the participant of this browser) is still
    offered withdrawal: their answers stay in the results until they withdraw."""
    with translation.override(language):
        status = 410 if poll.status == Poll.Status.CLOSED else 404
        return render(
            request,
            "surveys/journey/unavailable.html",
            {
                "poll": poll,
                "closed": poll.status == Poll.Status.CLOSED,
                # A closed poll is named, in a language switch of its own; a draft is not.
                "poll_title": localized(poll.title, language) if status == 410 else "",
                "languages": access.language_links(poll.languages) if status == 410 else [],
                "path": request.path,
                "language": language,
                "withdraw_url": reverse("surveys:withdraw", args=[poll.slug]) if took_part else "",
                # Whoever comes back after the close finds the results the finish page promised.
                "results_url": reverse("public-results", args=[poll.slug])
                if poll.results_visible_to_participants()
                else "",
            },
            status=status,
        )


def _language(request: HttpRequest, poll: Poll, participant: Participant) -> str:
    language, explicit = access.choose_language(request, poll=poll, participant=participant)
    actions.record_language(participant=participant, language=language)
    participant.language = language
    request._journey_language = language if explicit else None  # type: ignore[attr-defined]
    return language


def _finish(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    language = getattr(request, "_journey_language", None)
    if language:
        access.keep_language(response, language)
    return response


@require_http_methods(["GET", "POST"])
def entry(request: HttpRequest, slug: str) -> HttpResponse:
    """/p/<slug>/: the welcome and consent page, or the participant's current place."""
    participant = access.participant_from_cookie(request, slug)
    poll = participant.poll if participant else get_object_or_404(Poll, slug=slug)
    if participant is None:
        participant = Participant(poll=poll)
    language = _language(request, poll, participant)
    if participant.consented_at is not None:
        return _finish(request, redirect(flow.url_of(slug, flow.current_place(participant))))
    if not access.poll_is_open(poll):
        return _unavailable(request, poll, language)
    timing = schedule.Schedule.of(poll)
    if schedule.t1_not_yet_open(timing, now=timezone.now()) or schedule.t1_closed(
        timing, now=timezone.now()
    ):
        return journey_time.not_startable(request, poll, language, timing)
    if participant.pk is None and poll.access == Poll.Access.INVITATION:
        with translation.override(language):
            return render(
                request, "surveys/journey/invitation_only.html", {"poll": poll}, status=403
            )
    spec = poll_spec(poll)
    if request.method == "POST":
        entry_key, seconds = _read_entry(request.POST.get("entry", ""))
        errors = {}
        with translation.override(language):
            if not entry_key:
                errors["entry"] = _("This form has expired. Please read the page and agree again.")
            if request.POST.get("consent") != "yes":
                errors["consent"] = _("Tick the box to say you agree to take part.")
            if errors:
                summary = [(f"#{name}", message) for name, message in errors.items()]
                posted = Posted(state=FormState(errors=errors), summary=summary)
                return _render_welcome(request, poll, participant, posted)
        participant = actions.give_consent(
            poll=poll,
            spec=spec,
            participant=participant if participant.pk else None,
            entry_key=entry_key,
            language=language,
            welcome_seconds=seconds,
        )
        response = redirect(flow.url_of(slug, flow.current_place(participant)))
        access.remember(response, participant, slug)
        return _finish(request, response)
    return _finish(request, _render_welcome(request, poll, participant, None))


def _read_entry(signed: str) -> tuple[str, float]:
    """(one-time key, seconds the welcome page was open) from the consent form's signed field."""
    try:
        value = signing.TimestampSigner(salt=ENTRY_SALT).unsign(signed, max_age=ENTRY_AGE)
        key, shown = value.split(":", 1)
        return key, paradata.seconds_between(
            datetime.fromtimestamp(float(shown), UTC), timezone.now()
        )
    except (signing.BadSignature, ValueError):
        return "", 0.0


def _render_welcome(
    request: HttpRequest, poll: Poll, participant: Participant, posted: Posted | None
) -> HttpResponse:
    entry_value = signing.TimestampSigner(salt=ENTRY_SALT).sign(
        f"{secrets.token_hex(16)}:{time.time():.0f}"
    )
    return render_step(
        request,
        poll=poll,
        participant=participant,
        step=Step.WELCOME,
        posted=posted,
        extra={"entry": entry_value},
    )


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """/i/<token>/: a personal link. A valid token is always admitted: the participant goes in
    the signed per-poll cookie and the browser straight on to the poll's pages, so the token
    stays out of later URLs and Referer headers. Every bad token gets the same 404, and only
    failed look-ups are limited (so a valid link still works for someone who shares an address,
    say a proxy, with whoever is guessing)."""
    participant = access.invited_participant(token)
    if participant is None and (withdrawn := journey_time.withdrawn_link(request, token)):
        return withdrawn
    return _admit(request, participant, flow.current_place)


def return_link(request: HttpRequest, token: str) -> HttpResponse:
    """/r/<token>/: a participant's personal return link, shown when they must come back for
    T2. Works like an invitation link (signed cookie, then straight on, so the token stays out
    of later URLs), with the same 404 and the same limit on failed look-ups."""

    def place(participant: Participant) -> Place:
        if access.poll_is_open(participant.poll):
            return actions.return_for_t2(participant_id=participant.pk)
        return flow.current_place(participant)

    participant = invitations.returning_participant(token)
    if participant is None and (withdrawn := journey_time.withdrawn_link(request, token)):
        return withdrawn
    return _admit(request, participant, place)


def _admit(
    request: HttpRequest,
    participant: Participant | None,
    place: Callable[[Participant], Place],
) -> HttpResponse:
    """A personal link's participant goes in the signed per-poll cookie and the browser straight
    on to ``place`` (a poll that is not open shows its page at /p/<slug>/, not under the token).
    Every bad token gets the same 404; only failed look-ups count towards the limit."""
    if participant is None:
        if access.token_attempts_blocked(request):
            return render(request, "surveys/journey/too_many.html", status=429)
        access.count_failed_token(request)
        return render(request, "surveys/journey/bad_link.html", status=404)
    poll = participant.poll
    _language(request, poll, participant)
    response = redirect(flow.url_of(poll.slug, place(participant)))
    access.remember(response, participant, poll.slug)
    return _finish(request, response)


def calendar_file(request: HttpRequest, slug: str) -> HttpResponse:
    """/p/<slug>/return.ics: the participant's T2 date with their return link, for a calendar."""
    found = _participant_or_entry(request, slug)
    if isinstance(found, HttpResponse):
        return found
    if found.step != Step.WAIT:
        return redirect(flow.url_of(slug, flow.current_place(found)))
    return journey_time.calendar_response(request, found)


def positions(request: HttpRequest, slug: str) -> HttpResponse:
    """/p/<slug>/positions/: the briefing offered, read-only, to the control arm once its T2 is
    done; nothing is recorded (after T2 it can no longer touch the measurement)."""
    found = _participant_or_entry(request, slug)
    if isinstance(found, HttpResponse):
        return found
    if found.step != Step.DONE or found.arm != Participant.Arm.CONTROL:
        return redirect(flow.url_of(slug, flow.current_place(found)))
    _language(request, found.poll, found)
    return _finish(request, journey_time.positions_page(request, found))


def _participant_or_entry(request: HttpRequest, slug: str) -> Participant | HttpResponse:
    participant = access.participant_from_cookie(request, slug)
    if participant is None or participant.consented_at is None:
        return redirect("surveys:entry", slug)
    return participant


def _participant_with_answers(
    request: HttpRequest, slug: str, wave: int
) -> Participant | HttpResponse:
    """The participant of this browser with their poll and, on PostgreSQL, their answers of
    ``wave`` as ``wave_answers`` [(question id, value, missing kind)]: a questionnaire page in
    one query. Same rules as ``access.participant_from_cookie``."""
    if connection.vendor != "postgresql":
        return _participant_or_entry(request, slug)
    public_id = request.get_signed_cookie(
        access.cookie_name(slug), default=None, salt=access.COOKIE_SALT, max_age=access.COOKIE_AGE
    )
    answers = Answer.objects.filter(participant=OuterRef("pk"), wave=wave).values(
        row=JSONArray("question_id", "value", "missing")
    )
    found = (
        list(
            Participant.objects.select_related("poll")
            .filter(public_id=public_id, poll__slug=slug, revoked_at__isnull=True)
            .annotate(wave_answers=ArraySubquery(answers))[:1]
        )
        if public_id
        else []
    )
    if not found or found[0].consented_at is None:
        return redirect("surveys:entry", slug)
    return found[0]


@require_http_methods(["GET", "POST"])
def step_page(request: HttpRequest, slug: str, step: str, page: int = 1) -> HttpResponse:
    """Every step after consent: shows the page, or takes its submission."""
    wave = flow.wave_of(step)
    if request.method == "GET" and wave is not None:
        found = _participant_with_answers(request, slug, wave)
    else:
        found = _participant_or_entry(request, slug)
    if isinstance(found, HttpResponse):
        return found
    participant = found
    poll = participant.poll
    language = _language(request, poll, participant)
    current = flow.current_place(participant)
    wanted = Place(step, page - 1)
    if not flow.may_view(arm=participant.arm, current=current, wanted=wanted):
        response = redirect(flow.url_of(slug, current))
        if flow.is_closed(arm=participant.arm, current=current, wanted=wanted):
            _remember_closed(response, slug, wanted.step)
        return _finish(request, response)
    if not access.poll_is_open(poll) and step != Step.DONE:
        return _unavailable(request, poll, language, took_part=True)
    if step == Step.WAIT:
        nxt = actions.return_for_t2(participant_id=participant.pk)
        if nxt.step != Step.WAIT:
            return _finish(request, redirect(flow.url_of(slug, nxt)))
        if request.method == "GET":
            return _finish(request, journey_time.wait_page(request, participant))
    if request.method == "POST" and step in (Step.NEXT, Step.WAIT):
        nxt = flow.current_place(participant)
        if step == Step.NEXT:
            nxt = actions.continue_after_t1(participant_id=participant.pk, spec=poll_spec(poll))
        return _finish(request, redirect(flow.url_of(slug, nxt)))
    if request.method == "POST":
        with translation.override(language):
            response = _submit(request, poll, participant, wanted)
    else:
        response = render_step(
            request,
            poll=poll,
            participant=participant,
            step=step,
            page=page - 1,
            answers=getattr(participant, "wave_answers", None),
            extra=_extra(request, participant, step),
        )
        _forget_closed(request, response, slug)
    # Back must fetch the page again, never show a form from the browser's memory that the
    # server would no longer take (a step left behind says it is closed, see _remember_closed).
    response.setdefault("Cache-Control", NO_STORE)
    return _finish(request, response)


def _extra(request: HttpRequest, participant: Participant, step: str) -> dict[str, Any] | None:
    """What a page adds for this visit only: the notice of a closed step just left, and on the
    deliberation page of a poll with a window, the return link to read the group's reasons."""
    extra: dict[str, Any] = _closed_notice(request, participant.poll.slug)
    if step == Step.DELIBERATION and participant.poll.deliberation_closes:
        actions.keep_return_link(participant_id=participant.pk)
        extra["return_url"] = journey_time.return_url(request, participant)
    return extra or None


def _submit(
    request: HttpRequest, poll: Poll, participant: Participant, place: Place
) -> HttpResponse:
    """One step's submission: saved through an action, or shown again with what was typed
    (with the form's messages; without, for a draft sent by the language switch)."""
    spec = poll_spec(poll)
    draft = "draft" in request.POST
    posted: Posted | None = None
    if place.step in flow.QUESTIONNAIRES:
        form = page_form(request.POST, spec=spec, participant=participant, place=place)
        if draft:
            posted = Posted.kept(request.POST)
        elif not form.is_valid():
            posted = Posted.rejected(request.POST, form)
        else:
            nxt = actions.submit_questionnaire_page(
                participant_id=participant.pk,
                spec=spec,
                wave=form.expected_wave,
                page=place.page,
                given=form.given(),
            )
    elif place.step == Step.DELIBERATION:
        reasons = reasons_form(request.POST, spec=spec, participant=participant)
        if draft:
            posted = Posted.kept(request.POST, reasons)
        elif not reasons.is_valid():
            posted = Posted.rejected_reasons(request.POST, reasons)
        else:
            nxt = actions.submit_reasons(
                participant_id=participant.pk, spec=spec, reasons=reasons.reasons()
            )
    elif place.step == Step.BRIEFING:
        nxt = actions.advance_briefing(participant_id=participant.pk, spec=spec, page=place.page)
    else:
        nxt = flow.current_place(participant)
    if posted is not None:
        return render_step(
            request,
            poll=poll,
            participant=participant,
            step=place.step,
            page=place.page,
            posted=posted,
            extra=_extra(request, participant, place.step),
        )
    return HttpResponseRedirect(flow.url_of(poll.slug, nxt))


@require_POST
def report(request: HttpRequest, slug: str, reason_id: int) -> HttpResponse:
    """Report a reason of the group as abusive, without losing what is being typed.

    The report button submits the reasons form to this address, so without JavaScript the
    page comes back with the drafts as typed (nothing saved); the script sends the report
    alone and asks for JSON, and the page is not reloaded at all.
    """
    found = _participant_or_entry(request, slug)
    if isinstance(found, HttpResponse):
        return found
    participant = found
    language = _language(request, participant.poll, participant)
    reported = False
    if participant.step == Step.DELIBERATION:
        actions.report_reason(participant=participant, reason_id=reason_id)
        reports = ReasonReport.objects.filter(participant=participant, reason_id=reason_id)
        reported = reports.exists()
    if "application/json" in request.headers.get("Accept", ""):
        with translation.override(language):
            message = _("Thank you. A moderator will look at this reason.")
        return _finish(request, JsonResponse({"reported": reported, "message": message}))
    typing = any(name.startswith("r-") for name in request.POST)
    if participant.step == Step.DELIBERATION and typing:
        spec = poll_spec(participant.poll)
        reasons = reasons_form(request.POST, spec=spec, participant=participant)
        response = render_step(
            request,
            poll=participant.poll,
            participant=participant,
            step=Step.DELIBERATION,
            posted=Posted.kept(request.POST, reasons),
            extra={
                **(_extra(request, participant, Step.DELIBERATION) or {}),
                # The page's forms post to the step's address, not to this report's.
                "path": flow.url_of(slug, Place(Step.DELIBERATION, 0)),
                # Thanks only for a report recorded (not for a reason hidden meanwhile).
                "reported_id": reason_id if reported else None,
            },
        )
        response["Cache-Control"] = NO_STORE
        return _finish(request, response)
    target = flow.url_of(slug, flow.current_place(participant))
    if not reported:
        return _finish(request, redirect(target))
    return _finish(request, redirect(f"{target}?reported={reason_id}#reason-{reason_id}"))
