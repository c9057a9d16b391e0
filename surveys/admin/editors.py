"""List editors of the organiser admin: a question's choices and a position's sources as rows
of inputs (one per language where the text is translated), never JSON typed by people. A row
left empty is dropped, so clearing a row removes it even without script."""

import json
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join, linebreaks
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from surveys.admin.fields import no_nul, propose_key, site_languages
from surveys.definition.markup import render_markdown
from surveys.models import DEFAULT_LANGUAGE, localized


class RowsWidget(forms.Widget):
    """Rows of inputs for a list of records; a row left empty is dropped, so clearing a row
    removes it without script. ``spare`` empty rows follow the filled ones; the page's script
    adds more with a button."""

    spare = 2
    columns: tuple[str, ...] = ()  # plain text per row
    translated: tuple[str, ...] = ()  # one input per language per row

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.languages = site_languages()
        self.shown = [code for code, _name in self.languages]

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[dict[str, Any]]:
        rows = []
        try:
            count = min(int(data.get(f"{name}-rows", 0)), 200)
        except ValueError:
            count = 0
        for index in range(count):
            row: dict[str, Any] = {
                column: data.get(f"{name}-{index}-{column}", "").strip() for column in self.columns
            }
            for column in self.translated:
                row[column] = {
                    code: data.get(f"{name}-{index}-{column}-{code}", "").strip()
                    for code, _name in self.languages
                }
            row["extra"] = data.get(f"{name}-{index}-extra", "")
            rows.append(row)
        return rows

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return f"{name}-rows" not in data

    def rows_of(self, value: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        filled = self.rows_of(value)
        blank = {column: "" for column in self.columns} | {col: {} for col in self.translated}
        rows = [*filled, *([blank] * self.spare)]
        context["widget"].update(
            rows=[self._row(name, index, row) for index, row in enumerate(rows)],
            template_row=self._row(name, "__row__", blank),
            count=len(rows),
        )
        return context

    def _row(self, name: str, index: Any, row: dict[str, Any]) -> dict[str, Any]:
        prefix = f"{name}-{index}"
        cells = [
            {"name": f"{prefix}-{column}", "column": column, "value": row.get(column, "")}
            for column in self.columns
        ]
        texts = [
            {
                "column": column,
                "inputs": [
                    {
                        "name": f"{prefix}-{column}-{code}",
                        "language": code,
                        "language_name": label,
                        "value": (row.get(column) or {}).get(code, ""),
                        "off": code not in self.shown,
                    }
                    for code, label in self.languages
                ],
            }
            for column in self.translated
        ]
        extra = row.get("extra") or ""
        return {
            "index": index,
            "name": name,
            "prefix": prefix,
            "cells": cells,
            "texts": texts,
            "extra": extra,
            "correct": row.get("correct") is True,
        }


def as_texts(value: Any) -> dict[str, str]:
    """A source's text that is one string for every language, or a mapping, as a mapping."""
    if isinstance(value, dict):
        return {code: str(text) for code, text in value.items()}
    return {DEFAULT_LANGUAGE: str(value)} if value else {}


def compact_texts(texts: dict[str, str]) -> Any:
    """English only: one text for every language (as the definition files allow)."""
    texts = {code: text for code, text in texts.items() if text}
    if set(texts) <= {DEFAULT_LANGUAGE}:
        return texts.get(DEFAULT_LANGUAGE, "")
    return texts


class RowsField(forms.Field):
    """A JSON list edited as rows of inputs (the model field's JSON options do not apply)."""

    def __init__(self, **kwargs: Any) -> None:
        for name in ("encoder", "decoder", "max_length"):
            kwargs.pop(name, None)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def show_languages(self, codes: list[str]) -> None:
        self.widget.shown = list(codes)

    def prepare_value(self, value: Any) -> Any:
        return parse_list(value)

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(data) != parse_list(initial)
        except ValidationError:
            return True


class ChoicesWidget(RowsWidget):
    template_name = "admin/surveys/widgets/choices.html"
    columns = ("key",)
    translated = ("label",)
    correct_key = ""  # the knowledge item's answer, set by the question's form

    def rows_of(self, value: Any) -> list[dict[str, Any]]:
        value = parse_list(value)
        return [
            {
                "key": item.get("key", ""),
                "label": as_texts(item.get("label")),
                # After a refused save the ticked row; otherwise the stored answer's row.
                "correct": item.get("correct") is True
                or bool(self.correct_key and item.get("key") == self.correct_key),
            }
            for item in value
            if isinstance(item, dict)
        ]

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[dict[str, Any]]:
        rows = super().value_from_datadict(data, files, name)
        correct = data.get(f"{name}-correct", "")
        for index, row in enumerate(rows):
            row["correct"] = str(index) == correct
        return rows


class ChoicesField(RowsField):
    """A question's choices: ``[{key, label: {language: text}}]``, one row per choice. A blank
    key is made from the English label. The row marked correct is kept in ``correct_key`` (the
    answer of a knowledge item)."""

    widget = ChoicesWidget

    def to_python(self, value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list) or (value and "extra" not in value[0]):
            return parse_list(value)  # the stored value (an unchanged form)
        choices: list[dict[str, Any]] = []
        self.correct_key = ""
        typed = [row["key"] for row in value if row["key"]]
        for number, row in enumerate(value, 1):
            texts = row["label"].items()
            label = {code: no_nul(text, _("A choice")) for code, text in texts if text}
            key = no_nul(row["key"], _("A choice key"))
            if not key and not label:
                continue
            if DEFAULT_LANGUAGE not in label:
                raise ValidationError(
                    _("Choice %(number)s has no English label: the English text is required."),
                    code="choice_label",
                    params={"number": number},
                )
            if not key:
                key = propose_key(label[DEFAULT_LANGUAGE], typed, fallback="c")
                typed.append(key)
            elif not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,59}", key):
                raise ValidationError(
                    _(
                        "Choice %(number)s: the key '%(key)s' may hold only letters, digits, "
                        "underscores and hyphens, up to 60 characters."
                    ),
                    code="choice_key",
                    params={"number": number, "key": key[:60]},
                )
            if row.get("correct"):
                self.correct_key = key
            choices.append({"key": key, "label": label})
        keys = [choice["key"].lower() for choice in choices]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValidationError(
                _("Two choices have the key '%(key)s': each choice needs its own key."),
                code="choice_duplicate",
                params={"key": duplicates[0]},
            )
        return choices


