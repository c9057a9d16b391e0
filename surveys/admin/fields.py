"""Form fields of the organiser admin: texts in every language side by side, keys proposed from
the text, links to parts of the same poll saved in the same form, and the poll tools' forms."""

import json
import re
from collections.abc import Iterable
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import models
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from surveys.definition.files import TRANSLATED
from surveys.definition.yaml_reader import MAX_FILE_BYTES, too_large
from surveys.models import DEFAULT_LANGUAGE, Participant, Poll

# Participant-facing texts that run to paragraphs get a text area; the rest a single line.
LONG_TEXTS = {"intro", "summary", "body", "arguments_for", "arguments_against", "help"}
# Choice labels live inside the choices and are edited in the choices' rows.
TRANSLATED_FIELDS = (TRANSLATED | {"short_label"}) - {"label"}
# A proposed key stays short enough to read in a data file's column header.
PROPOSED_KEY_LENGTH = 30
KEY_RULE = _(
    "The name of this item in data files and exports. It starts with a letter, then letters, "
    "digits or underscores (no spaces), at most 60 characters, and differs from the poll's "
    "other keys. Leave it empty: one is made from the English text."
)
POSITION_KEY_RULE = _(
    "One capital letter, A to Z, different for each position (participants never see it). "
    "Leave it empty: the next free letter is used."
)
CHOICE_KEY_RULE = _(
    "Key: the code stored for this choice in data files (letters, digits, underscores or "
    "hyphens). Leave it empty: one is made from the English label."
)
SLUG_HELP = _(
    "The poll's name in its web address (/p/city-budget-2027/) and in file names: lower-case "
    "letters, digits and hyphens. It cannot be changed once people take part."
)


def site_languages() -> list[tuple[str, str]]:
    return [(code, str(name)) for code, name in settings.LANGUAGES]


def propose_key(text: str, taken: Iterable[str], *, fallback: str = "item") -> str:
    """A key made from ``text`` (English), unique case-insensitively among ``taken``."""
    words = slugify(text).replace("-", "_")
    base = ""
    for word in words.split("_"):
        if len(base) + len(word) + 1 > PROPOSED_KEY_LENGTH:
            break
        base = f"{base}_{word}" if base else word
    base = base or words[:PROPOSED_KEY_LENGTH]
    if not re.match(r"[a-z]", base):
        base = f"{fallback}_{base}".rstrip("_")
    used = {key.lower() for key in taken}
    key, number = base, 2
    while key.lower() in used:
        key, number = f"{base}_{number}", number + 1
    return key


def propose_letter(taken: Iterable[str]) -> str:
    used = {key.upper() for key in taken}
    return next((chr(code) for code in range(65, 91) if chr(code) not in used), "")


# -- texts in every language -------------------------------------------------------------------


class TranslationsWidget(forms.MultiWidget):
    """One input per site language. Languages the poll does not use are rendered hidden (their
    text is kept, never erased), and the poll page's script shows them when one is ticked."""

    template_name = "admin/surveys/widgets/translations.html"

    def __init__(self, *, long: bool) -> None:
        self.languages = site_languages()
        self.shown = [code for code, _name in self.languages]
        widget = (
            forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"})
            if long
            else forms.TextInput(attrs={"class": "vLargeTextField"})
        )
        super().__init__(widgets={code: widget for code, _name in self.languages})

    def decompress(self, value: Any) -> list[str]:
        value = value if isinstance(value, dict) else {}
        return [value.get(code, "") for code, _name in self.languages]

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        for subwidget, (code, label) in zip(
            context["widget"]["subwidgets"], self.languages, strict=True
        ):
            subwidget["language"] = code
            subwidget["language_name"] = label
            subwidget["off"] = code not in self.shown
        return context


