"""A poll's definition as plain, immutable data, loaded once per process and poll version.

Every participant page needs the poll's sections, questions, options and positions. Loading them
from the database on each request would make queries grow with the poll; instead the whole
definition is read once (four queries) and kept in memory, keyed by the poll's ``updated_at``,
which every edit of the poll or one of its items bumps (see ``surveys.models.touch_poll``).
"""

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.utils import translation
from django.utils.functional import lazy

from surveys.models import (
    DEFAULT_MISSING_CODES,
    Option,
    Poll,
    Position,
    Question,
    Section,
    Texts,
    localized,
    source_url_problem,
)


@dataclass(frozen=True)
class QuestionSpec:
    """One question as the journey asks it and the results read it (the one shape of a question
    outside the ORM)."""

    id: int
    key: str
    kind: str
    section: str
    waves: str
    required: bool
    dont_know: bool
    text: Texts
    help: Texts
    option: str | None
    scale_min: int | None
    scale_max: int | None
    min_label: Texts
    max_label: Texts
    choices: tuple[tuple[str, Texts], ...]
    number_min: float | None
    number_max: float | None
    arms: tuple[str, ...] = ()
    breakdown: bool = False
    correct: str = ""  # a knowledge question's right choice
    missing: dict[str, str] = field(default_factory=dict)  # the question's own codes
    poll_missing: dict[str, str] = field(default_factory=dict)  # the poll's codes
    family: str = ""
    bins: tuple[float, ...] = ()

    def missing_codes(self) -> dict[int, str]:
        """The missing-value codes of this question, code -> kind (dont_know, refused,
        skipped, not_asked): its own map if it declares one, else the poll's, else -99 for
        don't know. A question's map replaces the poll's, as a variable's missing values do in
        SPSS; codes are in increasing order."""
        codes = self.missing or self.poll_missing or DEFAULT_MISSING_CODES
        return {int(code): kind for code, kind in sorted(codes.items(), key=lambda c: int(c[0]))}

    def missing_code(self, kind: str) -> int | None:
        """The code that stands for ``kind`` (the lowest if several do), None if none does."""
        return next((code for code, k in self.missing_codes().items() if k == kind), None)

    @property
    def paired(self) -> bool:
        """Asked at both waves, so a change can be measured."""
        return self.waves == Question.Waves.BOTH

    def in_wave(self, wave: int) -> bool:
        return self.waves == Question.Waves.BOTH or self.waves == f"t{wave}"

    def asks(self, wave: int, arm: str) -> bool:
        """Whether a participant of ``arm`` is asked this question in ``wave``. Arms limit T2
        only (T1 comes before assignment): the control arm is never asked to judge a briefing
        it did not read. ``arm`` empty (the admin preview, cached markup): every arm."""
        return self.in_wave(wave) and (wave == 1 or not arm or not self.arms or arm in self.arms)

    def choice_keys(self) -> list[str]:
        return [key for key, _ in self.choices]

    def choice_codes(self) -> dict[str, int]:
        """Choice key -> its code: the rule of the whole system for single-choice and knowledge
        answers. Codes are 1-based in the definition's order; the journey stores the code as
        ``Answer.number``, the results read it back and the codebook labels it."""
        return {key: code for code, (key, _) in enumerate(self.choices, 1)}

    def choice_code(self, key: str) -> int:
        """The code of one choice (see ``choice_codes``); KeyError for an unknown key."""
        return self.choice_codes()[key]

    def correct_code(self) -> int:
        """The code of the right choice of a knowledge question, 0 when it has none."""
        return self.choice_codes().get(self.correct, 0)


@dataclass(frozen=True)
class SectionSpec:
    key: str
    title: Texts
    intro: Texts


@dataclass(frozen=True)
class OptionSpec:
    id: int
    key: str
    text: Texts
    position: str | None
    arguments_for: Texts
    arguments_against: Texts
    short_label: Texts = field(default_factory=dict)


@dataclass(frozen=True)
class PositionSpec:
    key: str
    title: Texts
    summary: Texts
    body: Texts
    sources: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class PollSpec:
    id: int
    slug: str
    version: str
    languages: tuple[str, ...]
    title: Texts
    question: Texts
    intro: Texts
    sections: tuple[SectionSpec, ...]
    questions: tuple[QuestionSpec, ...]
    options: tuple[OptionSpec, ...]
    positions: tuple[PositionSpec, ...]
    over_time: bool = False
    deliberation: str = Poll.Deliberation.ASYNC.value
    missing: dict[str, str] = field(default_factory=dict)
    by_key: dict[str, QuestionSpec] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_key.update({q.key: q for q in self.questions})

    def option_keys(self) -> list[str]:
        return [o.key for o in self.options]

    def missing_codes(self) -> dict[int, str]:
        """The poll's missing-value codes, code -> kind, in increasing order of code; -99 for
        don't know when the poll declares none (questions may replace them, see
        ``QuestionSpec.missing_codes``)."""
        codes = self.missing or DEFAULT_MISSING_CODES
        return {int(code): kind for code, kind in sorted(codes.items(), key=lambda c: int(c[0]))}

    def option(self, key: str) -> OptionSpec:
        return next(o for o in self.options if o.key == key)

    def position(self, key: str) -> PositionSpec:
        return next(p for p in self.positions if p.key == key)

    def pages(self, wave: int, arm: str = "") -> list[SectionSpec]:
        """The sections that ask ``arm`` questions in ``wave``: one questionnaire page each."""
        used = {q.section for q in self.questions if q.asks(wave, arm)}
        return [s for s in self.sections if s.key in used]

    def page_questions(
        self, wave: int, section: str, option_order: list[str] | None = None, arm: str = ""
    ) -> list[QuestionSpec]:
        """The questions of one page for ``arm``, option ratings in the participant's option
        order."""
        questions = [q for q in self.questions if q.section == section and q.asks(wave, arm)]
        if option_order:
            rank = {key: i for i, key in enumerate(option_order)}
            # Questions about an option follow the participant's (possibly shuffled) option
            # order; sorted() is stable, so other questions keep their place among themselves.
            slots = [i for i, q in enumerate(questions) if q.option]
            ordered = sorted((questions[i] for i in slots), key=lambda q: rank.get(q.option, 0))
            for slot, question in zip(slots, ordered, strict=True):
                questions[slot] = question
        return questions

    def wave_questions(self, wave: int, arm: str = "") -> list[QuestionSpec]:
        return [q for q in self.questions if q.asks(wave, arm)]

    def text(self, texts: Texts, language: str) -> str:
        return localized(texts, language)


