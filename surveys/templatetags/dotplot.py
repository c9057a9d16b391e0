"""Before-and-after dot plots drawn on the server as SVG, and the same figures in words.

The finish page shows a participant's own answers per option; the public results page shows
each group's average per option. Both draw one row per thing compared: an open circle for the
first questionnaire, a filled one for the second, a line between them, and "don't know" in a
column of its own beside the scale. No script draws anything, so the figure is there without
JavaScript, and the Content Security Policy is met (classes, never style attributes).

The words are sentences a screen reader can read out on their own: the move ("from 4 to 7"),
the scale and which end means what. "Don't know" is a quoted answer inside a sentence, so its
grammar is the translator's: "from don't know to 7", "з «не знаю» до 7".
"""

from dataclasses import dataclass
from typing import Any

from django import template
from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from surveys.journey.forms import DK

register = template.Library()

# One answer or figure: a number on the scale, DK, or None (no answer, or withheld).
Value = float | str | None

# The drawing's own units (the SVG scales to its box; 12 units of text are ~12 px at 360 px).
WIDTH = 340
ROW = 28
TOP = 24
DK_COLUMN = 34
CHAR = 8.0  # a generous width of a bold 12-unit character (Cyrillic runs wide), for the labels


@dataclass(frozen=True)
class Scale:
    """A rating scale and the words at its two ends (either may be empty)."""

    low: int
    high: int
    low_label: str = ""
    high_label: str = ""


@dataclass(frozen=True)
class Row:
    """One row of a plot: its short label, and its value at the first and second questionnaire."""

    label: str
    before: Value
    after: Value


def answer_value(answer: tuple[Any, str | bool] | None) -> Value:
    """The plotted value of a stored (value, missing kind) answer; None when there is none.
    The journey offers one missing kind, don't know."""
    if answer is None:
        return None
    value, missing = answer
    if missing:
        return DK
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def number(value: float, decimals: int = 0) -> str:
    """A number in the active language's notation (a decimal comma in Ukrainian)."""
    if decimals == 0 and float(value).is_integer():
        return str(int(value))
    return number_format(value, decimals)


def _word(value: Value) -> str:
    if value == DK:
        return _("“don't know”")
    if value is None:
        return _("no answer")
    return number(float(value))


def movement_words(before: Value, after: Value) -> str:
    """How one answer moved, in words: "from 4 to 7", "from don't know to 7", "unchanged at 5"."""
    if isinstance(before, float) and isinstance(after, float):
        if before == after:
            return _("unchanged at %(value)s") % {"value": number(after)}
        return _("from %(before)s to %(after)s") % {
            "before": number(before),
            "after": number(after),
        }
    if before == DK and isinstance(after, float):
        return _("from don't know to %(after)s") % {"after": number(after)}
    if isinstance(before, float) and after == DK:
        return _("from %(before)s to don't know") % {"before": number(before)}
    if before == DK and after == DK:
        return _("don't know both times")
    return _("first %(before)s, then %(after)s") % {
        "before": _word(before),
        "after": _word(after),
    }


def scale_words(scale: Scale) -> str:
    """The scale and its direction: "on a scale of 0 to 10, where 0 means … and 10 means …"."""
    low, high = number(scale.low), number(scale.high)
    if scale.low_label and scale.high_label:
        return _(
            "on a scale of %(low)s to %(high)s, where %(low)s means “%(low_label)s” and "
            "%(high)s means “%(high_label)s”"
        ) % {"low": low, "high": high, "low_label": scale.low_label, "high_label": scale.high_label}
    if scale.high_label:
        return _("on a scale of %(low)s to %(high)s, where %(high)s means “%(high_label)s”") % {
            "low": low,
            "high": high,
            "high_label": scale.high_label,
        }
    return _("on a scale of %(low)s to %(high)s") % {"low": low, "high": high}


def describe_parts(before: Value, after: Value, scale: Scale) -> tuple[str, str]:
    """(the move, the scale in words); the scale is left out when no answer was a number."""
    numeric = isinstance(before, float) or isinstance(after, float)
    return movement_words(before, after), scale_words(scale) if numeric else ""


def describe(before: Value, after: Value, scale: Scale) -> str:
    """One option's move with its scale, as the text alternative lists it."""
    return " ".join(part for part in describe_parts(before, after, scale) if part)


def _x(value: float, scale: Scale, left: float, right: float) -> float:
    span = max(scale.high - scale.low, 1)
    return left + (right - left) * (value - scale.low) / span


def _ticks(scale: Scale) -> list[int]:
    span = scale.high - scale.low
    step = 1 if span <= 10 else 2 if span <= 20 else 5 if span <= 50 else 10
    return list(range(scale.low, scale.high + 1, step))


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