class TranslationsField(forms.MultiValueField):
    """A ``{language: text}`` mapping edited as one input per site language.

    English is required wherever the text itself is: the database refuses a title without it.
    Empty languages are left out, so the readiness check can tell what is missing.
    """

    def __init__(self, *, required: bool = True, long: bool = False, **kwargs: Any) -> None:
        for name in ("encoder", "decoder", "max_length"):
            kwargs.pop(name, None)
        fields = [forms.CharField(required=False, strip=True) for _code in site_languages()]
        super().__init__(
            fields=fields,
            widget=TranslationsWidget(long=long),
            required=required,
            require_all_fields=False,
            **kwargs,
        )

    def show_languages(self, codes: list[str]) -> None:
        self.widget.shown = list(codes)

    def compress(self, data_list: list[str]) -> dict[str, str]:
        texts = {
            code: text
            for (code, _name), text in zip(site_languages(), data_list or [], strict=False)
            if text
        }
        if self.required and DEFAULT_LANGUAGE not in texts:
            raise ValidationError(_("The English text is required."), code="english_required")
        return texts

    def has_changed(self, initial: Any, data: Any) -> bool:
        initial_texts = initial if isinstance(initial, dict) else {}
        try:
            return self.compress(data) != initial_texts
        except ValidationError:
            return True


def translations_formfield(db_field: Any, **kwargs: Any) -> TranslationsField:
    help_text = str(db_field.help_text)
    return TranslationsField(
        required=not db_field.blank,
        long=db_field.name in LONG_TEXTS,
        label=str(db_field.verbose_name).capitalize(),
        # "{language: text}" and the like describe the storage, not what to write.
        help_text="" if "{" in help_text else db_field.help_text,
    )


def no_nul(text: str, where: str) -> str:
    """PostgreSQL stores no NUL character in JSON or text: a form error instead of a 500."""
    if "\x00" in text:
        raise ValidationError(
            _("%(where)s may not contain a NUL character."),
            code="null_characters",
            params={"where": where},
        )
    return text


# -- links between parts of one poll -------------------------------------------------------------


class SiblingKeyField(forms.ModelChoiceField):
    """A link to another part of the same poll, chosen by its key, that may be a part added in
    the same save: the poll page's script offers the keys typed in the other list, and the
    form links it once that part is saved (``surveys.admin.inlines.PollPartForm``)."""

    def __init__(self, queryset: models.QuerySet, *, prefix: str, **kwargs: Any) -> None:
        kwargs.pop("to_field_name", None)
        super().__init__(queryset, to_field_name="key", **kwargs)
        self.prefix = prefix  # the other list's formset prefix, e.g. "positions"
        self.new_keys: set[str] = set()
        self.widget.attrs["data-sibling"] = prefix

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return None
        if isinstance(value, str) and value in self.new_keys:
            return PendingKey(value)
        return super().to_python(value)

    def prepare_value(self, value: Any) -> Any:
        # The form's initial value is the linked part's id; the choices are keys.
        if isinstance(value, int) and not isinstance(value, bool):
            return dict(self.queryset.values_list("pk", "key")).get(value, value)
        return super().prepare_value(value)

    def has_changed(self, initial: Any, data: Any) -> bool:
        if data in self.new_keys:
            return True
        return super().has_changed(initial, data)


class PendingKey(str):
    """The key of a part saved in the same form, linked when this part is saved."""


def submitted_keys(data: Any, prefix: str) -> set[str]:
    """Keys typed for new rows of another list of the poll page (rows not being deleted)."""
    keys = set()
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)-key$")
    for name in data or {}:
        match = pattern.match(name)
        if match and not data.get(f"{prefix}-{match.group(1)}-DELETE"):
            key = data.get(name, "").strip()
            if key:
                keys.add(key)
    return keys


class ChecklistField(forms.MultipleChoiceField):
    """A JSON list of the model edited as checkboxes, one per choice."""

    widget = forms.CheckboxSelectMultiple

    def __init__(self, *, choices: Any, **kwargs: Any) -> None:
        for name in ("encoder", "decoder", "max_length"):
            kwargs.pop(name, None)
        super().__init__(choices=choices, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str):
            # A new row's default arrives JSON-encoded from the model field.
            try:
                value = json.loads(value)
            except ValueError:
                return [value]
        return value if isinstance(value, list) else super().prepare_value(value)


class LanguagesField(ChecklistField):
    """The poll's languages, English always first (participants fall back to it)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=site_languages(), **kwargs)

    def clean(self, value: Any) -> list[str]:
        chosen = super().clean(value)
        if DEFAULT_LANGUAGE not in chosen:
            raise ValidationError("English must be one of the poll's languages.")
        return [DEFAULT_LANGUAGE, *[code for code in chosen if code != DEFAULT_LANGUAGE]]


class ArmsField(ChecklistField):
    """The arms a second-questionnaire question is asked of; none ticked: everyone."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Participant.Arm.choices, required=False, **kwargs)


