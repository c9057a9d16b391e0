"""Checks of a poll definition: its JSON Schema, then what a schema cannot say (references,
uniqueness, languages, design rules). Every problem names the path inside the file and what is
wrong, in words: the rule and the offending value, never a raw pattern."""

import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.validators
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from surveys.definition import schedule
from surveys.definition.yaml_reader import Problem, format_path
from surveys.models import DEFAULT_MISSING_CODES, source_url_problem

SCHEMA_PATH = Path(__file__).with_name("poll-definition.schema.json")


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
    # The schema gives each pattern its ``rule`` in words: a researcher reads the rule and the
    # value that broke it, never the regular expression.
    if validator.is_type(instance, "string") and not _strict_end(pattern).search(instance):
        rule = schema.get("rule", "text of the expected form")
        yield jsonschema.ValidationError(f"{short(instance)} is not {rule}")


Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})


def number_problems(value: Any, path: list[Any]) -> Iterator[Problem]:
    """Infinity and NaN (YAML's .inf and .nan) slip past JSON Schema's minimum and maximum."""
    if isinstance(value, float) and not math.isfinite(value):
        yield Problem(format_path(path), f"{value} is not a finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from number_problems(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from number_problems(item, [*path, index])


SHORT = 60  # characters of an offending value quoted in a message
MESSAGE = 300  # characters of any other message
TYPES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping of keys to values",
    "null": "nothing",
}
COUNTED = {"array": "items", "object": "entries", "string": "characters"}
SINGULAR = {"items": "item", "entries": "entry", "characters": "character", "": ""}


def short(value: Any) -> str:
    """``value`` quoted for a message, cut to SHORT characters: an error about a 3 KB list
    names the list's size, not its contents."""
    text = repr(value)
    return text if len(text) <= SHORT else f"{text[: SHORT - 1]}…"


def _described(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return short(value)
    kind = next((t for t, cls in _PYTHON_TYPES.items() if isinstance(value, cls)), "")
    if kind in ("array", "object"):
        noun = "a list" if kind == "array" else "a mapping"
        return f"{noun} of {len(value)} {COUNTED[kind]}"
    return short(value)


_PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": float,
    "array": list,
    "object": dict,
}


def _words(error: jsonschema.ValidationError) -> str:
    """A schema error as a researcher should read it: lengths state the count and the limit,
    types and choices say what was expected, nothing quotes more than SHORT characters."""
    keyword, limit, value = error.validator, error.validator_value, error.instance
    unit = COUNTED.get(next((t for t, c in _PYTHON_TYPES.items() if isinstance(value, c)), ""), "")
    if keyword in ("maxItems", "maxLength", "maxProperties"):
        return f"{len(value)} {unit}; at most {limit} allowed"
    if keyword in ("minItems", "minLength", "minProperties"):
        if len(value) == 0:
            return f"empty; at least {limit} {SINGULAR[unit] if limit == 1 else unit} needed"
        return f"{len(value)} {unit}; at least {limit} needed"
    if keyword == "type":
        expected = " or ".join(
            TYPES.get(t, t) for t in ([limit] if isinstance(limit, str) else limit)
        )
        return f"expected {expected}, not {_described(value)}"
    if keyword == "enum":
        return f"{short(value)} is not one of: {', '.join(map(str, limit))}"
    if keyword == "not" and isinstance(limit, dict) and "required" in limit:
        return f"give {' or '.join(limit['required'])}, not both"
    if keyword == "const":
        return f"must be {limit!r}, not {short(value)}"
    if keyword == "additionalProperties":
        unknown = sorted(set(value) - set(error.schema.get("properties", {})))
        listed = ", ".join(short(key) for key in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        return f"unknown key{'s' if len(unknown) > 1 else ''}: {listed}{more}"
    message = error.message
    return message if len(message) <= MESSAGE else f"{message[: MESSAGE - 1]}…"


def schema_problems(data: dict[str, Any]) -> list[Problem]:
    validator = Validator(schema())
    return [
        Problem(format_path(error.absolute_path), _words(error))
        for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path)))
    ]


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
    "short_label",
    "min_label",
    "max_label",
    "run_by",
}


DONT_KNOW_CHOICE = "dk"
DEFAULT_DONT_KNOW = int(next(iter(DEFAULT_MISSING_CODES)))
# SPSS's reserved words may not name a variable (Stata's, all lower case, never collide with
# the exports' names, which end in _t1 or _t2).
RESERVED = frozenset(
    {"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH"}
)


def key_problems(data: dict[str, Any]) -> list[Problem]:
    """Keys that SPSS and Stata would not take as variable names apart, or at all: duplicates
    (whatever the case: both packages ignore it when they match names) and reserved words."""
    problems = []
    for part in ("sections", "positions", "options", "questions"):
        first: dict[str, tuple[int, str]] = {}
        for index, item in enumerate(data[part]):
            key = item["key"]
            at = format_path([part, index, "key"])
            if key.upper() in RESERVED:
                reserved = " ".join(sorted(RESERVED))
                problems.append(Problem(at, f"'{key}' is an SPSS reserved word ({reserved})"))
            seen = first.setdefault(key.casefold(), (index, key))
            if seen[0] == index:
                continue
            where = format_path([part, seen[0]])
            if seen[1] == key:
                problems.append(Problem(at, f"duplicate key '{key}' (also {where})"))
            else:
                problems.append(
                    Problem(
                        at,
                        f"'{key}' differs from '{seen[1]}' ({where}) only in case; keys must "
                        "differ in letters, since SPSS and Stata match names whatever the case",
                    )
                )
    return problems


