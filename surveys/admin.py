"""Django admin: everything an organiser needs to build a complete poll by hand."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from surveys.models import (
    Answer,
    ModerationDecision,
    Option,
    Participant,
    Poll,
    Position,
    Question,
    Reason,
    Section,
    localized,
)


def english(field: str) -> Any:
    """A list-display column showing the English text of a translated field."""

    @admin.display(description=field.replace("_", " "))
    def column(obj: Any) -> str:
        return localized(getattr(obj, field), "en")

    return column


class SectionInline(admin.TabularInline):
    model = Section
    extra = 0
    fields = ("order", "key", "title", "intro")


class PositionInline(admin.StackedInline):
    model = Position
    extra = 0
    fields = ("order", "key", "title", "summary", "body", "sources")


class OptionInline(admin.StackedInline):
    model = Option
    extra = 0
    fields = ("order", "key", "axis", "position", "text", "arguments_for", "arguments_against")


class QuestionInline(admin.StackedInline):
    model = Question
    extra = 0
    fields = (
        ("order", "key", "kind", "section", "waves"),
        ("required", "dont_know", "breakdown"),
        "text",
        "help",
        ("option", "scale_min", "scale_max"),
        ("min_label", "max_label"),
        "choices",
        "answer",
        ("number_min", "number_max"),
    )
    autocomplete_fields = ("option",)


class OrganiserScopedAdmin(admin.ModelAdmin):
    """Staff see only what belongs to the polls they organise; superusers see everything."""

    poll_path = "poll"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.poll_path}__organisers": request.user})


@admin.register(Poll)
class PollAdmin(OrganiserScopedAdmin):
    poll_path = ""
    list_display = ("slug", english("title"), "status", "access", "created_at")
    list_filter = ("status", "access")
    search_fields = ("slug",)
    inlines = (SectionInline, PositionInline, OptionInline, QuestionInline)
    filter_horizontal = ("organisers",)
    fieldsets = (
        (None, {"fields": ("slug", "status", "languages", "title", "question", "intro")}),
        (
            "Design",
            {
                "fields": (
                    "control_share",
                    "counterbalance_positions",
                    "randomise_option_order",
                    "group_size",
                    "access",
                    "min_subgroup_size",
                    "min_seconds",
                    "results_public",
                )
            },
        ),
        ("People", {"fields": ("organisers",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = admin.ModelAdmin.get_queryset(self, request)
        return queryset if request.user.is_superuser else queryset.filter(organisers=request.user)


@admin.register(Option)
class OptionAdmin(OrganiserScopedAdmin):
    list_display = ("key", "poll", "axis", english("text"))
    list_filter = ("poll",)
    search_fields = ("key",)


@admin.register(Participant)
class ParticipantAdmin(OrganiserScopedAdmin):
    list_display = ("public_id", "poll", "arm", "group", "step", "language", "completed_at")
    list_filter = ("poll", "arm", "step", "imported")
    search_fields = ("public_id", "label")
    readonly_fields = ("public_id", "token_hash", "created_at", "updated_at")


@admin.register(Answer)
class AnswerAdmin(OrganiserScopedAdmin):
    list_display = ("participant", "question", "wave", "value", "dont_know", "answered_at")
    list_filter = ("poll", "wave")
    list_select_related = ("participant", "question")
    raw_id_fields = ("participant", "question")


@admin.register(Reason)
class ReasonAdmin(OrganiserScopedAdmin):
    list_display = ("option", "stance", "text", "state", "report_count", "created_at")
    list_filter = ("poll", "state", "stance")
    raw_id_fields = ("participant",)


@admin.register(ModerationDecision)
class ModerationDecisionAdmin(OrganiserScopedAdmin):
    poll_path = "reason__poll"
    list_display = ("reason", "action", "moderator", "decided_at")
    readonly_fields = ("reason", "action", "moderator", "decided_at")
