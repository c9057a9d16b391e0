"""Moderation of participants' reasons: hide or restore, each decision logged with who and when."""

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import Truncator

from surveys.admin.base import OrganiserScopedAdmin, PollFilter
from surveys.models import ModerationDecision, Poll, Reason

STATE_AFTER = {
    ModerationDecision.Action.HIDE: Reason.State.HIDDEN,
    # A restored reason was looked at: it leaves the reported queue for good.
    ModerationDecision.Action.RESTORE: Reason.State.VISIBLE,
}


def moderate_reasons(*, reasons: QuerySet[Reason], action: str, moderator: Any) -> int:
    """Hide or restore the given reasons; returns how many changed state.

    Reasons already in the target state are left alone and get no log entry, so a repeated
    click changes nothing. Callers pass a queryset already limited to what the moderator may
    touch.
    """
    if action not in STATE_AFTER:
        raise ValueError(f"Unknown moderation action '{action}'.")
    target = STATE_AFTER[ModerationDecision.Action(action)]
    with transaction.atomic():
        changing = list(
            reasons.select_for_update(of=("self",))
            .exclude(state=target)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        Reason.objects.filter(pk__in=changing).update(state=target)
        ModerationDecision.objects.bulk_create(
            ModerationDecision(reason_id=pk, action=action, moderator=moderator) for pk in changing
        )
    return len(changing)


@admin.register(Reason)
class ReasonAdmin(OrganiserScopedAdmin):
    """The moderation queue: reported reasons first, then the newest."""

    list_display = (
        "reason",
        "option",
        "stance",
        "state_badge",
        "report_count",
        "created_at",
        "buttons",
    )
    list_filter = (("poll", PollFilter), "state", "stance")
    list_select_related = ("option",)
    search_fields = ("text",)
    actions = ("hide", "restore")
    list_per_page = 50
    fields = ("poll", "option", "stance", "text", "state", "report_count", "created_at")
    readonly_fields = fields

    def get_ordering(self, request: HttpRequest) -> tuple[Any, ...]:
        queue_rank = Case(
            When(state=Reason.State.REPORTED, then=Value(0)),
            When(state=Reason.State.VISIBLE, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        )
        return (queue_rank.asc(), "-report_count", "-created_at")

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:reason_id>/<str:action>/",
                wrap(self.moderate_view),
                name="surveys_reason_moderate",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="reason")
    def reason(self, obj: Reason) -> str:
        # Participants' words are hostile input: the admin escapes them; we also shorten them.
        return Truncator(obj.text).chars(240)

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: Reason) -> str:
        return format_html(
            '<span class="reason-state state-{}">{}</span>', obj.state, obj.get_state_display()
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        extra = {"title": "Moderation queue: reported reasons first", **(extra_context or {})}
        return super().changelist_view(request, extra)

    @admin.display(description="moderate")  # a named column header (axe: empty-table-header)
    def buttons(self, obj: Reason) -> str:
        action = "restore" if obj.state == Reason.State.HIDDEN else "hide"
        url = reverse("admin:surveys_reason_moderate", args=[obj.pk, action])
        return format_html(
            '<button type="submit" class="button moderate-{}" formaction="{}" '
            'formmethod="post">{}</button>',
            action,
            url,
            action.capitalize(),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # moderation goes through hide and restore, which are logged

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _moderate(self, request: HttpRequest, queryset: QuerySet, action: str) -> int:
        mine = queryset.filter(poll__in=Poll.objects.organised_by(request.user).values("pk"))
        return moderate_reasons(reasons=mine, action=action, moderator=request.user)

    @admin.action(description="Hide the selected reasons")
    def hide(self, request: HttpRequest, queryset: QuerySet[Reason]) -> None:
        changed = self._moderate(request, queryset, ModerationDecision.Action.HIDE)
        messages.success(request, f"Hid {changed} reason(s).")

    @admin.action(description="Restore the selected reasons")
    def restore(self, request: HttpRequest, queryset: QuerySet[Reason]) -> None:
        changed = self._moderate(request, queryset, ModerationDecision.Action.RESTORE)
        messages.success(request, f"Restored {changed} reason(s).")

    def moderate_view(self, request: HttpRequest, reason_id: int, action: str) -> HttpResponse:
        reason = get_object_or_404(self.get_queryset(request), pk=reason_id)
        if request.method != "POST" or action not in ModerationDecision.Action.values:
            return HttpResponseRedirect(reverse("admin:surveys_reason_changelist"))
        changed = self._moderate(request, Reason.objects.filter(pk=reason.pk), action)
        verb = "hidden" if action == ModerationDecision.Action.HIDE else "restored"
        messages.success(request, f"Reason {verb}." if changed else "Nothing to change.")
        back = request.META.get("HTTP_REFERER", "")
        if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
            back = reverse("admin:surveys_reason_changelist")
        return HttpResponseRedirect(back)


@admin.register(ModerationDecision)
class ModerationDecisionAdmin(OrganiserScopedAdmin):
    poll_path = "reason__poll"
    list_display = ("reason", "action", "moderator", "decided_at")
    list_filter = ("action",)
    list_select_related = ("reason", "moderator")
    readonly_fields = ("reason", "action", "moderator", "decided_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the moderation log is append-only