def _clean(texts: Any) -> Texts:
    # The cached markup marks its per-participant parts with \x1e; content never carries one.
    return {lang: str(text).replace("\x1e", "") for lang, text in (texts or {}).items()}


def _in_active_language(texts: Texts) -> str:
    return localized(texts, translation.get_language() or "")


# A source's title, publisher, date and "about" may be one text or one per language. The spec
# is shared by every language, so a per-language one is resolved when the page is rendered
# (every page renders inside translation.override(the participant's language)).
_lazy_text = lazy(_in_active_language, str)
SOURCE_TEXTS = ("title", "publisher", "date", "about")


def _source_texts(source: dict[str, Any]) -> dict[str, Any]:
    return {
        name: _lazy_text(_clean(value))
        if name in SOURCE_TEXTS and isinstance(value, dict)
        else value
        for name, value in source.items()
    }


def _linkable(sources: Any) -> tuple[dict[str, Any], ...]:
    # Defence in depth behind the model's validator: rows saved before it (or around it) may
    # hold a javascript: url; such a source is shown as a citation without a link.
    return tuple(
        _source_texts({**source, "url": ""} if source_url_problem(source.get("url")) else source)
        for source in (sources if isinstance(sources, list) else [])
        if isinstance(source, dict)
    )


def build_spec(poll: Poll) -> PollSpec:
    sections_qs = list(Section.objects.filter(poll=poll).order_by("order", "id"))
    sections = tuple(
        SectionSpec(key=s.key, title=_clean(s.title), intro=_clean(s.intro)) for s in sections_qs
    )
    section_keys = {s.id: s.key for s in sections_qs}
    positions_qs = list(Position.objects.filter(poll=poll).order_by("order", "id"))
    position_keys = {p.id: p.key for p in positions_qs}
    options_qs = list(Option.objects.filter(poll=poll).order_by("order", "id"))
    option_keys = {o.id: o.key for o in options_qs}
    options = tuple(
        OptionSpec(
            id=o.id,
            key=o.key,
            text=_clean(o.text),
            position=position_keys.get(o.position_id) if o.position_id else None,
            arguments_for=_clean(o.arguments_for),
            arguments_against=_clean(o.arguments_against),
            short_label=_clean(o.short_label),
        )
        for o in options_qs
    )
    questions = tuple(
        QuestionSpec(
            id=q.id,
            key=q.key,
            kind=q.kind,
            section=section_keys[q.section_id],
            waves=q.waves,
            required=q.required,
            dont_know=q.dont_know,
            text=_clean(q.text),
            help=_clean(q.help),
            option=option_keys.get(q.option_id) if q.option_id else None,
            scale_min=q.scale_min,
            scale_max=q.scale_max,
            min_label=_clean(q.min_label),
            max_label=_clean(q.max_label),
            choices=tuple((c["key"], _clean(c.get("label"))) for c in q.choices),
            number_min=q.number_min,
            number_max=q.number_max,
            arms=tuple(q.arms or ()),
            breakdown=q.breakdown,
            correct=q.answer,
            missing=dict(q.missing or {}),
            poll_missing=dict(poll.missing or {}),
            family=q.family,
            bins=tuple(q.bins or ()),
        )
        for q in Question.objects.filter(poll=poll).order_by("order", "id")
    )
    positions = tuple(
        PositionSpec(
            key=p.key,
            title=_clean(p.title),
            summary=_clean(p.summary),
            body=_clean(p.body),
            sources=_linkable(p.sources),
        )
        for p in positions_qs
    )
    return PollSpec(
        id=poll.id,
        slug=poll.slug,
        version=version_of(poll),
        languages=tuple(poll.languages),
        title=_clean(poll.title),
        question=_clean(poll.question),
        intro=_clean(poll.intro),
        sections=sections,
        questions=questions,
        options=options,
        positions=positions,
        over_time=poll.t2_opens is not None or poll.t2_after is not None,
        deliberation=poll.deliberation,
        missing=dict(poll.missing or {}),
    )


def version_of(poll: Poll) -> str:
    updated: datetime = poll.updated_at
    return f"{poll.id}-{updated.timestamp():.6f}"


@dataclass(frozen=True)
class _Version:
    """A cache key: equal and hashed by the version alone, carrying the poll to build from."""

    version: str
    poll: Poll = field(compare=False, hash=False)


@lru_cache(maxsize=32)
def _spec_at(key: _Version) -> PollSpec:
    return build_spec(key.poll)


def poll_spec(poll: Poll) -> PollSpec:
    """The definition of ``poll`` at its current version, built at most once per process (two
    threads missing at once may both build it; the cache keeps one)."""
    return _spec_at(_Version(version_of(poll), poll))
