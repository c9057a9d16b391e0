"""Rendering of the journey's pages, free of writes, so the admin can preview any of them.

``render_step`` is the single entry point: the participant views call it for the participant
in the database, the organisers' preview calls it with an unsaved ``Participant`` whose arm,
position order, option order and language are set in memory.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from surveys.definition import markup, schedule
from surveys.definition.markup import FormState
from surveys.definition.spec import PollSpec, QuestionSpec, poll_spec
from surveys.journey import access, flow
from surveys.journey.flow import Place
from surveys.journey.forms import DK, QuestionnaireForm, ReasonsForm, field_name
from surveys.models import Answer, Participant, Poll, Question, Reason, ReasonReport
from surveys.templatetags import dotplot

Step = Participant.Step
# Stored answers of one wave as read with the participant: (question id, value, don't know).
AnswerRows = Iterable[tuple[int, Any, str]]
# Placeholders of the per-participant parts of a cached questionnaire frame. Poll content
# never carries \x1e (see surveys.definition.spec._clean), and the paths are slugs and numbers.
CSRF_SLOT = "\x1ecsrf\x1e"
QUESTIONS_SLOT = "\x1equestions\x1e"


class _Memo:
    """A small per-process LRU of markup keyed by poll version: a new version is a new key, so
    entries never go stale, they only age out. Process memory, not the shared cache: a page
    costs no Redis round trip and no unpickling, and each worker renders an entry once."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = build()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.capacity:
                self.items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


FRAGMENTS = _Memo(256)
FRAMES = _Memo(512)


@dataclass
class Posted:
    """What a POST that saved nothing brings back to its page: the values given and, for a
    rejected submission, the messages. A draft (a report or a language switch sent with the
    form) comes back as typed, without messages: it was never submitted."""

    state: FormState
    summary: list[tuple[str, str]]
    reasons: ReasonsForm | None = None
    draft: bool = False

    @classmethod
    def rejected(cls, data: Any, form: QuestionnaireForm) -> "Posted":
        state = posted_state(data)
        state.errors = form.question_errors()
        return cls(state=state, summary=form.summary())

    @classmethod
    def rejected_reasons(cls, data: Any, form: ReasonsForm) -> "Posted":
        return cls(state=posted_state(data), summary=form.summary(), reasons=form)

    @classmethod
    def kept(cls, data: Any, reasons: ReasonsForm | None = None) -> "Posted":
        return cls(state=posted_state(data), summary=[], reasons=reasons, draft=True)


def render_step(
    request: HttpRequest,
    *,
    poll: Poll,
    participant: Participant,
    step: str,
    page: int = 0,
    preview: bool = False,
    posted: Posted | None = None,
    extra: dict[str, Any] | None = None,
    answers: AnswerRows | None = None,
) -> HttpResponse:
    """Render ``step`` (a ``Participant.Step`` value) at 0-based ``page`` for ``participant``.

    - ``participant`` may be unsaved (``pk`` None): nothing is read about it from the database
      and nothing is written, so an organiser sees exactly the participant's page for the
      arm, ``position_order``, ``option_order`` and ``language`` set on the instance;
    - ``preview=True`` shows a preview banner and disables the form's submit buttons;
    - ``posted`` carries the values and messages of a rejected submission;
    - ``answers`` are the participant's stored answers of a questionnaire's wave, when the
      caller read them with the participant (else they are read here).

    The page is rendered in ``participant.language``.
    """
    spec = poll_spec(poll)
    place = Place(step, page)
    language = participant.language if participant.language in spec.languages else "en"
    with translation.override(language):
        if step in flow.QUESTIONNAIRES and posted is None and not preview and not extra:
            return _questionnaire_page(request, spec, participant, place, language, answers)
        context = _common_context(request, spec, participant, place, preview, language)
        builder = {
            Step.WELCOME: _welcome,
            Step.T1: _questionnaire,
            Step.T2: _questionnaire,
            Step.BRIEFING: _briefing,
            Step.NEXT: _next,
            Step.DELIBERATION: _deliberation,
            Step.WAIT: _wait,
            Step.DONE: _done,
        }[step]
        template, step_context = builder(spec, participant, place, language, posted)
        context.update(step_context)
        context.update(extra or {})
        if posted and posted.summary:
            context["title_prefix"] = _("Error:")
        response = render(request, template, context)
    return response


