"""Validation of the participant's pages: every bad input gets a specific message.

Field names: ``q-<key>`` holds a question's answer; ``q-<key>.dk`` the "don't know" box of a
number or text question; ``q-<key>.<option>`` the rank of an option in a ranking. Deliberation
reasons are ``r-<option>.stance`` and ``r-<option>.text``.
"""

from dataclasses import dataclass
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils.text import Truncator
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from surveys.definition.spec import PollSpec, QuestionSpec
from surveys.journey.flow import QUESTIONNAIRES
from surveys.models import Participant, Question, Reason

DK = "dk"
TEXT_MAX = 2000
Kind = Question.Kind


@dataclass(frozen=True)
class Given:
    """One answer as stored: the canonical value, its number and the don't-know flag."""

    question: QuestionSpec
    value: Any
    number: float | None
    dont_know: bool


def field_name(question: QuestionSpec, suffix: str = "") -> str:
    return f"q-{question.key}{'.' + suffix if suffix else ''}"


def question_key_of(name: str) -> str:
    return name[2:].split(".", 1)[0]


# The fields of each questionnaire page, built once per poll version, page, option order (pages
# with a ranking) and language: building seven choice fields with their messages cost a
# submission as much as a whole bare request. Fields are never changed once built (the page's
# markup is drawn by surveys.definition.markup, not by these fields), so forms may share them;
# a new poll version is a new key. Cleared whole when full: a few hundred pages, whatever the
# traffic.
_PAGE_FIELDS: dict[tuple[Any, ...], dict[str, forms.Field]] = {}
_PAGE_FIELDS_MAX = 512


