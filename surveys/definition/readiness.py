"""The readiness check a poll must pass before it opens, as a checklist an organiser can act on.

Each check names what is wrong and which part of the poll to fix (``fix``: the admin maps it to
a link). The definition-file validation runs last as a safety net for anything the specific
checks do not name.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from surveys.definition.files import TRANSLATED, DefinitionError, dump_poll, validate
from surveys.definition.schedule import Schedule, problems
from surveys.models import Poll, Question

# Below this a control arm is too small to estimate its change; above 1 - this, the treatment.
MIN_ARM_SHARE = 0.1
LISTED = 5  # problems named in full before "and N more"


@dataclass(frozen=True)
class Check:
    key: str
    title: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    fix: str = ""  # which part of the poll to edit: positions, options, questions, design, ...
    note: str = ""
    warning: bool = False  # passes, but the organiser should look again before opening

    @property
    def shown_problems(self) -> list[str]:
        extra = len(self.problems) - LISTED
        return self.problems[:LISTED] + ([f"... and {extra} more"] if extra > 0 else [])


@dataclass(frozen=True)
class Readiness:
    checks: list[Check]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failing(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    @property
    def warnings(self) -> list[Check]:
        return [check for check in self.checks if check.ok and check.warning]


def control_title() -> str:
    # Translated when the check runs, in the organiser's language.
    return _("A control share that leaves enough people in each arm")


def _check(key: str, title: str, problems: list[str], fix: str, note: str = "") -> Check:
    return Check(key=key, title=title, ok=not problems, problems=problems, fix=fix, note=note)


def _positions(poll: Poll) -> Check:
    count = poll.positions.count()
    title = _("At least two positions, or none")
    if count == 0:
        note = _(
            "No briefing: the poll has no positions, so the treatment group goes from the first "
            "questionnaire to the deliberation without reading one."
        )
        return _check("positions", title, [], "positions", note)
    problems = (
        []
        if count >= 2
        else ["The poll has 1 position; add another, or remove it (then it has no briefing)."]
    )
    return _check("positions", title, problems, "positions")


def _paired_items(poll: Poll) -> Check:
    problems = []
    questions = list(poll.questions.select_related("option"))
    rated = {q.option_id for q in questions if q.option_id}
    for option in poll.options.all():
        if option.pk not in rated:
            problems.append(f"Option '{option.key}' has no rating question.")
    for question in questions:
        paired = question.option_id or question.kind == Question.Kind.RANKING
        if paired and question.waves != Question.Waves.BOTH:
            problems.append(
                f"Question '{question.key}' is a paired item but is asked at "
                f"{question.get_waves_display()} only: ask it in both waves."
            )
    if not rated:
        problems.append("No option is rated: add a rating question for each option.")
    title = _("Every paired item asked in both waves")
    return _check("paired", title, problems, "questions")


def _ranking(poll: Poll) -> Check:
    problems = []
    if not poll.questions.filter(kind=Question.Kind.RANKING).exists():
        problems.append("Add a question of kind 'ranking of the options'.")
    options = poll.options.count()
    if options < 3:
        problems.append(f"A ranking needs at least three options; the poll has {options}.")
    return _check("ranking", _("A ranking of at least three options"), problems, "options")


def _texts(value: Any, where: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Every translated mapping in dumped definition data, with a readable location."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in TRANSLATED and isinstance(item, dict):
                yield f"{where} {key.replace('_', ' ')}".strip(), item
            else:
                label = item.get("key", "") if isinstance(item, dict) else ""
                yield from _texts(item, f"{where} {label}".strip() if label else where)
    elif isinstance(value, list):
        for item in value:
            label = item.get("key", "") if isinstance(item, dict) else ""
            yield from _texts(item, f"{where} '{label}'" if label else where)


def _languages(poll: Poll, data: dict[str, Any]) -> Check:
    problems = []
    parts: dict[str, Any] = {"poll": {k: getattr(poll, k) for k in ("title", "question", "intro")}}
    for name in ("sections", "positions", "options", "questions"):
        parts[name] = data.get(name, [])
    for name, value in parts.items():
        for where, texts in _texts(value, name):
            if not texts:
                continue
            missing = [code for code in poll.languages if not texts.get(code, "").strip()]
            if missing:
                problems.append(f"{where}: missing {', '.join(missing)}")
    note = _("Languages: %(codes)s.") % {"codes": ", ".join(poll.languages)}
    return _check("languages", _("Every language complete"), problems, "languages", note)


def _knowledge(poll: Poll) -> Check:
    problems = []
    for question in poll.questions.filter(kind=Question.Kind.KNOWLEDGE):
        keys = question.choice_keys()
        if len(keys) < 2:
            problems.append(f"Knowledge item '{question.key}' needs at least two choices.")
        if question.answer not in keys:
            problems.append(f"Knowledge item '{question.key}' has no valid answer key.")
    return _check("knowledge", _("Knowledge items have answer keys"), problems, "questions")


def _control_share(poll: Poll) -> Check:
    share = poll.control_share
    if share == 0:
        # Allowed (a poll may only inform), but the poll's central comparison is lost.
        note = _(
            "No control group: the results cannot compare participants who deliberated with "
            "those who did not. Set a control share (0.5 is half) unless this is meant."
        )
        return Check(
            key="control",
            title=control_title(),
            ok=True,
            fix="design",
            note=note,
            warning=True,
        )
    problems = []
    if share < MIN_ARM_SHARE or share > 1 - MIN_ARM_SHARE:
        problems.append(
            f"A control share of {share:.0%} leaves one arm with under {MIN_ARM_SHARE:.0%} of "
            f"participants; use 0 (no control arm) or a share between {MIN_ARM_SHARE:.0%} and "
            f"{1 - MIN_ARM_SHARE:.0%}."
        )
    invited = poll.participants.usable_invitations().count()
    needed = max(poll.min_subgroup_size, poll.group_size)
    note = ""
    if poll.access == Poll.Access.INVITATION and invited:
        control = int(invited * share)
        treatment = invited - control
        note = _(
            "With %(invited)s invitations: about %(treatment)s treatment, %(control)s control."
        ) % {"invited": invited, "treatment": treatment, "control": control}
        if min(control, treatment) < needed:
            problems.append(
                f"With {invited} invitations one arm gets fewer than {needed} people "
                "(the larger of the group size and the smallest reported subgroup)."
            )
    return _check("control", control_title(), problems, "design", note)


def _schedule(poll: Poll) -> Check:
    timing = Schedule.of(poll)
    note = "" if timing.over_time else _("No schedule: the poll runs in one sitting.")
    return _check("schedule", _("A consistent schedule"), problems(timing), "schedule", note)


def _definition(poll: Poll, data: dict[str, Any]) -> Check:
    try:
        validate(data, poll.slug)
    except DefinitionError as error:
        problems = [f"{problem.path}: {problem.message}" for problem in error.problems]
    else:
        problems = []
    title = _("The poll definition is complete and valid")
    return _check("definition", title, problems, "poll")


def check_poll(poll: Poll) -> Readiness:
    """Run every readiness check; reads only."""
    data = dump_poll(poll)
    checks = [
        _positions(poll),
        _paired_items(poll),
        _ranking(poll),
        _languages(poll, data),
        _knowledge(poll),
        _control_share(poll),
        _schedule(poll),
        _definition(poll, data),
    ]
    return Readiness(checks=checks)
