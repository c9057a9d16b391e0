"""What every poll-scoped admin shares: rows limited to the polls the user may see, the
poll filter, and the English column of a translated field."""

from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from surveys.models import Poll, localized
from surveys.roles import can_organise


def english(field: str) -> Any:
    """A list-display column showing the English text of a translated field."""

    # The model's own (translated) name of the field heads the column.
    @admin.display(description=_(field.replace("_", " ")))
    def column(obj: Any) -> str:
        return localized(getattr(obj, field), "en")

    return column


class OrganiserScopedAdmin(admin.ModelAdmin):
    """Rows belonging to polls: visible and changeable only by those polls' organisers.

    ``poll_path`` is the lookup from the model to its poll ("" for the poll itself). Querysets,
    object permissions, foreign-key choices and list filters are all cut to the user's polls, so
    list views, change views, actions, autocomplete and related lookups agree.
    """

    poll_path = "poll"

    def poll_of(self, obj: Any) -> Poll:
        target = obj
        for part in filter(None, self.poll_path.split("__")):
            target = getattr(target, part)
        return target

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        lookup = f"{self.poll_path}__in" if self.poll_path else "pk__in"
        return queryset.filter(**{lookup: Poll.objects.organised_by(request.user).values("pk")})

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_organise(request.user, None)

    def _may(self, request: HttpRequest, obj: Any) -> bool:
        return can_organise(request.user, None if obj is None else self.poll_of(obj))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return can_organise(request.user, None)

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField | None:
        related = db_field.related_model
        if related is Poll:
            kwargs["queryset"] = Poll.objects.organised_by(request.user)
        elif any(field.name == "poll" for field in related._meta.fields):
            kwargs["queryset"] = related._default_manager.filter(
                poll__in=Poll.objects.organised_by(request.user).values("pk")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class PollFilter(admin.RelatedOnlyFieldListFilter):
    """Filter by poll, offering only the polls present in the (already scoped) rows."""