class QuestionnaireForm(forms.Form):
    """One questionnaire page. ``given()`` returns the answers, ``None`` meaning "not answered"."""

    wave = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(
        self,
        data: QueryDict,
        *,
        spec: PollSpec,
        questions: list[QuestionSpec],
        wave: int,
        option_order: list[str],
    ) -> None:
        super().__init__(data)
        self.spec = spec
        self.questions = questions
        self.expected_wave = wave
        self.option_order = option_order or spec.option_keys()
        key = (
            spec.version,
            wave,
            tuple(q.key for q in questions),
            # Only a ranking's fields follow the option order: with seven options shuffled per
            # participant (5,040 orders), keying every page by it left almost nothing shared.
            tuple(self.option_order) if any(q.kind == Kind.RANKING for q in questions) else (),
            get_language(),
        )
        shared = _PAGE_FIELDS.get(key)
        if shared is None:
            for question in questions:
                self._add_fields(question)
            shared = {name: field for name, field in self.fields.items() if name != "wave"}
            if len(_PAGE_FIELDS) >= _PAGE_FIELDS_MAX:
                _PAGE_FIELDS.clear()
            _PAGE_FIELDS[key] = shared
        self.fields.update(shared)

    def _add_fields(self, q: QuestionSpec) -> None:
        name = field_name(q)
        dk = [(DK, DK)] if q.dont_know else []
        if q.kind == Kind.RATING:
            low, high = q.scale_min or 0, q.scale_max or 0
            scale = {"min": low, "max": high}
            required = (
                _("Choose a number from %(min)s to %(max)s, or “Don't know”.") % scale
                if q.dont_know
                else _("Choose a number from %(min)s to %(max)s.") % scale
            )
            invalid = (
                _("“%%(value)s” is not on the scale: choose a number from %(min)s to %(max)s.")
                % scale
            )
            self.fields[name] = forms.ChoiceField(
                choices=[(str(i), str(i)) for i in range(low, high + 1)] + dk,
                required=q.required,
                error_messages={"required": required, "invalid_choice": invalid},
            )
        elif q.kind in (Kind.SINGLE, Kind.KNOWLEDGE, Kind.MULTIPLE):
            multiple = q.kind == Kind.MULTIPLE
            field = forms.MultipleChoiceField if multiple else forms.ChoiceField
            self.fields[name] = field(
                choices=[(key, key) for key in q.choice_keys()] + dk,
                required=q.required,
                error_messages={
                    "required": _("Choose at least one answer.")
                    if multiple
                    else _("Choose one answer."),
                    "invalid_choice": _("“%(value)s” is not one of the answers offered."),
                },
            )
        elif q.kind == Kind.NUMBER:
            bounds = _("Enter a number from %(min)s to %(max)s.") % {
                "min": _number_text(q.number_min) if q.number_min is not None else "-∞",
                "max": _number_text(q.number_max) if q.number_max is not None else "∞",
            }
            self.fields[name] = forms.FloatField(
                required=False,
                min_value=q.number_min,
                max_value=q.number_max,
                error_messages={
                    "invalid": _("Enter a number, such as 12 or 3.5."),
                    "min_value": bounds,
                    "max_value": bounds,
                },
            )
            self.fields[field_name(q, DK)] = forms.BooleanField(required=False)
        elif q.kind == Kind.TEXT:
            self.fields[name] = forms.CharField(
                required=False,
                max_length=TEXT_MAX,
                error_messages={
                    "max_length": _("Keep your answer under %(limit)s characters.")
                    % {"limit": TEXT_MAX}
                },
            )
            self.fields[field_name(q, DK)] = forms.BooleanField(required=False)
        elif q.kind == Kind.RANKING:
            count = len(self.option_order)
            for option in self.option_order:
                self.fields[field_name(q, option)] = forms.TypedChoiceField(
                    choices=[("", "")] + [(str(i), str(i)) for i in range(1, count + 1)],
                    coerce=int,
                    required=False,
                    empty_value=None,
                    error_messages={
                        "invalid_choice": _("Ranks go from 1 to %(count)s.") % {"count": count}
                    },
                )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("wave") not in (None, self.expected_wave):
            raise forms.ValidationError(
                _("This form belongs to the other questionnaire. Nothing was saved.")
            )
        self._check_names()
        for q in self.questions:
            self._check_question(q, cleaned)
        return cleaned

    def _check_names(self) -> None:
        """Every posted answer must belong to a question of this page, once."""
        on_page = {q.key for q in self.questions}
        for name in self.data:
            if not name.startswith("q-"):
                continue
            key = question_key_of(name)
            if name not in self.fields:
                if key not in self.spec.by_key:
                    message = _("“%(name)s” is not a question of this poll.")
                elif not self.spec.by_key[key].in_wave(self.expected_wave):
                    message = _(
                        "“%(name)s” belongs to the other questionnaire; it is not asked here."
                    )
                elif key not in on_page:
                    message = _("“%(name)s” is on another page of this questionnaire.")
                else:
                    message = _("“%(name)s” is not a field of this question.")
                self.add_error(None, message % {"name": name})
            elif (
                not isinstance(self.fields[name], forms.MultipleChoiceField)
                and len(self.data.getlist(name)) > 1
            ):
                self.add_error(name, _("Give only one answer."))

    def _check_question(self, q: QuestionSpec, cleaned: dict[str, Any]) -> None:
        name = field_name(q)
        if q.kind == Kind.MULTIPLE:
            keys = cleaned.get(name) or []
            if DK in keys and len(keys) > 1:
                self.add_error(name, _("“Don't know” cannot be combined with other answers."))
        elif q.kind in (Kind.NUMBER, Kind.TEXT):
            if name in self.errors:
                return
            value = cleaned.get(name)
            empty = value in (None, "")
            dont_know = bool(cleaned.get(field_name(q, DK)))
            if dont_know and not q.dont_know:
                self.add_error(name, _("“Don't know” is not offered for this question."))
            elif dont_know and not empty:
                self.add_error(name, _("Give an answer or tick “Don't know”, not both."))
            elif q.required and empty and not dont_know:
                message = _("Enter a number.") if q.kind == Kind.NUMBER else _("Write an answer.")
                self.add_error(name, forms.ValidationError(message, code="required"))
        elif q.kind == Kind.RANKING:
            names = [field_name(q, option) for option in self.option_order]
            if any(n in self.errors for n in names):
                return
            ranks = [cleaned.get(n) for n in names]
            given = [r for r in ranks if r is not None]
            if not given:
                if q.required:
                    message = _("Give each option a rank, 1 for your first choice.")
                    self.add_error(names[0], forms.ValidationError(message, code="required"))
            elif len(given) < len(ranks):
                self.add_error(names[0], _("Give every option a rank, or none at all."))
            elif len(set(given)) < len(given):
                repeated = sorted({r for r in given if given.count(r) > 1})
                self.add_error(
                    names[0],
                    _("Each rank can be used only once; used more than once: %(ranks)s.")
                    % {"ranks": ", ".join(map(str, repeated))},
                )

    def question_errors(self) -> dict[str, str]:
        """{question field name ``q-<key>``: its first message}, in the page's order."""
        found: dict[str, str] = {}
        for name, messages in self.errors.items():
            if name.startswith("q-"):
                found.setdefault(f"q-{question_key_of(name)}", str(messages[0]))
        return {
            field_name(q): found[field_name(q)] for q in self.questions if field_name(q) in found
        }

    def unanswered(self) -> set[str]:
        """Question field names (``q-<key>``) whose first problem is a missing answer.

        The summary counts these apart from answers that were given but are wrong, since
        "7 questions need an answer" tells a participant what to do and "7 problems" does not.
        """
        missing: set[str] = set()
        for name, errors in self.errors.as_data().items():
            if name.startswith("q-") and errors and errors[0].code == "required":
                missing.add(f"q-{question_key_of(name)}")
        return missing

    def summary(self) -> list[tuple[str, str]]:
        """The error summary of a rejected page: (anchor, message) counts, each linked to its
        first question, then the messages that belong to no question.

        Listing every question's full text filled more than a phone's screen with red; the count
        says how much is left, and each question carries its own message where it is asked.
        """
        errors = self.question_errors()
        missing = self.unanswered()
        unanswered = [name for name in errors if name in missing]
        wrong = [name for name in errors if name not in missing]
        summary: list[tuple[str, str]] = []
        if unanswered:
            count = len(unanswered)
            message = ngettext(
                "%(count)s question needs an answer.", "%(count)s questions need an answer.", count
            )
            summary.append((f"#{unanswered[0]}", message % {"count": count}))
        if wrong:
            count = len(wrong)
            message = ngettext(
                "%(count)s answer needs to be corrected.",
                "%(count)s answers need to be corrected.",
                count,
            )
            summary.append((f"#{wrong[0]}", message % {"count": count}))
        return summary + [("", str(message)) for message in self.non_field_errors()]

    def given(self) -> list[tuple[QuestionSpec, Given | None]]:
        """The page's answers in canonical form; call only when the form is valid."""
        out: list[tuple[QuestionSpec, Given | None]] = []
        for q in self.questions:
            out.append((q, self._given(q)))
        return out

    def _given(self, q: QuestionSpec) -> Given | None:
        data = self.cleaned_data
        raw = data.get(field_name(q))
        if q.kind in (Kind.RATING, Kind.SINGLE, Kind.KNOWLEDGE):
            if not raw:
                return None
            if raw == DK:
                return Given(q, None, None, True)
            if q.kind == Kind.RATING:
                return Given(q, int(raw), float(raw), False)
            return Given(q, raw, float(q.choice_code(raw)), False)
        if q.kind == Kind.MULTIPLE:
            if not raw:
                return None
            if raw == [DK]:
                return Given(q, None, None, True)
            order = q.choice_keys()
            return Given(q, sorted(raw, key=order.index), None, False)
        if q.kind in (Kind.NUMBER, Kind.TEXT):
            if data.get(field_name(q, DK)):
                return Given(q, None, None, True)
            if raw in (None, ""):
                return None
            if q.kind == Kind.NUMBER:
                return Given(q, float(raw), float(raw), False)
            return Given(q, raw, None, False)
        if q.kind == Kind.RANKING:
            ranks = {o: data.get(field_name(q, o)) for o in self.option_order}
            if any(r is None for r in ranks.values()):
                return None
            return Given(q, sorted(ranks, key=lambda o: ranks[o]), None, False)
        raise ValueError(f"unknown kind {q.kind}")


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class GivenReason:
    option: str
    stance: str
    text: str


