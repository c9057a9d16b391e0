"""The poll's parts edited inline on its page, as an outline: each list (sections, positions,
options, questions) opens and closes and counts its items, and each item opens and closes too.
Texts come in the poll's languages, keys are proposed from the text, parts link to parts added
in the same save, a question shows the fields of its kind, and everything is read-only (shown
as text, per language) once the poll has answers."""

from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.db import models
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from surveys.admin.editors import (
    ChoicesField,
    SourcesField,
    paragraphs,
    shown_list,
    shown_markdown,
    shown_texts,
)
from surveys.admin.fields import (
    CONSTRAINT_MESSAGES,
    KEY_RULE,
    POSITION_KEY_RULE,
    TRANSLATED_FIELDS,
    ArmsField,
    LanguagesField,
    PendingKey,
    PlainErrorsForm,
    SiblingKeyField,
    TextJSONField,
    propose_key,
    propose_letter,
    submitted_keys,
    translations_formfield,
)
from surveys.models import DEFAULT_LANGUAGE, Option, Poll, Position, Question, Section, localized
from surveys.roles import can_organise

# Texts participants read as formatted text (markdown): shown formatted once read-only.
MARKDOWN_TEXTS = {"intro", "body", "summary", "arguments_for", "arguments_against"}
# Which fields each kind of question uses; the others are emptied when the question is saved.
KIND_FIELDS: dict[str, set[str]] = {
    Question.Kind.RATING: {"option", "scale_min", "scale_max", "min_label", "max_label"},
    Question.Kind.SINGLE: {"choices", "breakdown"},
    Question.Kind.MULTIPLE: {"choices"},
    Question.Kind.RANKING: set(),
    Question.Kind.NUMBER: {"number_min", "number_max"},
    Question.Kind.TEXT: set(),
    Question.Kind.KNOWLEDGE: {"choices"},
}
EMPTY = {
    "option": None,
    "scale_min": None,
    "scale_max": None,
    "min_label": {},
    "max_label": {},
    "choices": [],
    "breakdown": False,
    "number_min": None,
    "number_max": None,
}
# A new rating question's scale: 0 to 10, its ends named in the site's languages.
RATING_DEFAULTS = {
    "scale_min": 0,
    "scale_max": 10,
    "min_label": {"en": "Strongly oppose", "uk": "Рішуче проти"},
    "max_label": {"en": "Strongly support", "uk": "Рішуче за"},
}


def show_languages(form_class: type[forms.BaseForm], codes: list[str]) -> None:
    """Show the inputs of the poll's languages only (the others stay, hidden, with their text)."""
    for field in form_class.base_fields.values():
        if hasattr(field, "show_languages"):
            field.show_languages(codes)