def parse_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return value if isinstance(value, list) else []


class SourcesWidget(RowsWidget):
    template_name = "admin/surveys/widgets/sources.html"
    spare = 1
    columns = ("url",)
    translated = ("title", "publisher", "date", "about")

    def rows_of(self, value: Any) -> list[dict[str, Any]]:
        rows = []
        for item in parse_list(value):
            if not isinstance(item, dict):
                continue
            row: dict[str, Any] = {"url": item.get("url", "")}
            for column in self.translated:
                row[column] = as_texts(item.get(column))
            # Anything else a definition file gave a source is kept as it was.
            known = {"url", *self.translated}
            rest = {key: item[key] for key in item if key not in known}
            row["extra"] = json.dumps(rest) if rest else ""
            rows.append(row)
        return rows


class SourcesField(RowsField):
    """A position's sources, one row each: title, publisher, date and about per language, and a
    link. A text given in English only is one text for every language."""

    widget = SourcesWidget

    def to_python(self, value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list) or (value and "extra" not in value[0]):
            return parse_list(value)
        sources = []
        for number, row in enumerate(value, 1):
            source: dict[str, Any] = {}
            try:
                extra = json.loads(row["extra"]) if row["extra"] else {}
            except ValueError:
                extra = {}
            source.update(extra if isinstance(extra, dict) else {})
            for column in ("title", "publisher", "date"):
                text = compact_texts({c: no_nul(t, _("A source")) for c, t in row[column].items()})
                if text:
                    source[column] = text
            about = {code: no_nul(text, _("A source")) for code, text in row["about"].items()}
            if any(about.values()):
                source["about"] = {code: text for code, text in about.items() if text}
            url = no_nul(row["url"], _("A source's link"))
            if url:
                source["url"] = url
            if not source:
                continue
            if "title" not in source:
                raise ValidationError(
                    _("Source %(number)s has no title: give at least its English title."),
                    code="source_title",
                    params={"number": number},
                )
            sources.append(source)
        return sources


# -- read-only: a poll with answers shows its lists in words --------------------------------------


def paragraphs(text: str) -> SafeString:
    # linebreaks escapes the text itself; its <p> and <br> are the only markup.
    return mark_safe(linebreaks(text, autoescape=True))


def shown_markdown(text: str) -> SafeString:
    # Sanitised as on participants' pages; headings start below the admin's own levels.
    return render_markdown(text, top_heading=5)


def shown_texts(texts: Any, languages: list[str], render: Any = paragraphs) -> SafeString:
    """A ``{language: text}`` mapping as the organiser reads it: each language, its paragraphs
    (or its formatted text, for texts written in markdown)."""
    texts = as_texts(texts)
    codes = [code for code in languages if texts.get(code)] or list(texts)
    if not codes:
        return mark_safe("—")
    return format_html(
        '<dl class="shown-texts">{}</dl>',
        format_html_join(
            "", "<dt>{}</dt><dd>{}</dd>", ((code, render(texts[code])) for code in codes)
        ),
    )


def shown_list(items: Any, languages: list[str]) -> SafeString:
    """Choices or sources as a list in words: each one's texts per language."""
    if not items:
        return mark_safe("—")
    rows = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        title = item.get("label", item.get("title"))
        details = [item[key] for key in ("publisher", "date") if item.get(key)]
        extra = " · ".join(localized(as_texts(detail), languages[0]) for detail in details) + (
            f" · {item['url']}" if item.get("url") else ""
        )
        key = f" ({item['key']})" if item.get("key") else ""
        rows.append((shown_texts(title, languages), key, extra))
    return format_html(
        '<ol class="shown-list">{}</ol>', format_html_join("", "<li>{}{} {}</li>", rows)
    )