class ReasonsForm(forms.Form):
    """The deliberation page: for each option, an optional reason for or against.

    Nothing is chosen in advance: a stance matters only with a reason, so a stance without
    text is ignored, and text without a stance gets a message that names the option (the
    summary at the top lists the messages without the option's heading next to them).
    """

    def __init__(
        self,
        data: QueryDict | None,
        *,
        option_keys: list[str],
        option_texts: dict[str, str] | None = None,
    ) -> None:
        super().__init__(data)
        self.option_keys = option_keys
        texts = option_texts or {}
        # Option texts are whole sentences; a few words name one well enough in a message.
        self.option_names = {
            key: Truncator(texts.get(key) or key).words(8, truncate="…") for key in option_keys
        }
        for key in option_keys:
            named = {"option": self.option_names[key]}
            self.fields[f"r-{key}.stance"] = forms.ChoiceField(
                choices=Reason.Stance.choices,
                required=False,
                error_messages={
                    "invalid_choice": _("For “%(option)s”, choose “For” or “Against”.") % named
                },
            )
            self.fields[f"r-{key}.text"] = forms.CharField(
                required=False,
                max_length=TEXT_MAX,
                widget=forms.Textarea,
                error_messages={
                    "max_length": _(
                        "Your reason about “%(option)s” is too long: keep it under %(limit)s "
                        "characters."
                    )
                    % {**named, "limit": TEXT_MAX}
                },
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in self.data:
            if name.startswith("r-") and name not in self.fields:
                self.add_error(
                    None, _("“%(name)s” is not an option of this poll.") % {"name": name}
                )
        for key in self.option_keys:
            stance, text = f"r-{key}.stance", f"r-{key}.text"
            if stance in self.errors or text in self.errors:
                continue
            if cleaned.get(text) and not cleaned.get(stance):
                self.add_error(
                    stance,
                    _("You wrote a reason about “%(option)s”: say whether it is for or against.")
                    % {"option": self.option_names[key]},
                )
        return cleaned

    def option_errors(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        for name, messages in self.errors.items():
            if name.startswith("r-"):
                errors.setdefault(name, str(messages[0]))
        return errors

    def summary(self) -> list[tuple[str, str]]:
        """The error summary of a rejected page: each message linked to its field."""
        errors = self.option_errors().items()
        summary = [(f"#{name.replace('.', '-')}", message) for name, message in errors]
        return summary + [("", str(message)) for message in self.non_field_errors()]

    def drafts(self) -> dict[str, tuple[str, str]]:
        """{option: (stance, text)} as typed, valid or not: what the page shows again when it
        comes back without saving (a report, a language switch, a rejected submission)."""
        data = self.data
        return {
            key: (str(data.get(f"r-{key}.stance", "")), str(data.get(f"r-{key}.text", "")))
            for key in self.option_keys
        }

    def reasons(self) -> list[GivenReason]:
        """The reasons written; a stance chosen without text is no reason and is dropped."""
        return [
            GivenReason(
                key, self.cleaned_data[f"r-{key}.stance"], self.cleaned_data[f"r-{key}.text"]
            )
            for key in self.option_keys
            if self.cleaned_data.get(f"r-{key}.text")
        ]


def page_form(
    data: QueryDict, *, spec: PollSpec, participant: Participant, place: tuple[str, int]
) -> QuestionnaireForm:
    """The form of the questionnaire page ``place`` (step, 0-based page) as this participant
    sees it: their arm's questions in their option order."""
    wave = QUESTIONNAIRES[place[0]]
    order = participant.option_order or spec.option_keys()
    section = spec.pages(wave, participant.arm)[place[1]]
    questions = spec.page_questions(wave, section.key, order, participant.arm)
    return QuestionnaireForm(data, spec=spec, questions=questions, wave=wave, option_order=order)


def reasons_form(data: QueryDict, *, spec: PollSpec, participant: Participant) -> ReasonsForm:
    """The deliberation form in the participant's option order, its messages naming options in
    the participant's language."""
    return ReasonsForm(
        data,
        option_keys=participant.option_order or spec.option_keys(),
        option_texts={o.key: spec.text(o.text, participant.language) for o in spec.options},
    )