def source_problems(data: dict[str, Any]) -> list[Problem]:
    """Source links that are not http or https (the model's rule, with the file's paths)."""
    return [
        Problem(format_path(["positions", index, "sources", number, "url"]), problem)
        for index, position in enumerate(data["positions"])
        for number, source in enumerate(position.get("sources", []))
        if (problem := source_url_problem(source.get("url")))
    ]


def cross_problems(data: dict[str, Any]) -> list[Problem]:
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

    problems += key_problems(data)
    count = len(data["positions"])
    if count == 1:
        add(
            Problem(
                "positions",
                "1 position; a briefing needs at least 2 (or none: a poll without a briefing)",
            )
        )

    problems += source_problems(data)
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
            elif key == DONT_KNOW_CHOICE:
                # The questionnaire sends "dk" for the don't-know box: a choice of that key would
                # be taken for it.
                add(
                    Problem(
                        format_path([*at, "choices", choice_index, "key"]),
                        "'dk' is the questionnaire's own don't-know answer; offer it with "
                        "dont_know: true, or give this choice another key",
                    )
                )
        if "arms" in question and question["waves"] != "t2":
            # T1 comes before assignment, and a paired item must be asked of both arms.
            add(Problem(format_path([*at, "arms"]), "only a T2-only question can be limited"))
        if "answer" in question and question["answer"] not in choice_keys:
            add(Problem(format_path([*at, "answer"]), "the answer key is not one of the choices"))
        bins = question.get("bins", [])
        if any(low >= high for low, high in pairwise(bins)):
            add(
                Problem(
                    format_path([*at, "bins"]),
                    f"bins must increase, each bound above the one before: {bins[:20]}",
                )
            )
    problems += missing_code_problems(data)
    return problems


def _answer_range(question: dict[str, Any]) -> tuple[float, float, str] | None:
    """The numbers a question's answers take (low, high, in words), where it declares them."""
    kind = question["kind"]
    if kind == "rating" and "scale" in question:
        low, high = question["scale"]["min"], question["scale"]["max"]
        return low, high, f"a point of the scale {low}..{high}"
    if kind in ("single", "knowledge") and question.get("choices"):
        count = len(question["choices"])
        return 1, count, f"a choice code (1..{count})"
    number = question.get("number", {})
    if kind == "number" and "min" in number and "max" in number:
        low, high = number["min"], number["max"]
        return low, high, f"an answer in the allowed range {low}..{high}"
    return None


def missing_code_problems(data: dict[str, Any]) -> list[Problem]:
    """Missing-value codes that are also real answers of a question (7 on a 0..10 scale):
    an imported 7 could not say which it is. Codes of the poll are named once, with the
    questions they clash with."""
    problems = []
    clashes: dict[str, list[str]] = {}
    for index, question in enumerate(data["questions"]):
        answers = _answer_range(question)
        own = question.get("missing") or {}
        if answers is None:
            continue
        low, high, words = answers
        declared = own or data.get("missing") or {}
        if not declared and question.get("dont_know") and low <= DEFAULT_DONT_KNOW <= high:
            problems.append(
                Problem(
                    format_path(["questions", index, "missing"]),
                    f"{DEFAULT_DONT_KNOW}, the code of don't know when none is declared, is "
                    f"also {words}; declare a missing-value code outside it (missing: "
                    "{777: dont_know})",
                )
            )
        for code, kind in declared.items():
            if not (low <= int(code) <= high):
                continue
            if own:
                path = format_path(["questions", index, "missing", code])
                problems.append(
                    Problem(path, f"{code} ({kind}) is also {words}; use a code outside it")
                )
            else:
                clashes.setdefault(code, []).append(question["key"])
    for code, keys in clashes.items():
        named = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        kind = data["missing"][code]
        problems.append(
            Problem(
                format_path(["missing", code]),
                f"{code} ({kind}) is also an answer of {named}; use a code no question can "
                "take as an answer (e.g. 77, 98, -8), or give those questions their own codes",
            )
        )
    return problems


FIELD_KINDS = {
    "scale": {"rating"},
    "option": {"rating"},
    "choices": {"single", "multiple", "knowledge"},
    "answer": {"knowledge"},
    "number": {"number"},
    "breakdown": {"single"},
    "bins": {"number"},
}


def codes_as_text(codes: Any) -> Any:
    """Missing-value codes as JSON keeps them: YAML reads ``{77: dont_know}`` with an integer
    key, JSON object keys are text. Other values are left for the schema to judge."""
    if not isinstance(codes, dict):
        return codes
    return {
        str(code) if isinstance(code, int) and not isinstance(code, bool) else code: kind
        for code, kind in codes.items()
    }
