"""Markup that is the same for every participant, rendered once and cached.

A questionnaire page's questions are rendered per (poll version, wave, section, language) and
stored in Django's cache (Redis in production). What differs between participants, which box
is ticked, the value typed, the message of an error, is left as a marker
``\\x1e<kind>:<name>[:<value>]\\x1e`` that ``fill`` replaces with one regular-expression pass.
Option order differs too, so each question is cached as its own fragment and the page joins
them in the participant's order.
"""

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import markdown
import nh3
from django.core.cache import cache
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from surveys.definition.spec import PollSpec, QuestionSpec

logger = logging.getLogger(__name__)

CACHE_SECONDS = 24 * 3600
MARKER = re.compile("\x1e([a-z]):([^\x1e:]+)(?::([^\x1e]*))?\x1e")
ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "h2", "h3", "h4", "h5", "h6",
    "blockquote", "a", "code", "hr",
}  # fmt: skip
HEADING = re.compile(r"<(/?)h([1-6])\b")


def marker(kind: str, name: str, value: str = "") -> SafeString:
    return mark_safe(f"\x1e{kind}:{name}:{value}\x1e" if value else f"\x1e{kind}:{name}\x1e")


@dataclass
class FormState:
    """What one participant sees in a form: ticks, typed values and error messages."""

    checked: dict[str, set[str]] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def fill(fragment: str, state: FormState) -> SafeString:
    def replace(match: re.Match[str]) -> str:
        kind, name, value = match.group(1), match.group(2), match.group(3) or ""
        if kind == "c":
            return " checked" if value in state.checked.get(name, ()) else ""
        if kind == "s":
            return " selected" if value in state.checked.get(name, ()) else ""
        if kind == "v":
            return escape(state.values.get(name, ""))
        if kind == "e":
            message = state.errors.get(name)
            if not message:
                return ""
            prefix = escape(translation.gettext("Error:"))
            return (
                f'<p class="field-error" id="{name}-error">'
                f'<span class="vh">{prefix}</span> {escape(message)}</p>'
            )
        if kind == "a":  # aria-describedby (hint, error) and aria-invalid on a text input
            ids = [f"{name}-hint"] if value == "hint" else []
            invalid = name in state.errors
            if invalid:
                ids.append(f"{name}-error")
            described = f' aria-describedby="{" ".join(ids)}"' if ids else ""
            return described + (' aria-invalid="true"' if invalid and kind == "a" else "")
        if kind == "d":  # aria-describedby only (fieldsets)
            ids = [f"{name}-hint"] if value == "hint" else []
            if name in state.errors:
                ids.append(f"{name}-error")
            return f' aria-describedby="{" ".join(ids)}"' if ids else ""
        if kind == "k":  # a class on the wrapper of a field with an error
            return " has-error" if name in state.errors else ""
        return ""

    return mark_safe(MARKER.sub(replace, fragment))


def render_markdown(text: str, *, top_heading: int = 2) -> SafeString:
    """Markdown from the poll definition, sanitised: organisers' text is untrusted output too.

    Headings are moved so the text's highest one is ``top_heading``: the page around the text
    owns the levels above it, and screen-reader users navigate by an outline without gaps
    (a "### Key arguments" under the page's h1 becomes an h2).
    """
    html = markdown.markdown(text, extensions=["sane_lists"])
    levels = [int(level) for _, level in HEADING.findall(html)]
    if levels:
        shift = top_heading - min(levels)
        html = HEADING.sub(
            lambda m: f"<{m.group(1)}h{min(max(int(m.group(2)) + shift, 1), 6)}", html
        )
    return mark_safe(nh3.clean(html, tags=ALLOWED_TAGS, link_rel="noopener noreferrer"))


