"""The poll's parts edited inline on its page: texts in every language, explicit ordering, and
locked (read-only, with the reason said) once the poll has answers."""

from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from surveys.admin.fields import (
    TRANSLATED_FIELDS,
    ArmsField,
    LanguagesField,
    QuestionForm,
    TextJSONField,
    translations_formfield,
)
from surveys.models import Option, Poll, Position, Question, Section
from surveys.roles import can_organise


class TranslatedFieldsMixin:
    """Every ``{language: text}`` field becomes one input per language."""

    def formfield_for_dbfield(
        self, db_field: models.Field, request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        if isinstance(db_field, models.JSONField) and db_field.name in TRANSLATED_FIELDS:
            return translations_formfield(db_field)
        if isinstance(db_field, models.JSONField) and db_field.name == "languages":
            return LanguagesField(
                label="Languages", help_text="English is always included.", initial=["en"]
            )
        if isinstance(db_field, models.JSONField):
            kwargs.setdefault("form_class", TextJSONField)
        return super().formfield_for_dbfield(db_field, request, **kwargs)  # type: ignore[misc]


class PollPartInline(TranslatedFieldsMixin, admin.StackedInline):
    """A part of a poll: choices limited to the same poll, locked once answers exist."""

    extra = 0
    classes = ("poll-part",)
    # Fields that point at other parts of the same poll.
    same_poll_fields: tuple[str, ...] = ()

    def get_formset(self, request: HttpRequest, obj: Poll | None = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        for name in self.same_poll_fields:
            field = formset.form.base_fields.get(name)
            if field is not None:
                # Never offer another poll's sections or options, whoever is editing.
                field.queryset = field.queryset.filter(poll=obj) if obj else field.queryset.none()
        return formset

    def _editable(self, request: HttpRequest, obj: Poll | None) -> bool:
        if obj is None:
            return True
        return can_organise(request.user, obj) and not obj.has_answers()

    def has_add_permission(self, request: HttpRequest, obj: Poll | None = None) -> bool:
        return self._editable(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Poll | None = None) -> bool:
        return self._editable(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Poll | None = None) -> bool:
        return self._editable(request, obj)

    def has_view_permission(self, request: HttpRequest, obj: Poll | None = None) -> bool:
        return obj is None or can_organise(request.user, obj)


class SectionInline(PollPartInline):
    model = Section
    fields = (("order", "key"), "title", "intro")
    verbose_name_plural = "Sections (pages of the questionnaires)"


class PositionInline(PollPartInline):
    model = Position
    fields = (("order", "key"), "title", "summary", "body", "sources")


class OptionInline(PollPartInline):
    model = Option
    fields = (("order", "key", "axis", "position"), "text", "arguments_for", "arguments_against")
    same_poll_fields = ("position",)


class QuestionInline(PollPartInline):
    model = Question
    form = QuestionForm
    fields = (
        ("order", "key", "kind", "section", "waves"),
        ("required", "dont_know", "breakdown"),
        "arms",
        "text",
        "help",
        ("option", "scale_min", "scale_max"),
        "min_label",
        "max_label",
        "choices",
        "answer",
        ("number_min", "number_max"),
    )
    same_poll_fields = ("section", "option")

    def formfield_for_dbfield(
        self, db_field: models.Field, request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        if db_field.name == "arms":
            return ArmsField(label="Arms asked (T2 only)", help_text=db_field.help_text)
        return super().formfield_for_dbfield(db_field, request, **kwargs)