class PollPartFormSet(BaseInlineFormSet):
    """Keys proposed in one save stay unique across the new rows of a list."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.proposed: set[str] = set()

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        languages = getattr(self.instance, "languages", None) or [DEFAULT_LANGUAGE]
        return {**super().get_form_kwargs(index), "proposed": self.proposed, "languages": languages}


class PollPartForm(PlainErrorsForm):
    """A part of the poll: a blank key is made from the text, and links to parts added in the
    same save (by key) are made when this part is saved, after them."""

    key_source = "title"  # the field whose English text proposes the key

    def __init__(
        self,
        *args: Any,
        proposed: set[str] | None = None,
        languages: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.proposed = proposed if proposed is not None else set()
        self.languages = languages or [DEFAULT_LANGUAGE]
        self.pending: dict[str, str] = {}
        if "key" in self.fields:
            self.fields["key"].required = False
        for field in self.fields.values():
            if isinstance(field, SiblingKeyField):
                saved = set(field.queryset.values_list("key", flat=True))
                field.new_keys = submitted_keys(self.data, field.prefix) - saved
        self.outline_label = self._outline_label()

    def _outline_label(self) -> str:
        if self.instance.pk is None:
            return ""
        text = localized(getattr(self.instance, self.key_source, {}), DEFAULT_LANGUAGE)
        return f"{self.instance.key} · {text[:90]}"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name, value in list(cleaned.items()):
            if isinstance(value, PendingKey):
                self.pending[name] = str(value)
                cleaned[name] = None
        if "key" in self.fields and not cleaned.get("key"):
            cleaned["key"] = self._propose_key(cleaned)
        return cleaned

    def _taken_keys(self) -> set[str]:
        model = self._meta.model
        saved = model._default_manager.filter(poll_id=self.instance.poll_id)
        if self.instance.pk:
            saved = saved.exclude(pk=self.instance.pk)
        prefix = self.prefix.rsplit("-", 1)[0]
        return (
            set(saved.values_list("key", flat=True))
            | submitted_keys(self.data, prefix)
            | self.proposed
        )

    def _propose_key(self, cleaned: dict[str, Any]) -> str:
        text = localized(cleaned.get(self.key_source) or {}, DEFAULT_LANGUAGE)
        key = propose_key(text, self._taken_keys(), fallback=self._meta.model._meta.model_name)
        self.proposed.add(key)
        return key

    def _get_validation_exclusions(self) -> set[str]:
        # A link to a part saved in the same form is checked when it is made.
        return super()._get_validation_exclusions() | set(self.pending)

    def save(self, commit: bool = True) -> Any:
        for name, key in self.pending.items():
            related = self._meta.model._meta.get_field(name).related_model
            setattr(self.instance, name, related.objects.get(poll=self.instance.poll, key=key))
        return super().save(commit)


class PositionForm(PollPartForm):
    def _propose_key(self, cleaned: dict[str, Any]) -> str:
        key = propose_letter(self._taken_keys())
        self.proposed.add(key)
        return key


class OptionForm(PollPartForm):
    key_source = "text"


class QuestionForm(PollPartForm):
    """A question: the fields of its kind count, the others are emptied; arms limit T2-only
    questions, as in definition files; a knowledge item's answer is its ticked choice."""

    key_source = "text"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None and not self.is_bound:
            # The scale's ends named in the poll's languages only (a text in another language
            # would fail the definition check).
            self.initial.update(
                {
                    name: {code: text for code, text in value.items() if code in self.languages}
                    if isinstance(value, dict)
                    else value
                    for name, value in RATING_DEFAULTS.items()
                }
            )
        if "choices" in self.fields:
            self.fields["choices"].widget.correct_key = self.instance.answer

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind in KIND_FIELDS:
            for name, empty in EMPTY.items():
                if name not in KIND_FIELDS[kind] and name in self.fields:
                    cleaned[name] = empty
                    self.pending.pop(name, None)
        if cleaned.get("arms") and cleaned.get("waves") != Question.Waves.T2:
            # T1 comes before assignment, and a paired item must be asked of both arms.
            self.add_error("arms", _("Only a question asked at T2 alone can be limited to arms."))
        if kind == Question.Kind.RATING:
            low, high = cleaned.get("scale_min"), cleaned.get("scale_max")
            if low is None or high is None or high <= low:
                self.add_error("scale_max", CONSTRAINT_MESSAGES["question_rating_scale"][1])
        choosing = (Question.Kind.SINGLE, Question.Kind.MULTIPLE, Question.Kind.KNOWLEDGE)
        if kind in choosing and "choices" in cleaned and len(cleaned["choices"]) < 2:
            self.add_error("choices", _("This kind of question needs at least two choices."))
        answer = getattr(self.fields.get("choices"), "correct_key", "")
        self.instance.answer = answer if kind == Question.Kind.KNOWLEDGE else ""
        if kind == Question.Kind.KNOWLEDGE and not answer and not self.has_error("choices"):
            self.add_error("choices", CONSTRAINT_MESSAGES["question_knowledge_key"][1])
        return cleaned