def _cached(key: str, build: Callable[[], object]) -> object:
    # The cache only saves rendering time: a cache outage (Redis down) must never fail a page.
    try:
        value = cache.get(key)
    except Exception:
        logger.warning("markup cache unavailable; rendering %s directly", key, exc_info=True)
        return build()
    if value is None:
        value = build()
        try:
            cache.set(key, value, CACHE_SECONDS)
        except Exception:
            logger.warning("markup cache unavailable; not storing %s", key, exc_info=True)
    return value


def question_fragments(spec: PollSpec, *, wave: int, section: str, language: str) -> dict[str, str]:
    """{question key: markup with markers} for one questionnaire page, cached."""

    def build() -> dict[str, str]:
        fragments: dict[str, str] = {}
        with translation.override(language):
            for q in spec.page_questions(wave, section):
                context = question_context(spec, q, language)
                fragments[q.key] = render_to_string(
                    "surveys/questions/question.html", {"q": context}
                )
                if q.kind == "ranking":
                    ranks = range(1, len(spec.options) + 1)
                    for option in spec.options:
                        fragments[f"{q.key}.{option.key}"] = render_to_string(
                            "surveys/questions/rank_row.html",
                            {
                                "name": context["name"],
                                "field": f"{context['name']}.{option.key}",
                                "option": option.key,
                                "text": spec.text(option.text, language),
                                "ranks": ranks,
                            },
                        )
        return fragments

    key = f"surveys:q:{spec.version}:{wave}:{section}:{language}"
    return _cached(key, build)  # type: ignore[return-value]


def question_context(spec: PollSpec, q: QuestionSpec, language: str) -> dict[str, object]:
    text = spec.text
    name = f"q-{q.key}"
    option_texts = {o.key: text(o.text, language) for o in spec.options}
    return {
        "key": q.key,
        "name": name,
        "kind": q.kind,
        "text": text(q.text, language),
        "help": text(q.help, language),
        "hint": "hint" if text(q.help, language) else "",
        "required": q.required,
        "dont_know": q.dont_know,
        "scale": list(range(q.scale_min or 0, (q.scale_max or 0) + 1)),
        "min_label": text(q.min_label, language),
        "max_label": text(q.max_label, language),
        "choices": [(key, text(label, language)) for key, label in q.choices],
        "options": option_texts,
        "rank_count": len(spec.options),
        "number_min": q.number_min,
        "number_max": q.number_max,
    }


RANK_ROWS = re.compile("\x1er:([^\x1e:]+)\x1e")


def questions_markup(
    fragments: dict[str, str],
    questions: list[QuestionSpec],
    option_order: list[str],
    state: FormState,
) -> SafeString:
    """Join the cached fragments in the participant's order and fill in their state."""

    def rows(match: re.Match[str]) -> str:
        key = match.group(1)
        return "".join(fragments[f"{key}.{option}"] for option in option_order)

    page = "".join(RANK_ROWS.sub(rows, fragments[q.key]) for q in questions)
    return fill(page, state)


def position_markup(spec: PollSpec, key: str, language: str) -> dict[str, str]:
    def build() -> dict[str, str]:
        position = spec.position(key)
        return {
            "title": escape(spec.text(position.title, language)),
            "summary": escape(spec.text(position.summary, language)),
            "body": render_markdown(spec.text(position.body, language), top_heading=2),
        }

    return _cached(f"surveys:pos2:{spec.version}:{key}:{language}", build)  # type: ignore[return-value]


def options_markup(spec: PollSpec, language: str) -> dict[str, dict[str, str]]:
    def build() -> dict[str, dict[str, str]]:
        return {
            o.key: {
                "text": escape(spec.text(o.text, language)),
                # Under the option's h2 and the "Arguments for/against" h3.
                "for": render_markdown(spec.text(o.arguments_for, language), top_heading=4),
                "against": render_markdown(spec.text(o.arguments_against, language), top_heading=4),
            }
            for o in spec.options
        }

    return _cached(f"surveys:opt2:{spec.version}:{language}", build)  # type: ignore[return-value]
