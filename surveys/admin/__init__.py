"""Django admin: the organisers' control room.

Access is per poll (``surveys.roles``): organisers manage the polls they are on, researchers
read the results of the polls granted to them, superusers see everything, and any other staff
user sees nothing of a poll, whatever global model permissions they hold. The poll's tool pages
(checklist, lifecycle, invitations, monitor, import/export, clone) live in ``surveys.admin.pages``,
the preview in ``surveys.admin.preview``, and the results pages in ``results.admin``.
"""

from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from surveys.admin.base import OrganiserScopedAdmin, PollFilter, english
from surveys.admin.fields import SLUG_HELP, PlainErrorsForm, site_languages
from surveys.admin.inlines import (
    OptionInline,
    PositionInline,
    QuestionInline,
    SectionInline,
    TranslatedFieldsMixin,
    show_languages,
)
from surveys.admin.lifecycle import change_status
from surveys.admin.moderation import ReasonAdmin  # noqa: F401 (registers the moderation queue)
from surveys.admin.pages import PollToolsMixin, admin_url, poll_tabs, transitions_for
from surveys.admin.preview import PreviewMixin
from surveys.journey.invitations import invitation_status, revoke_invitations
from surveys.models import Option, Participant, Poll
from surveys.roles import can_organise


class PollForm(PlainErrorsForm):
    """The poll's own fields; its constraint errors are sentences on the field concerned."""