class TranslatedFieldsMixin:
    """Every ``{language: text}`` field becomes one input per language, lists become rows of
    inputs, keys say their rule, and links to other parts are chosen by key."""

    def formfield_for_dbfield(
        self, db_field: models.Field, request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        name = db_field.name
        if isinstance(db_field, models.JSONField):
            if name in TRANSLATED_FIELDS:
                return translations_formfield(db_field)
            if name == "languages":
                return LanguagesField(
                    label=_("Languages"),
                    help_text=_(
                        "English is always included. Tick another language and save: its "
                        "fields appear beside the English ones."
                    ),
                    initial=["en"],
                )
            if name == "choices":
                return ChoicesField(
                    label=_("Choices"),
                    help_text=_(
                        "One row per choice, in the order shown. Key: the code stored for the "
                        "choice in data files (letters, digits, underscores or hyphens); leave "
                        "it empty to have one made from the English label. Clear a row to "
                        "remove the choice."
                    ),
                )
            if name == "sources":
                return SourcesField(
                    label=_("Sources"),
                    help_text=_(
                        "What the position's text rests on, one source each, shown to "
                        "participants under it. A text given in English only is shown in every "
                        "language. Clear a source's fields to remove it."
                    ),
                )
            kwargs.setdefault("form_class", TextJSONField)
        if name == "key" and isinstance(db_field, models.CharField):
            rule = POSITION_KEY_RULE if db_field.model is Position else KEY_RULE
            kwargs.update(help_text=rule, label=_("Key"))
        return super().formfield_for_dbfield(db_field, request, **kwargs)  # type: ignore[misc]


class PollPartInline(TranslatedFieldsMixin, admin.StackedInline):
    """A part of a poll: choices limited to the same poll, locked once answers exist."""

    extra = 0
    classes: ClassVar = ("poll-part", "collapse")
    template = "admin/surveys/edit_inline/outline.html"
    formset = PollPartFormSet
    form = PollPartForm
    # Fields that point at other parts of the same poll: (field, the other list's prefix).
    same_poll_fields: tuple[tuple[str, str], ...] = ()

    def formfield_for_dbfield(
        self, db_field: models.Field, request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        prefixes = dict(self.same_poll_fields)
        if db_field.name in prefixes:
            related = db_field.related_model._default_manager.none()
            return SiblingKeyField(
                related,
                prefix=prefixes[db_field.name],
                required=not db_field.null,
                label=str(db_field.verbose_name).capitalize(),
                help_text=db_field.help_text,
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_formset(self, request: HttpRequest, obj: Poll | None = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        for name, _prefix in self.same_poll_fields:
            field = formset.form.base_fields.get(name)
            if field is not None:
                # Never offer another poll's sections or options, whoever is editing.
                model = field.queryset.model
                field.queryset = model._default_manager.filter(poll=obj) if obj else field.queryset
                field.label_from_instance = self._label_of
        show_languages(formset.form, obj.languages if obj else [DEFAULT_LANGUAGE])
        return formset

    @staticmethod
    def _label_of(part: Any) -> str:
        for name in ("title", "text"):
            if hasattr(part, name):
                return f"{part.key}: {localized(getattr(part, name), DEFAULT_LANGUAGE)[:60]}"
        return part.key

    def _locked(self, obj: Poll | None) -> bool:
        return obj is not None and obj.has_answers()

    def get_fieldsets(self, request: HttpRequest, obj: Poll | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if not self._locked(obj):
            return fieldsets
        # Read-only: texts and lists shown in words, per language, never as raw JSON.
        json_fields = {f.name for f in self.model._meta.fields if isinstance(f, models.JSONField)}

        def shown(line: Any) -> Any:
            if isinstance(line, (tuple, list)):
                return tuple(shown(name) for name in line)
            return f"{line}_shown" if line in json_fields else line

        return [(name, {**opts, "fields": shown(opts["fields"])}) for name, opts in fieldsets]

    def get_readonly_fields(self, request: HttpRequest, obj: Poll | None = None) -> Any:
        if not self._locked(obj):
            return super().get_readonly_fields(request, obj)
        return flatten_fieldsets(self.get_fieldsets(request, obj))

    def __getattr__(self, name: str) -> Any:
        if not name.endswith("_shown"):
            raise AttributeError(name)
        field = self.model._meta.get_field(name.removesuffix("_shown"))

        @admin.display(description=str(field.verbose_name).capitalize())
        def display(part: Any) -> SafeString:
            value = getattr(part, field.name)
            languages = part.poll.languages or [DEFAULT_LANGUAGE]
            if isinstance(value, list):
                if value and all(isinstance(item, str) for item in value):
                    return format_html("{}", ", ".join(value))
                return shown_list(value, languages)
            markdown = field.name in MARKDOWN_TEXTS
            return shown_texts(value, languages, shown_markdown if markdown else paragraphs)

        return display

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
    fieldsets = ((None, {"fields": (("key", "order"), "title", "intro")}),)
    verbose_name = _("section")
    verbose_name_plural = _("Sections (pages of the questionnaires)")


class PositionInline(PollPartInline):
    model = Position
    form = PositionForm
    fieldsets = ((None, {"fields": (("key", "order"), "title", "summary", "body", "sources")}),)


class OptionInline(PollPartInline):
    model = Option
    form = OptionForm
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("key", "order"),
                    ("position", "axis"),
                    "text",
                    "short_label",
                    "arguments_for",
                    "arguments_against",
                )
            },
        ),
    )
    same_poll_fields = (("position", "positions"),)


def kind_fieldset(title: Any, kinds: tuple[str, ...], fields: tuple, note: Any) -> tuple:
    """Fields used by some kinds of question only: the page's script shows them for those
    kinds; without script the heading says which kinds they are for."""
    classes = ("kind-fields", *(f"kind-{kind}" for kind in kinds))
    return (title, {"classes": classes, "description": note, "fields": fields})


class QuestionInline(PollPartInline):
    model = Question
    form = QuestionForm
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("key", "order"),
                    ("kind", "section", "waves"),
                    "text",
                    "help",
                    ("required", "dont_know"),
                    "arms",
                    "family",
                )
            },
        ),
        kind_fieldset(
            _("Rating scale"),
            ("rating",),
            ("option", ("scale_min", "scale_max"), "min_label", "max_label"),
            _("For rating questions: the option rated (if any) and the scale's ends."),
        ),
        kind_fieldset(
            _("Choices"),
            ("single", "multiple", "knowledge"),
            ("choices", "breakdown"),
            _("For single choice, multiple choice and knowledge items."),
        ),
        kind_fieldset(
            _("Number"),
            ("number",),
            (("number_min", "number_max"),),
            _("For number questions: the smallest and largest answer accepted."),
        ),
    )
    same_poll_fields = (("section", "sections"), ("option", "options"))

    def formfield_for_dbfield(
        self, db_field: models.Field, request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        if db_field.name == "arms":
            return ArmsField(label=_("Arms asked (T2 only)"), help_text=db_field.help_text)
        return super().formfield_for_dbfield(db_field, request, **kwargs)