def _common_context(
    request: HttpRequest,
    spec: PollSpec,
    participant: Participant,
    place: Place,
    preview: bool,
    language: str,
) -> dict[str, Any]:
    before, total = flow.progress(spec, arm=participant.arm, place=place)
    pages = flow.page_count(spec, place.step, participant.arm)
    return {
        "spec": spec,
        "participant": participant,
        "place": place,
        "preview": preview,
        "language": language,
        "poll_title": spec.text(spec.title, language),
        "step_label": Step(place.step).label,
        "page_number": place.page + 1,
        "page_total": pages,
        "progress_value": before,
        "progress_total": total,
        "progress_percent": round(100 * before / total) if total else 0,
        "languages": access.language_links(spec.languages),
        "path": request.path,
        "back_url": (
            flow.url_of(spec.slug, Place(place.step, place.page - 1)) if place.page > 0 else ""
        ),
    }


def _welcome(
    spec: PollSpec, participant: Participant, place: Place, language: str, posted: Posted | None
) -> tuple[str, dict[str, Any]]:
    return "surveys/journey/welcome.html", {
        "question": spec.text(spec.question, language),
        "intro": markup.render_markdown(spec.text(spec.intro, language)),
        "errors": posted.state.errors if posted else {},
        "summary": posted.summary if posted else [],
    }


def answers_state(answers: list[tuple[QuestionSpec, Any, str]]) -> FormState:
    """The form state that shows stored answers again (the third of each: the answer's
    missing kind; the journey stores only "don't know")."""
    state = FormState()
    for q, value, missing in answers:
        name = field_name(q)
        if missing:
            state.checked[name] = {DK}
        elif q.kind == Question.Kind.MULTIPLE:
            state.checked[name] = set(value or [])
        elif q.kind == Question.Kind.RANKING:
            for rank, option in enumerate(value or [], 1):
                state.checked[field_name(q, option)] = {str(rank)}
        elif q.kind in (Question.Kind.NUMBER, Question.Kind.TEXT):
            number = isinstance(value, float) and value.is_integer()
            state.values[name] = str(int(value)) if number else str(value)
        else:
            state.checked[name] = {str(value)}
    return state


def posted_state(data: Any) -> FormState:
    """The form state that shows what a rejected POST contained."""
    state = FormState()
    for name in data:
        if name.endswith(".dk"):
            state.checked.setdefault(name[:-3], set()).add(DK)
        elif name.startswith("q-"):
            values = data.getlist(name)
            state.checked[name] = set(values) | state.checked.get(name, set())
            state.values[name] = values[-1] if values else ""
    return state


def _stored_state(
    participant: Participant, wave: int, questions: list[QuestionSpec], answers: AnswerRows | None
) -> FormState:
    """The form state of the participant's stored answers to ``questions``."""
    if not participant.pk:
        return FormState()
    by_id = {q.id: q for q in questions}
    if answers is None:
        answers = Answer.objects.filter(
            participant_id=participant.pk, wave=wave, question_id__in=by_id
        ).values_list("question_id", "value", "missing")
    return answers_state([(by_id[qid], value, dk) for qid, value, dk in answers if qid in by_id])


def _fragments(spec: PollSpec, wave: int, section: str, language: str) -> dict[str, str]:
    return FRAGMENTS.get(  # type: ignore[no-any-return]
        (spec.version, wave, section, language),
        lambda: markup.question_fragments(spec, wave=wave, section=section, language=language),
    )


def _questionnaire(
    spec: PollSpec, participant: Participant, place: Place, language: str, posted: Posted | None
) -> tuple[str, dict[str, Any]]:
    wave = flow.wave_of(place.step) or 1
    section = spec.pages(wave, participant.arm)[place.page]
    order = participant.option_order or spec.option_keys()
    questions = spec.page_questions(wave, section.key, order, participant.arm)
    state = (
        posted.state if posted is not None else _stored_state(participant, wave, questions, None)
    )
    fragments = _fragments(spec, wave, section.key, language)
    return "surveys/journey/questionnaire.html", {
        "wave": wave,
        "section_title": spec.text(section.title, language),
        "section_intro": spec.text(section.intro, language),
        "questions_html": markup.questions_markup(fragments, questions, order, state),
        "summary": posted.summary if posted else [],
        "last_page": flow.is_last_page(spec, place, participant.arm),
        "draft_form": "step-form",
    }


