"""Poll definition files: a whole poll as YAML, validated by a JSON Schema and cross-checks.

``load_definition`` reads and validates a file and returns plain data; ``save_poll`` writes it
to the database (create or update by slug); ``dump_poll`` turns a poll back into the same data.
Load, dump, load gives identical data. Every problem names the file, the path inside it and what
is wrong, and a file with any problem changes nothing.
"""

import json
import os
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from surveys.definition import schedule
from surveys.definition.checks import (
    TRANSLATED,
    codes_as_text,
    cross_problems,
    number_problems,
    schema,
    schema_problems,
    source_problems,
)
from surveys.definition.yaml_reader import (
    MAX_FILE_BYTES,
    DefinitionError,
    Problem,
    parse_yaml,
    too_large,
)
from surveys.models import Option, Poll, Position, Question, Section

__all__ = [
    "MAX_FILE_BYTES",
    "TRANSLATED",
    "DefinitionError",
    "Problem",
    "dump_poll",
    "dump_yaml",
    "load_definition",
    "normalised",
    "parse_yaml",
    "save_poll",
    "too_large",
    "validate",
]

FORMAT_VERSION = 1
DESIGN_FIELDS = (
    "control_share",
    "counterbalance_positions",
    "randomise_option_order",
    "group_size",
    "access",
    "min_subgroup_size",
    "min_seconds",
    "results_public",
    "deliberation",
)
# The definition's ``consent`` keys are the poll's fields of the same names.
CONSENT_FIELDS = ("run_by", "contact_email", "duration_minutes")


def validate(data: dict[str, Any], source: str) -> dict[str, Any]:
    if isinstance(data, dict) and "positions" not in data:
        data["positions"] = []  # a poll without a briefing
    if "missing" in data:
        data["missing"] = codes_as_text(data["missing"])
    for question in data.get("questions") or []:
        if isinstance(question, dict) and "missing" in question:
            question["missing"] = codes_as_text(question["missing"])
    if isinstance(data.get("schedule"), dict):
        data["schedule"] = {key: schedule.as_text(v) for key, v in data["schedule"].items()}
    problems = list(number_problems(data, [])) or schema_problems(data)
    if not problems:
        problems = cross_problems(data)
    if problems:
        raise DefinitionError(source, problems)
    if "schedule" in data:
        data["schedule"] = schedule.to_definition(schedule.read_definition(data["schedule"])[0])
    return data