class TextJSONField(forms.JSONField):
    """JSON typed by an organiser (sources, choices). PostgreSQL stores no NUL character in JSON
    or text, so one is a form error here instead of a database error (a 500) on save."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and ("\x00" in value or "\\u0000" in value):
            raise forms.ValidationError(
                "Text may not contain a NUL character (\\u0000).", code="null_characters"
            )
        return super().to_python(value)


class InvitationsForm(forms.Form):
    count = forms.IntegerField(
        min_value=1,
        max_value=10_000,
        required=False,
        label="Number of links",
        help_text="Leave empty when you upload labels: one link is made per row.",
    )
    labels = forms.FileField(
        required=False,
        label="CSV of labels (optional)",
        help_text="A CSV file with a 'label' column and, optionally, a 'contact' column "
        "(shown to this poll's organisers only, never exported).",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("count") and not data.get("labels"):
            raise ValidationError("Give a number of links or upload a CSV of labels.")
        if data.get("count") and data.get("labels"):
            raise ValidationError("Give a number of links or a CSV of labels, not both.")
        return data


class DefinitionImportForm(forms.Form):
    file = forms.FileField(
        label="Poll definition file (YAML)",
        help_text="A file in the format of manage.py dumppoll. A poll with the same slug is "
        "updated if you organise it; a poll with answers keeps its items.",
    )

    def clean_file(self) -> UploadedFile:
        # Refused by its size before anything reads it into memory.
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(too_large(upload.size).message)
        return upload


class CloneForm(forms.Form):
    slug = forms.SlugField(max_length=80, label="Slug of the copy")

    def clean_slug(self) -> str:
        slug = slugify(self.cleaned_data["slug"])
        if Poll.objects.filter(slug=slug).exists():
            raise ValidationError(f"A poll with the slug '{slug}' already exists.")
        return slug


# -- errors as sentences --------------------------------------------------------------------------

# A database constraint's refusal, said as a sentence on the field it is about.
CONSTRAINT_MESSAGES: dict[str, tuple[str, Any]] = {
    "question_rating_scale": (
        "scale_max",
        _(
            "A rating question needs a scale: give its lowest and highest value, the highest "
            "above the lowest (for example 0 and 10)."
        ),
    ),
    "question_knowledge_key": (
        "choices",
        _("A knowledge item needs its correct answer: tick the correct choice."),
    ),
    "question_breakdown_single": (
        "breakdown",
        _("Only a single-choice question can break down the results into groups."),
    ),
    "poll_control_share_range": (
        "control_share",
        _(
            "The control share is a fraction from 0 up to (not including) 1: 0.5 puts half of "
            "the participants in the control group."
        ),
    ),
    "poll_group_size_range": (
        "group_size",
        _("A deliberation group has from 2 to 50 people."),
    ),
    "poll_min_k": ("min_subgroup_size", _("The smallest subgroup shown is at least 1 person.")),
    "poll_t2_one_rule": (
        "t2_after",
        _("Give the date of the second questionnaire or its delay after the first, not both."),
    ),
}
UNIQUE_MESSAGES: dict[str, Any] = {
    "key": _("Another part of this poll of the same kind already has this key."),
    "axis": _("Another option already has this place on the axis: give each option its own."),
}


class PlainErrorsForm(forms.ModelForm):
    """A model form whose constraint errors are sentences on the field concerned."""

    def _update_errors(self, errors: ValidationError) -> None:
        if hasattr(errors, "error_dict"):
            plain: dict[str, list[Any]] = {}
            for name, items in errors.error_dict.items():
                for error in items:
                    field, message = self._plain(name, error)
                    if field in self.fields and self.has_error(field):
                        continue  # the field's own check already said it
                    plain.setdefault(field if field in self.fields else name, []).append(message)
            errors = ValidationError(plain)
        super()._update_errors(errors)

    def _plain(self, name: str, error: ValidationError) -> tuple[str, Any]:
        text = " ".join(str(message) for message in error.messages)
        for constraint, (field, message) in CONSTRAINT_MESSAGES.items():
            if f"“{constraint}”" in text:
                return field, message
        check = (error.params or {}).get("unique_check", ()) if error.code else ()
        for field, message in UNIQUE_MESSAGES.items():
            if field in check:
                return field, message
        return name, error
