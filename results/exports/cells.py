"""One cell of an imported file back to an answer, or a message that says what is wrong and what
the column accepts: its allowed values or codes and the poll's declared missing-value codes.

Missing-value codes (``missing: {77: dont_know, 98: refused, -8: skipped}`` in the definition,
per poll and per question) are taken as they are: the answer keeps the kind, never the code.
Without any declared code, -99 is "don't know" where the question offers it. An empty cell, and in
numeric columns ``NaN``, ``NA`` or ``.`` (what pandas, R and Stata write for a gap), is no answer.
"""

import math
from typing import Any

from results.exports.codebook import LIST_SEPARATOR, missing_codes
from surveys.definition.spec import QuestionSpec
from surveys.models import Question

# (value, number, missing kind): the missing kind is "" for a substantive answer.
Decoded = tuple[Any, float | None, str]
NO_ANSWER = {"", "nan", "na", "n/a", "."}
NUMERIC_KINDS = (
    Question.Kind.RATING,
    Question.Kind.SINGLE,
    Question.Kind.KNOWLEDGE,
    Question.Kind.NUMBER,
)
MISSING_WORDS = {
    "dont_know": "don't know",
    "refused": "refused",
    "skipped": "skipped",
    "not_asked": "not asked",
}
LISTED = 12  # allowed values named in a message before "and N more"


class CellError(ValueError):
    pass


def shortlist(items: list[str], limit: int = LISTED) -> str:
    """``a, b, c and 40 more``: a list named in a message, never the whole of a long one."""
    if len(items) <= limit:
        return ", ".join(items)
    return f"{', '.join(items[:limit])} and {len(items) - limit:,} more"


def integer(text: str) -> int:
    try:
        number = float(text)
    except ValueError:
        raise CellError(f"'{text}' is not a whole number") from None
    if not math.isfinite(number) or number != int(number):
        raise CellError(f"'{text}' is not a whole number")
    return int(number)


def real(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise CellError(f"'{text}' is not a number") from None
    if not math.isfinite(number):
        raise CellError(f"'{text}' is not a finite number")
    return number


def keys_of(text: str) -> list[str]:
    return [key.strip() for key in text.split(LIST_SEPARATOR) if key.strip()]


def missing_text(codes: dict[int, str]) -> str:
    if not codes:
        return "no missing-value codes are declared for this question"
    named = [f"{code} ({MISSING_WORDS.get(kind, kind)})" for code, kind in sorted(codes.items())]
    return f"missing-value codes: {', '.join(named)}"


def allowed(question: QuestionSpec, options: list[str]) -> str:
    """What the question's column accepts, in words (the tail of every cell message)."""
    kind = question.kind
    if kind == Question.Kind.RATING:
        values = f"whole numbers {question.scale_min} to {question.scale_max}"
    elif kind in (Question.Kind.SINGLE, Question.Kind.KNOWLEDGE):
        labels = dict(question.choices)
        named = [
            f"{code} ({_english(labels[key]) or key})"
            for key, code in question.choice_codes().items()
        ]
        values = f"choice codes {shortlist(named)}"
    elif kind == Question.Kind.NUMBER:
        low, high = _bound(question.number_min, "-inf"), _bound(question.number_max, "inf")
        values = f"numbers {low} to {high}"
    elif kind == Question.Kind.MULTIPLE:
        values = f"choice keys {shortlist(question.choice_keys())} separated by '{LIST_SEPARATOR}'"
    elif kind == Question.Kind.RANKING:
        values = f"every option key once, best first, separated by '{LIST_SEPARATOR}': " + (
            shortlist(options)
        )
    else:
        values = "any text"
    return f"allowed: {values}; {missing_text(missing_codes(question))}"


def _bound(limit: float | None, otherwise: str) -> str:
    return otherwise if limit is None else f"{limit:g}"


def _english(texts: Any) -> str:
    if isinstance(texts, dict):
        return str(texts.get("en") or next(iter(texts.values()), ""))
    return str(texts or "")


def _substantive(question: QuestionSpec, text: str, options: list[str]) -> Decoded:
    kind = question.kind
    if kind == Question.Kind.RATING:
        value = integer(text)
        if not question.scale_min <= value <= question.scale_max:
            raise CellError(
                f"{value} is outside the scale {question.scale_min}..{question.scale_max}"
            )
        return value, float(value), ""
    if kind in (Question.Kind.SINGLE, Question.Kind.KNOWLEDGE):
        code = integer(text)
        keys = {number: key for key, number in question.choice_codes().items()}
        if code not in keys:
            raise CellError(f"{code} is not a choice code ({min(keys)}..{max(keys)})")
        return keys[code], float(code), ""
    if kind == Question.Kind.NUMBER:
        number = real(text)
        low, high = question.number_min, question.number_max
        if (low is not None and number < low) or (high is not None and number > high):
            raise CellError(f"{number:g} is outside {_bound(low, '-inf')}..{_bound(high, 'inf')}")
        # A whole number stays one (age 21, not 21.0) in the stored answer and every export.
        value: float | int = int(number) if number.is_integer() else number
        return value, number, ""
    if kind == Question.Kind.MULTIPLE:
        keys = keys_of(text)
        unknown = [k for k in keys if k not in question.choice_keys()]
        if unknown or len(set(keys)) != len(keys):
            raise CellError(f"not distinct choice keys: {', '.join(unknown) or text}")
        return keys, None, ""
    if kind == Question.Kind.RANKING:
        keys = keys_of(text)
        if sorted(keys) != sorted(options):
            raise CellError("a ranking must list every option once")
        return keys, None, ""
    return text, None, ""


class Decoder:
    """Decodes the cells of one question's column. The codes a column usually holds (scale
    points, choice codes, missing-value codes, as written by this platform, SPSS or pandas) are
    looked up in a table built once; anything else goes through the full checks."""

    def __init__(self, question: QuestionSpec, options: list[str]) -> None:
        self.question = question
        self.options = options
        self.numeric = question.kind in NUMERIC_KINDS
        self.codes = missing_codes(question)
        self.known: dict[str, Decoded | None] = {"": None}
        if self.numeric:
            self.known.update(dict.fromkeys(NO_ANSWER))
        for code, kind in self.codes.items():
            self.known[str(code)] = self.known[f"{code}.0"] = (None, None, kind)
        if question.kind == Question.Kind.RATING:
            for value in range(question.scale_min, question.scale_max + 1):
                self.known[str(value)] = self.known[f"{value}.0"] = (value, float(value), "")
        elif question.kind in (Question.Kind.SINGLE, Question.Kind.KNOWLEDGE):
            for key, code in question.choice_codes().items():
                self.known[str(code)] = self.known[f"{code}.0"] = (key, float(code), "")

    def __call__(self, text: str) -> Decoded | None:
        """A wide cell back to (value, number, missing kind); None when the cell holds no
        answer; CellError saying what is wrong and what the column allows."""
        try:
            return self.known[text]
        except KeyError:
            pass
        text = text.strip()
        if text in self.known:
            return self.known[text]
        if self.numeric and text.lower() in NO_ANSWER:
            return None
        code = _as_code(text)
        if code is not None and code in self.codes:
            return None, None, self.codes[code]
        try:
            return _substantive(self.question, text, self.options)
        except CellError as problem:
            raise CellError(f"{problem}; {allowed(self.question, self.options)}") from None


def decode_answer(question: QuestionSpec, text: str, options: list[str]) -> Decoded | None:
    """One cell (see ``Decoder``; for many cells of a column, make the Decoder once)."""
    return Decoder(question, options)(text)


def _as_code(text: str) -> int | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None