def load_definition(path: Path | str) -> dict[str, Any]:
    """Read and validate a definition file; raises DefinitionError naming every problem."""
    source = str(path)
    try:
        with Path(path).open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:
                raise DefinitionError(source, [too_large(os.fstat(file.fileno()).st_size)])
    except OSError as error:
        raise DefinitionError(source, [Problem("(file)", error.strerror or str(error))]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DefinitionError(source, [Problem("(file)", f"not UTF-8 text: {error}")]) from None
    return validate(parse_yaml(text, source), source)


def _items(data: dict[str, Any]) -> dict[str, Any]:
    return {part: data[part] for part in ("sections", "positions", "options", "questions")}


@transaction.atomic
def save_poll(*, data: dict[str, Any], source: str) -> tuple[Poll, bool]:
    """Create or update the poll named by ``data['slug']``; returns (poll, created).

    The items of a poll that already has answers are frozen: changing them would change what
    the stored answers mean. Texts and design may still change. Source links are checked
    here too, since clones and other callers pass data that never went through ``validate``.
    """
    problems = source_problems(data)
    if problems:
        raise DefinitionError(source, problems)
    poll = Poll.objects.select_for_update().filter(slug=data["slug"]).first()
    created = poll is None
    if (
        poll is not None
        and poll.has_answers()
        and _items(dump_poll(poll)) != _items(normalised(data))
    ):
        count = poll.answers.count()
        problem = Problem(
            "(items)",
            f"poll '{poll.slug}' already has {count} answers, so its sections, positions, "
            "options and questions cannot change. Load the file under a new slug (or clone the "
            "poll in the admin) and run that copy instead.",
        )
        raise DefinitionError(source, [problem])
    design = data.get("design", {})
    if poll is None:
        # A new poll takes the file format's defaults, which may differ from the model's (a
        # poll added in the admin has a control arm of half; one from a file has none).
        design = {**design_defaults(), **design}
    fields = {
        "status": data.get("status", Poll.Status.DRAFT),
        "languages": data["languages"],
        "title": data["title"],
        "question": data["question"],
        "intro": data.get("intro", {}),
        "missing": data.get("missing", {}),
        **{name: design[name] for name in DESIGN_FIELDS if name in design},
        # A file without them clears them, as it does the schedule.
        "run_by": data.get("consent", {}).get("run_by", {}),
        "contact_email": data.get("consent", {}).get("contact_email", ""),
        "duration_minutes": data.get("consent", {}).get("duration_minutes"),
        # A file without a schedule runs in one sitting, whatever the poll had before.
        **vars(schedule.read_definition(data.get("schedule", {}))[0]),
    }
    if poll is None:
        poll = Poll.objects.create(slug=data["slug"], **fields)
    else:
        for name, value in fields.items():
            setattr(poll, name, value)
        poll.save()
        if poll.has_answers():
            return poll, created
        poll.questions.all().delete()
        poll.options.all().delete()
        poll.positions.all().delete()
        poll.sections.all().delete()
    _create_items(poll, data)
    return poll, created


def _create_items(poll: Poll, data: dict[str, Any]) -> None:
    sections = {
        s["key"]: Section.objects.create(
            poll=poll, key=s["key"], order=i, title=s["title"], intro=s.get("intro", {})
        )
        for i, s in enumerate(data["sections"])
    }
    positions = {
        p["key"]: Position.objects.create(
            poll=poll,
            key=p["key"],
            order=i,
            title=p["title"],
            summary=p["summary"],
            body=p["body"],
            sources=p["sources"],
        )
        for i, p in enumerate(data["positions"])
    }
    options = {
        o["key"]: Option.objects.create(
            poll=poll,
            key=o["key"],
            order=i,
            text=o["text"],
            short_label=o.get("short_label", {}),
            position=positions.get(o.get("position", "")),
            axis=o["axis"],
            arguments_for=o.get("arguments_for", {}),
            arguments_against=o.get("arguments_against", {}),
        )
        for i, o in enumerate(data["options"])
    }
    Question.objects.bulk_create(
        Question(
            poll=poll,
            key=q["key"],
            order=i,
            kind=q["kind"],
            section=sections[q["section"]],
            waves=q["waves"],
            required=q.get("required", True),
            dont_know=q.get("dont_know", False),
            breakdown=q.get("breakdown", False),
            text=q["text"],
            help=q.get("help", {}),
            option=options.get(q.get("option", "")),
            scale_min=q.get("scale", {}).get("min"),
            scale_max=q.get("scale", {}).get("max"),
            min_label=q.get("scale", {}).get("min_label", {}),
            max_label=q.get("scale", {}).get("max_label", {}),
            choices=q.get("choices", []),
            answer=q.get("answer", ""),
            number_min=q.get("number", {}).get("min"),
            number_max=q.get("number", {}).get("max"),
            arms=q.get("arms", []),
            missing=q.get("missing", {}),
            family=q.get("family", ""),
            bins=q.get("bins", []),
        )
        for i, q in enumerate(data["questions"])
    )


def _compact(mapping: dict[str, Any]) -> dict[str, Any]:
    """Drop empty optional values so dumps read like hand-written files."""
    return {k: v for k, v in mapping.items() if v not in ({}, [], "", None)}


def dump_poll(poll: Poll) -> dict[str, Any]:
    """The poll as definition data, in the file format (the inverse of ``save_poll``)."""
    design = {name: getattr(poll, name) for name in DESIGN_FIELDS}
    questions = []
    for q in poll.questions.select_related("section", "option").order_by("order", "id"):
        question: dict[str, Any] = {
            "key": q.key,
            "kind": q.kind,
            "section": q.section.key,
            "waves": q.waves,
            "required": q.required,
            "dont_know": q.dont_know,
            "text": q.text,
            "help": q.help,
            "option": q.option.key if q.option else None,
            "choices": q.choices,
            "answer": q.answer,
            "arms": q.arms,
            "missing": q.missing,
            "family": q.family,
            "bins": q.bins,
        }
        if q.kind == Question.Kind.SINGLE:
            question["breakdown"] = q.breakdown
        if q.kind == Question.Kind.RATING:
            question["scale"] = _compact(
                {
                    "min": q.scale_min,
                    "max": q.scale_max,
                    "min_label": q.min_label,
                    "max_label": q.max_label,
                }
            )
        if q.kind == Question.Kind.NUMBER:
            question["number"] = _compact({"min": q.number_min, "max": q.number_max})
        questions.append(_compact(question))
    definition = {
        "format": FORMAT_VERSION,
        "slug": poll.slug,
        "status": poll.status,
        "languages": poll.languages,
        **_compact(
            {
                "title": poll.title,
                "question": poll.question,
                "intro": poll.intro,
                "missing": poll.missing,
            }
        ),
        "design": design,
        **_compact({"consent": _compact({name: getattr(poll, name) for name in CONSENT_FIELDS})}),
        **_compact({"schedule": schedule.to_definition(schedule.Schedule.of(poll))}),
        "sections": [
            _compact({"key": s.key, "title": s.title, "intro": s.intro})
            for s in poll.sections.order_by("order", "id")
        ],
        "positions": [
            {
                "key": p.key,
                "title": p.title,
                "summary": p.summary,
                "body": p.body,
                "sources": p.sources,
            }
            for p in poll.positions.order_by("order", "id")
        ],
        "options": [
            _compact(
                {
                    "key": o.key,
                    "text": o.text,
                    "short_label": o.short_label,
                    "position": o.position.key if o.position else None,
                    "axis": o.axis,
                    "arguments_for": o.arguments_for,
                    "arguments_against": o.arguments_against,
                }
            )
            for o in poll.options.select_related("position").order_by("order", "id")
        ],
        "questions": questions,
    }
    # A round trip through JSON turns choice enums of unsaved instances into plain strings.
    return json.loads(json.dumps(definition))


def design_defaults() -> dict[str, Any]:
    """The design the file format assumes for what a file leaves out."""
    return {
        name: spec.get("default")
        for name, spec in schema()["properties"]["design"]["properties"].items()
    }


def normalised(data: dict[str, Any]) -> dict[str, Any]:
    """A definition with every default spelled out, as ``dump_poll`` would write it."""
    result = json.loads(json.dumps(data))
    result.setdefault("status", "draft")
    result["design"] = {**design_defaults(), **data.get("design", {})}
    for question in result["questions"]:
        question.setdefault("required", True)
        question.setdefault("dont_know", False)
        if question["kind"] == "single":
            question.setdefault("breakdown", False)
    return result


def dump_yaml(poll: Poll) -> str:
    return yaml.safe_dump(
        dump_poll(poll), allow_unicode=True, sort_keys=False, width=100, default_flow_style=False
    )