def _questionnaire_page(
    request: HttpRequest,
    spec: PollSpec,
    participant: Participant,
    place: Place,
    language: str,
    answers: AnswerRows | None,
) -> HttpResponse:
    """A questionnaire page as shown on a GET: a frame cached per poll version, language, page
    and arm (the arm sets the progress bar), with the participant's questions and CSRF token
    put in. The frame is the page template rendered once with placeholders, so its markup is
    exactly what rendering the template for the participant would give."""
    wave = flow.wave_of(place.step) or 1
    section = spec.pages(wave, participant.arm)[place.page]
    order = participant.option_order or spec.option_keys()
    questions = spec.page_questions(wave, section.key, order, participant.arm)
    state = _stored_state(participant, wave, questions, answers)
    fragments = _fragments(spec, wave, section.key, language)
    questions_html = markup.questions_markup(fragments, questions, order, state)

    def build() -> str:
        empty = Participant(arm=participant.arm, language=language)
        context = _common_context(request, spec, empty, place, False, language)
        template, step_context = _questionnaire(spec, empty, place, language, None)
        context.update(step_context)
        context.update(questions_html=mark_safe(QUESTIONS_SLOT), csrf_token=CSRF_SLOT)
        return render_to_string(template, context)

    key = (spec.version, language, place, participant.arm, request.path)
    frame: str = FRAMES.get(key, build)
    page = frame.replace(CSRF_SLOT, get_token(request), 1).replace(
        QUESTIONS_SLOT, questions_html, 1
    )
    return HttpResponse(page)


def _briefing(
    spec: PollSpec, participant: Participant, place: Place, language: str, posted: Posted | None
) -> tuple[str, dict[str, Any]]:
    order = participant.position_order or [p.key for p in spec.positions]
    if place.page < len(order):
        position = spec.position(order[place.page])
        return "surveys/journey/briefing_position.html", {
            "position": markup.position_markup(spec, position.key, language),
            "position_number": place.page + 1,
            "position_total": len(order),
            "sources": position.sources,
        }
    texts = markup.options_markup(spec, language)
    options = participant.option_order or spec.option_keys()
    return "surveys/journey/briefing_options.html", {
        "options": [(key, texts[key]) for key in options if key in texts]
    }


def _t2_opens(participant: Participant) -> datetime | None:
    if not participant.poll_id:
        return None
    timing = schedule.Schedule.of(participant.poll)
    return schedule.t2_opens_for(timing, t1_completed_at=participant.t1_completed_at)


def _next(
    spec: PollSpec, participant: Participant, place: Place, language: str, posted: Posted | None
) -> tuple[str, dict[str, Any]]:
    """After T1: what happens next in this participant's arm, in neutral words (nothing about
    what the study expects to find). The date is the participant's own T2 date, if any."""
    return "surveys/journey/next.html", {
        "control": participant.arm == Participant.Arm.CONTROL,
        "over_time": spec.over_time,
        "t2_opens": _t2_opens(participant),
        "deliberation_closes": participant.poll.deliberation_closes
        if participant.poll_id
        else None,
    }


def _wait(
    spec: PollSpec, participant: Participant, place: Place, language: str, posted: Posted | None
) -> tuple[str, dict[str, Any]]:
    return "surveys/journey/wait.html", {
        "t2_opens": _t2_opens(participant),
        "ics_url": reverse("surveys:calendar", args=[spec.slug]),
        "control": participant.arm == Participant.Arm.CONTROL,
    }


