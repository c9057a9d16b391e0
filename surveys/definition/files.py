"""Poll definition files: a whole poll as YAML, validated by a JSON Schema and cross-checks.

``load_definition`` reads and validates a file and returns plain data; ``save_poll`` writes it
to the database (create or update by slug); ``dump_poll`` turns a poll back into the same data.
Load, dump, load gives identical data. Every problem names the file, the path inside it and what
is wrong, and a file with any problem changes nothing.
"""

import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.validators
import yaml
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from surveys.definition import schedule
from surveys.definition.yaml_reader import (
    MAX_FILE_BYTES,
    DefinitionError,
    Problem,
    format_path,
    parse_yaml,
    too_large,
)
from surveys.models import Option, Poll, Position, Question, Section, source_url_problem

SCHEMA_PATH = Path(__file__).with_name("poll-definition.schema.json")
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
)


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


MAX_SCALE_POINTS = 21


@cache
def _strict_end(pattern: str) -> re.Pattern[str]:
    # JSON Schema patterns are ECMA-262, where "$" matches only at the very end of the text;
    # Python's "$" also matches before a final newline, so "poll\n" passed "^[a-z0-9-]+$".
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if validator.is_type(instance, "string") and not _strict_end(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})


def _number_problems(value: Any, path: list[Any]) -> Iterator[Problem]:
    """Infinity and NaN (YAML's .inf and .nan) slip past JSON Schema's minimum and maximum."""
    if isinstance(value, float) and not math.isfinite(value):
        yield Problem(format_path(path), f"{value} is not a finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _number_problems(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _number_problems(item, [*path, index])


def _schema_problems(data: dict[str, Any]) -> list[Problem]:
    validator = Validator(schema())
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        message = error.message
        if error.validator == "additionalProperties":
            message = f"unknown key: {message}"
        problems.append(Problem(format_path(error.absolute_path), message))
    return problems


def _texts_in(value: Any, path: list[Any]) -> Iterator[tuple[list[Any], dict[str, str]]]:
    """Every translatable mapping in ``value`` (a dict under a TRANSLATED key), with its path."""
    if isinstance(value, dict):
        if path and path[-1] in TRANSLATED:
            yield path, value
            return
        for key, item in value.items():
            yield from _texts_in(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _texts_in(item, [*path, index])


TRANSLATED = {
    "title",
    "question",
    "intro",
    "summary",
    "body",
    "text",
    "help",
    "arguments_for",
    "arguments_against",
    "label",
    "min_label",
    "max_label",
    "run_by",
}
# The definition's ``consent`` keys are the poll's fields of the same names.
CONSENT_FIELDS = ("run_by", "contact_email", "duration_minutes")


def _source_problems(data: dict[str, Any]) -> list[Problem]:
    """Source links that are not http or https (the model's rule, with the file's paths)."""
    return [
        Problem(format_path(["positions", index, "sources", number, "url"]), problem)
        for index, position in enumerate(data["positions"])
        for number, source in enumerate(position.get("sources", []))
        if (problem := source_url_problem(source.get("url")))
    ]


def _cross_problems(data: dict[str, Any]) -> list[Problem]:
    """What a JSON Schema cannot say: references, uniqueness, languages, design rules."""
    problems: list[Problem] = []
    add = problems.append
    languages = data["languages"]
    for path, texts in _texts_in(data, []):
        missing = [lang for lang in languages if lang not in texts]
        extra = [lang for lang in texts if lang not in languages]
        if missing:
            add(Problem(format_path(path), f"missing text in {', '.join(missing)}"))
        if extra:
            add(
                Problem(
                    format_path(path), f"text in {', '.join(extra)}, not a language of the poll"
                )
            )

    for part in ("sections", "positions", "options", "questions"):
        counts = Counter(item["key"] for item in data[part])
        for index, item in enumerate(data[part]):
            if counts[item["key"]] > 1:
                add(Problem(format_path([part, index, "key"]), f"duplicate key '{item['key']}'"))

    problems += _source_problems(data)
    email = data.get("consent", {}).get("contact_email")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            add(Problem(format_path(["consent", "contact_email"]), "not an email address"))
    _, timing_problems = schedule.read_definition(data.get("schedule", {}))
    problems += [
        Problem(format_path(["schedule", key] if key else ["schedule"]), problem)
        for key, problem in timing_problems
    ]

    sections = {s["key"] for s in data["sections"]}
    positions = {p["key"] for p in data["positions"]}
    options = {o["key"] for o in data["options"]}
    axes = Counter(o["axis"] for o in data["options"])
    for index, option in enumerate(data["options"]):
        if "position" in option and option["position"] not in positions:
            add(Problem(format_path(["options", index, "position"]), "no position with this key"))
        if axes[option["axis"]] > 1:
            add(
                Problem(
                    format_path(["options", index, "axis"]), "two options share this axis place"
                )
            )

    for index, question in enumerate(data["questions"]):
        at = ["questions", index]
        kind = question["kind"]
        if question["section"] not in sections:
            add(Problem(format_path([*at, "section"]), f"no section '{question['section']}'"))
        for field, kinds in FIELD_KINDS.items():
            if field in question and kind not in kinds:
                add(Problem(format_path([*at, field]), f"not allowed for a {kind} question"))
        if "option" in question and question["option"] not in options:
            add(Problem(format_path([*at, "option"]), f"no option '{question['option']}'"))
        if kind == "ranking" and len(data["options"]) < 3:
            add(Problem(format_path(at), "a ranking needs at least three options"))
        # Ratings of options and the ranking are the paired items the method compares.
        if (kind == "ranking" or "option" in question) and question["waves"] != "both":
            add(Problem(format_path([*at, "waves"]), "a paired item must be asked in both waves"))
        scale = question.get("scale")
        if scale and scale["min"] >= scale["max"]:
            add(Problem(format_path([*at, "scale"]), "min must be below max"))
        elif scale and scale["max"] - scale["min"] >= MAX_SCALE_POINTS:
            # Every point is a radio button on a phone screen.
            add(Problem(format_path([*at, "scale"]), f"at most {MAX_SCALE_POINTS} points"))
        number = question.get("number", {})
        if "min" in number and "max" in number and number["min"] > number["max"]:
            add(Problem(format_path([*at, "number"]), "min must not exceed max"))
        choice_keys = [c["key"] for c in question.get("choices", [])]
        for choice_index, key in enumerate(choice_keys):
            if choice_keys.count(key) > 1:
                add(
                    Problem(
                        format_path([*at, "choices", choice_index, "key"]), f"duplicate '{key}'"
                    )
                )
        if "arms" in question and question["waves"] != "t2":
            # T1 comes before assignment, and a paired item must be asked of both arms.
            add(Problem(format_path([*at, "arms"]), "only a T2-only question can be limited"))
        if "answer" in question and question["answer"] not in choice_keys:
            add(Problem(format_path([*at, "answer"]), "the answer key is not one of the choices"))
    return problems


FIELD_KINDS = {
    "scale": {"rating"},
    "option": {"rating"},
    "choices": {"single", "multiple", "knowledge"},
    "answer": {"knowledge"},
    "number": {"number"},
    "breakdown": {"single"},
}


def validate(data: dict[str, Any], source: str) -> dict[str, Any]:
    if isinstance(data.get("schedule"), dict):
        data["schedule"] = {key: schedule.as_text(v) for key, v in data["schedule"].items()}
    problems = list(_number_problems(data, [])) or _schema_problems(data)
    if not problems:
        problems = _cross_problems(data)
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
    problems = _source_problems(data)
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
    fields = {
        "status": data.get("status", Poll.Status.DRAFT),
        "languages": data["languages"],
        "title": data["title"],
        "question": data["question"],
        "intro": data.get("intro", {}),
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
        **_compact({"title": poll.title, "question": poll.question, "intro": poll.intro}),
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


def normalised(data: dict[str, Any]) -> dict[str, Any]:
    """A definition with every default spelled out, as ``dump_poll`` would write it."""
    defaults = {
        name: spec.get("default")
        for name, spec in schema()["properties"]["design"]["properties"].items()
    }
    result = json.loads(json.dumps(data))
    result.setdefault("status", "draft")
    result["design"] = {**defaults, **data.get("design", {})}
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
