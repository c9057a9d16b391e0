"""Forms of the organiser admin: texts in every language side by side, and the poll tools."""

import json
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.utils.text import slugify

from surveys.definition.files import TRANSLATED
from surveys.definition.yaml_reader import MAX_FILE_BYTES, too_large
from surveys.models import DEFAULT_LANGUAGE, Participant, Poll, Question

# Participant-facing texts that run to paragraphs get a text area; the rest a single line.
LONG_TEXTS = {"intro", "summary", "body", "arguments_for", "arguments_against", "help"}
# Choice labels live inside the choices JSON and are edited there, not as a field of their own.
TRANSLATED_FIELDS = TRANSLATED - {"label"}


def site_languages() -> list[tuple[str, str]]:
    return [(code, str(name)) for code, name in settings.LANGUAGES]


class TranslationsWidget(forms.MultiWidget):
    template_name = "admin/surveys/widgets/translations.html"

    def __init__(self, *, long: bool) -> None:
        self.languages = site_languages()
        widget = (
            forms.Textarea(attrs={"rows": 4, "class": "vLargeTextField"})
            if long
            else forms.TextInput(attrs={"class": "vLargeTextField"})
        )
        super().__init__(widgets={code: widget for code, _ in self.languages})

    def decompress(self, value: Any) -> list[str]:
        value = value if isinstance(value, dict) else {}
        return [value.get(code, "") for code, _ in self.languages]

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        for subwidget, (code, label) in zip(
            context["widget"]["subwidgets"], self.languages, strict=True
        ):
            subwidget["language"] = code
            subwidget["language_name"] = label
        return context


class TranslationsField(forms.MultiValueField):
    """A ``{language: text}`` mapping edited as one input per site language.

    English is required wherever the text itself is: the database refuses a title without it.
    Empty languages are left out, so the readiness check can tell what is missing.
    """

    def __init__(self, *, required: bool = True, long: bool = False, **kwargs: Any) -> None:
        kwargs.pop("encoder", None)
        kwargs.pop("decoder", None)
        kwargs.pop("max_length", None)
        fields = [forms.CharField(required=False, strip=True) for _ in site_languages()]
        super().__init__(
            fields=fields,
            widget=TranslationsWidget(long=long),
            required=required,
            require_all_fields=False,
            **kwargs,
        )

    def compress(self, data_list: list[str]) -> dict[str, str]:
        texts = {
            code: text
            for (code, _), text in zip(site_languages(), data_list or [], strict=False)
            if text
        }
        if self.required and DEFAULT_LANGUAGE not in texts:
            raise ValidationError("The English text is required.", code="english_required")
        return texts

    def has_changed(self, initial: Any, data: Any) -> bool:
        initial_texts = initial if isinstance(initial, dict) else {}
        try:
            return self.compress(data) != initial_texts
        except ValidationError:
            return True


def translations_formfield(db_field: Any, **kwargs: Any) -> TranslationsField:
    return TranslationsField(
        required=not db_field.blank,
        long=db_field.name in LONG_TEXTS,
        label=db_field.verbose_name.capitalize(),
        help_text="" if db_field.help_text.startswith("{") else db_field.help_text,
    )


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


class QuestionForm(forms.ModelForm):
    """A question on the poll's page; arms limit T2-only questions, as in definition files."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("arms") and cleaned.get("waves") != Question.Waves.T2:
            # T1 comes before assignment, and a paired item must be asked of both arms.
            self.add_error("arms", "Only a question asked at T2 alone can be limited to arms.")
        return cleaned


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