@register.simple_tag
def dotplot(
    rows: list[Row], scale: Scale, *, title: str, desc: str, id: str, dk: bool = True
) -> SafeString:
    """An SVG dot plot of ``rows`` on ``scale``; ``dk`` adds the "don't know" column.

    ``id`` prefixes the ids of the title and description, unique within the page.
    """
    longest = max((len(row.label) for row in rows), default=1)
    # Short labels (numbers) stand left of their row; words go above it, so that on a phone
    # the scale keeps the whole width instead of a third of it going to "Did not discuss".
    above = longest * CHAR + 12 > WIDTH / 4
    left = 14.0 if above else max(24.0, longest * CHAR + 12)
    row_height = ROW + 14 if above else ROW
    right = WIDTH - 14 - (DK_COLUMN + 12 if dk else 0)
    dk_x = WIDTH - 10 - DK_COLUMN / 2
    height = TOP + row_height * len(rows) + 8
    bottom = height - 6
    parts = [
        f'<svg class="dotplot" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'aria-labelledby="{escape(id)}-title" aria-describedby="{escape(id)}-desc" '
        f'focusable="false">',
        f'<title id="{escape(id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(id)}-desc">{escape(desc)}</desc>',
    ]
    for tick in _ticks(scale):
        x = _fmt(_x(tick, scale, left, right))
        parts.append(f'<line class="grid" x1="{x}" y1="{TOP - 6}" x2="{x}" y2="{bottom}"/>')
        parts.append(
            f'<text class="tick" x="{x}" y="{TOP - 10}" text-anchor="middle">'
            f"{escape(number(tick))}</text>"
        )
    if dk:
        parts.append(
            f'<rect class="dk-column" x="{_fmt(dk_x - DK_COLUMN / 2)}" y="{TOP - 6}" '
            f'width="{DK_COLUMN}" height="{bottom - TOP + 6}" rx="3"/>'
        )
        parts.append(
            f'<text class="tick" x="{_fmt(dk_x)}" y="{TOP - 10}" text-anchor="middle">?</text>'
        )
    for index, row in enumerate(rows):
        y = TOP + row_height * index + row_height / 2 + (7 if above else 0)
        if above:
            label = f'<text class="row-label" x="0" y="{y - 13}">{escape(row.label)}</text>'
        else:
            label = (
                f'<text class="row-label" x="{_fmt(left - 10)}" y="{y + 4}" text-anchor="end">'
                f"{escape(row.label)}</text>"
            )
        parts.append(
            label + f'<line class="guide" x1="{_fmt(left)}" y1="{y}" x2="{_fmt(right)}" y2="{y}"/>'
        )
        points = []
        for value in (row.before, row.after):
            if value == DK and dk:
                points.append(dk_x)
            elif isinstance(value, float):
                points.append(_x(value, scale, left, right))
            else:
                points.append(None)
        before_x, after_x = points
        gap = abs(after_x - before_x) if before_x is not None and after_x is not None else 0.0
        if before_x is not None and after_x is not None and gap > 9:
            # From the open circle's edge to the dot's; with room, the line ends in an arrow's
            # head short of the dot, so the direction shows without the legend.
            direction = 1 if after_x > before_x else -1
            start, end = before_x + 7 * direction, after_x - 5 * direction
            if gap > 20:
                end = after_x - 10 * direction
                parts.append(
                    f'<path class="head" d="M{_fmt(end)} {y - 4}L{_fmt(end + 5 * direction)} {y}'
                    f'L{_fmt(end)} {y + 4}Z"/>'
                )
            parts.append(
                f'<line class="move" x1="{_fmt(start)}" y1="{y}" x2="{_fmt(end)}" y2="{y}"/>'
            )
        if before_x is not None:
            parts.append(
                f'<circle class="before" cx="{_fmt(before_x)}" cy="{y}" r="7" fill="none"/>'
            )
        if after_x is not None:
            parts.append(f'<circle class="after" cx="{_fmt(after_x)}" cy="{y}" r="4.5"/>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text above went through escape()


@register.simple_tag
def dotplot_key(first: str, second: str) -> SafeString:
    """The legend's two symbols with their words, as HTML that wraps on a narrow screen."""
    symbol = '<svg class="key-symbol" viewBox="0 0 18 18" aria-hidden="true" focusable="false">'
    return mark_safe(
        '<ul class="dotplot-key">'
        f'<li>{symbol}<circle class="before" cx="9" cy="9" r="7" fill="none"/></svg>'
        f"{escape(first)}</li>"
        f'<li>{symbol}<circle class="after" cx="9" cy="9" r="4.5"/></svg>{escape(second)}</li>'
        "</ul>"
    )