@admin.register(Poll)
class PollAdmin(PreviewMixin, PollToolsMixin, TranslatedFieldsMixin, OrganiserScopedAdmin):
    poll_path = ""
    list_display = ("slug", english("title"), "status", "access", "participants", "created_at")
    list_filter = ("status", "access")
    search_fields = ("slug",)
    inlines = (SectionInline, PositionInline, OptionInline, QuestionInline)
    filter_horizontal = ("organisers",)
    readonly_fields = ("status",)
    actions = ("close_polls",)
    # The schedule's times as one labelled browser date-and-time field each: the admin's split
    # date and time boxes leave the time box without a label of its own.
    formfield_overrides: ClassVar = {
        models.DateTimeField: {
            "form_class": forms.DateTimeField,
            "widget": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
        }
    }
    form = PollForm
    fieldsets = (
        (None, {"fields": ("slug", "status", "languages", "title", "question", "intro")}),
        (
            _("Design"),
            {
                "classes": ("design", "collapse"),
                "fields": (
                    ("control_share", "group_size", "min_subgroup_size"),
                    ("counterbalance_positions", "randomise_option_order"),
                    ("access", "min_seconds"),
                    "deliberation",
                    "results_public",
                ),
            },
        ),
        (
            _("Schedule"),
            {
                "classes": ("schedule", "collapse"),
                "description": _(
                    "Leave all empty to run the poll in one sitting. To run it over days, give "
                    "when the second questionnaire opens: one date for everyone, or a delay "
                    "after each participant's first questionnaire. Both groups answer the "
                    "second questionnaire at the same time; whoever finishes the first one "
                    "earlier gets a personal link to come back. Times are in UTC."
                ),
                "fields": (
                    ("t1_opens", "t1_closes"),
                    ("t2_opens", "t2_after"),
                    "deliberation_closes",
                ),
            },
        ),
        (
            _("Consent"),
            {
                "classes": ("collapse",),
                "description": _(
                    "Shown on the welcome page before anyone answers: who runs the poll, how "
                    "to reach them, and about how long it takes."
                ),
                "fields": ("run_by", ("contact_email", "duration_minutes")),
            },
        ),
        (_("People"), {"classes": ("collapse",), "fields": ("organisers",)}),
    )

    def get_form(
        self, request: HttpRequest, obj: Poll | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        # Before the poll has languages every one is offered; the page's script follows the
        # ticked languages.
        codes = obj.languages if obj else [code for code, _name in site_languages()]
        show_languages(form, codes)
        if "slug" in form.base_fields:
            form.base_fields["slug"].help_text = SLUG_HELP
        return form

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Researchers see the polls granted to them in the list; the change page sends them on
        # to the results, the only thing they may read.
        queryset = admin.ModelAdmin.get_queryset(self, request)
        return queryset.filter(pk__in=Poll.objects.readable_by(request.user).values("pk")).annotate(
            participant_count=models.Count("participants", distinct=True)
        )

    @admin.display(description=_("participants"), ordering="participant_count")
    def participants(self, obj: Poll) -> int:
        return obj.participant_count

    def has_module_permission(self, request: HttpRequest) -> bool:
        return Poll.objects.readable_by(request.user).exists() or self.has_add_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return Poll.objects.readable_by(request.user).exists() or self.has_add_permission(
                request
            )
        return Poll.objects.readable_by(request.user).filter(pk=obj.pk).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return user.is_active and user.is_staff and user.has_perm("surveys.add_poll")

    def has_change_permission(self, request: HttpRequest, obj: Poll | None = None) -> bool:
        if obj is None:
            # A first-time organiser creating a poll must be able to save and keep editing it.
            return self._may(request, None) or self.has_add_permission(request)
        return self._may(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Poll | None = None) -> bool:
        # A poll with participants is a record of what people said: close it, never delete it.
        if obj is not None and obj.participants.exists():
            return False
        return self._may(request, obj)

    def formfield_for_manytomany(
        self, db_field: models.ManyToManyField, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelMultipleChoiceField | None:
        if db_field.name == "organisers":
            kwargs["queryset"] = db_field.related_model._default_manager.filter(
                is_staff=True, is_active=True
            ).order_by("username")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_inline_instances(self, request: HttpRequest, obj: Poll | None = None) -> list:
        # Parts point at each other (a question at its section and option): they are added
        # once the poll exists, so the add page asks for the poll itself only.
        return [] if obj is None else super().get_inline_instances(request, obj)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if not request.user.is_superuser:
            # Whoever creates or edits a poll stays on it: nobody locks themselves out.
            form.instance.organisers.add(request.user)

    def readable_poll_or_404(self, request: HttpRequest, object_id: str) -> Poll:
        # get_object answers None for an id that is not a number (get_object_or_404 raised a
        # ValueError there: a 500 for /admin/surveys/poll/abc/change/).
        poll = self.get_object(request, unquote(object_id))
        if poll is None:
            raise Http404("No such poll.")
        return poll

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        # Who edited the poll and how is the organisers' business; researchers read results.
        poll = self.readable_poll_or_404(request, object_id)
        if not can_organise(request.user, poll):
            return HttpResponseRedirect(admin_url("results", poll.pk))
        return super().history_view(request, object_id, extra_context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        poll = self.readable_poll_or_404(request, object_id)
        if not can_organise(request.user, poll):
            return HttpResponseRedirect(admin_url("results", poll.pk))
        answers = poll.answers.count()
        extra = {
            "tabs": poll_tabs(request, poll),
            "tab": "edit",
            "transitions": transitions_for(poll),
            "locked_answers": answers,
            **(extra_context or {}),
        }
        if answers and request.method == "GET":
            messages.warning(
                request,
                ngettext(
                    "This poll has %(count)d answer, so its sections, positions, options and "
                    "questions are locked: changing them would change what the answers mean. "
                    "Texts of the poll itself and its design can still change. To change the "
                    "items, clone the poll and run the copy.",
                    "This poll has %(count)d answers, so its sections, positions, options and "
                    "questions are locked: changing them would change what the answers mean. "
                    "Texts of the poll itself and its design can still change. To change the "
                    "items, clone the poll and run the copy.",
                    answers,
                )
                % {"count": answers},
            )
        return super().change_view(request, object_id, form_url, extra)

    @admin.action(description=_("Close the selected open polls"))
    def close_polls(self, request: HttpRequest, queryset: QuerySet[Poll]) -> None:
        mine = queryset.filter(pk__in=Poll.objects.organised_by(request.user).values("pk"))
        closed = 0
        for poll in mine.filter(status=Poll.Status.OPEN):
            change_status(poll_id=poll.pk, transition="close", by=request.user)
            self.log_change(request, poll, "Status changed: close (closed).")
            closed += 1
        messages.info(
            request,
            ngettext("Closed %(count)d poll.", "Closed %(count)d polls.", closed)
            % {"count": closed},
        )


@admin.register(Option)
class OptionAdmin(TranslatedFieldsMixin, OrganiserScopedAdmin):
    list_display = ("key", "poll", "axis", english("text"))
    list_filter = (("poll", PollFilter),)
    search_fields = ("key",)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return False  # edited on the poll's page; registered for lookups only

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj) and not (obj is not None and obj.poll.has_answers())

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_change_permission(request, obj)


class InvitationStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("not_started", _("not started")),
            ("in_progress", _("in progress")),
            ("completed", _("completed")),
            ("revoked", _("revoked")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "not_started":
            return queryset.filter(consented_at__isnull=True, revoked_at__isnull=True)
        if value == "in_progress":
            return queryset.in_progress().filter(revoked_at__isnull=True)
        if value == "completed":
            return queryset.completed()
        if value == "revoked":
            return queryset.filter(revoked_at__isnull=False, completed_at__isnull=True)
        return queryset


class InvitedFilter(admin.SimpleListFilter):
    title = _("how they came")
    parameter_name = "invited"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", _("personal invitation")), ("no", _("open link"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.invited()
        if self.value() == "no":
            return queryset.filter(token_hash__isnull=True)
        return queryset


@admin.register(Participant)
class ParticipantAdmin(OrganiserScopedAdmin):
    """Invitations and participants: status and progress, never answers or tokens."""

    list_filter = (("poll", PollFilter), InvitationStatusFilter, InvitedFilter, "arm", "step")
    search_fields = ("public_id", "label")
    list_select_related = ("poll",)
    list_per_page = 100
    actions = ("revoke",)
    readonly_fields = (
        "public_id",
        "poll",
        "status",
        "step",
        "arm",
        "group",
        "language",
        "consented_at",
        "briefed_at",
        "completed_at",
        "revoked_at",
        "flags",
        "created_at",
        "updated_at",
    )

    def get_list_display(self, request: HttpRequest) -> tuple:
        contact_polls = set(request.user.organised_polls.values_list("pk", flat=True))

        @admin.display(description=_("contact"))
        def contact(obj: Participant) -> str:
            # Contacts are for the poll's own organisers, not for superusers passing by.
            return obj.contact if obj.poll_id in contact_polls else _("(hidden)")

        return ("public_id", "label", contact, "status", "step", "arm", "poll", "updated_at")

    def get_fields(self, request: HttpRequest, obj: Participant | None = None) -> list[str]:
        fields = ["label", *self.readonly_fields]
        if obj is not None and obj.poll.organisers.filter(pk=request.user.pk).exists():
            fields.insert(1, "contact")
        return fields

    @admin.display(description=_("status"))
    def status(self, obj: Participant) -> str:
        return invitation_status(obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # invitations are made in bulk on the poll's Invitations page

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: a participant's answers are part of the record

    @admin.action(description=_("Revoke the selected invitations (unused ones)"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[Participant]) -> None:
        revoked = revoke_invitations(participants=queryset)
        messages.info(
            request,
            ngettext(
                "Revoked %(count)d invitation; completed ones are kept.",
                "Revoked %(count)d invitations; completed ones are kept.",
                revoked,
            )
            % {"count": revoked},
        )