def _deliberation(
    spec: PollSpec, participant: Participant, place: Place, language: str, posted: Posted | None
) -> tuple[str, dict[str, Any]]:
    option_keys = participant.option_order or spec.option_keys()
    key_of = {o.id: o.key for o in spec.options}
    others: dict[str, list[dict[str, Any]]] = {key: [] for key in option_keys}
    mine: dict[str, tuple[str, str]] = {}
    reported: set[int] = set()
    if participant.pk and participant.group is not None:
        rows = (
            Reason.objects.visible()
            .filter(
                poll_id=participant.poll_id,
                participant__arm=participant.arm,
                participant__group=participant.group,
            )
            .values_list("id", "participant_id", "option_id", "stance", "text", "language")
        )
        reported = set(
            ReasonReport.objects.filter(participant_id=participant.pk).values_list(
                "reason_id", flat=True
            )
        )
        for reason_id, author, option_id, stance, text, written_in in rows:
            key = key_of.get(option_id)
            if key is None:
                continue
            if author == participant.pk:
                mine[key] = (stance, text)
            else:
                others.setdefault(key, []).append(
                    {
                        "id": reason_id,
                        "stance": stance,
                        "text": text,
                        "reported": reason_id in reported,
                        # Labelled on the page when not the reader's language.
                        "language": written_in if written_in != language else "",
                    }
                )
    texts = markup.options_markup(spec, language)
    form = posted.reasons if posted else None
    # What was typed comes back whatever brought the page back (a rejected submission, a
    # report or a language switch sent with the form); messages only for a real submission.
    typed = form.drafts() if form is not None else {}
    errors = form.option_errors() if form is not None and posted and not posted.draft else {}
    window = participant.poll.deliberation_closes if participant.poll_id else None
    options = []
    for key in option_keys:
        stance, text = typed.get(key) or mine.get(key, ("", ""))
        options.append(
            {
                "key": key,
                "text": texts[key]["text"],
                # Without a window the first to arrive would read nothing: the briefing's
                # arguments stand beside the reasons so far.
                "arguments": None
                if window or not (texts[key]["for"] or texts[key]["against"])
                else texts[key],
                "stance": stance,
                "reason": text,
                "others": others.get(key, []),
                "stance_error": errors.get(f"r-{key}.stance", ""),
                "text_error": errors.get(f"r-{key}.text", ""),
            }
        )
    return "surveys/journey/deliberation.html", {
        "options": options,
        "summary": posted.summary if posted else [],
        "stances": [("", _("No reason")), ("for", _("For")), ("against", _("Against"))],
        "reasons_until": window,
        "draft_form": "reasons-form",
    }


def _done(
    spec: PollSpec, participant: Participant, place: Place, language: str, posted: Posted | None
) -> tuple[str, dict[str, Any]]:
    ratings = {
        q.id: q for q in spec.questions if q.kind == "rating" and q.option and q.waves == "both"
    }
    values: dict[tuple[int, int], tuple[Any, str]] = {}
    if participant.pk:
        rows = Answer.objects.filter(
            participant_id=participant.pk, question_id__in=ratings
        ).values_list("question_id", "wave", "value", "missing")
        values = {(qid, wave): (value, dk) for qid, wave, value, dk in rows}
    # The participant's own answers, drawn and in words (surveys.templatetags.dotplot).
    movements = []
    for number, question in enumerate(ratings.values(), 1):
        before = dotplot.answer_value(values.get((question.id, 1)))
        after = dotplot.answer_value(values.get((question.id, 2)))
        scale = dotplot.Scale(
            question.scale_min or 0,
            10 if question.scale_max is None else question.scale_max,
            spec.text(question.min_label, language),
            spec.text(question.max_label, language),
        )
        move, scale_words = dotplot.describe_parts(before, after, scale)
        movements.append(
            {
                "option": spec.text(spec.option(question.option or "").text, language),
                "row": dotplot.Row(str(number), before, after),
                "move": move,
                "scale_words": scale_words,
                "scale": scale,
            }
        )
    scales = {(m["scale"].low, m["scale"].high) for m in movements}
    return "surveys/journey/done.html", {
        "movements": movements,
        "plot_rows": [m["row"] for m in movements],
        # One figure needs one scale: options on different scales are listed in words only.
        "plot_scale": movements[0]["scale"] if len(scales) == 1 else None,
        "results_url": reverse("public-results", args=[spec.slug]),
        "results_visible": bool(participant.poll_id)
        and participant.poll.results_visible_to_participants(),
        "positions_url": reverse("surveys:positions", args=[spec.slug])
        if participant.arm == Participant.Arm.CONTROL and spec.positions
        else "",
    }


def report_url(slug: str, reason_id: int) -> str:
    return reverse("surveys:report", args=[slug, reason_id])
