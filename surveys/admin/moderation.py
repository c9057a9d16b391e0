"""Moderation of participants' reasons: hide or restore, each decision logged with who and when.

The queue is a list of cards (``admin/surveys/reason/change_list.html``): each reason in full
with its option, stance, the writer's arm and group and its reports, and Hide / Keep buttons
that are ordinary submit buttons, so they work from the keyboard. After a decision the page
comes back with the next card focused.
"""

import re
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _

from surveys.admin.base import OrganiserScopedAdmin, PollFilter
from surveys.models import ModerationDecision, Poll, Reason, localized

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


# The card that takes the focus after a decision: its element id, checked before use.
NEXT_CARD = re.compile(r"^reason-[0-9]+$")


def moderated_message(action: str, count: int) -> str:
    """The confirmation of a decision on ``count`` reasons, as a sentence with its plural."""
    if action == ModerationDecision.Action.HIDE:
        return ngettext("Hid %(count)d reason.", "Hid %(count)d reasons.", count) % {"count": count}
    return ngettext(
        "Kept %(count)d reason: it stays visible.",
        "Kept %(count)d reasons: they stay visible.",
        count,
    ) % {"count": count}


@admin.register(Reason)
class ReasonAdmin(OrganiserScopedAdmin):
    """The moderation queue: reported reasons first, then the newest, as cards."""

    list_display = ("text", "option", "stance", "state", "report_count", "created_at")
    list_filter = (("poll", PollFilter), "state", "stance")
    list_select_related = ("option", "participant", "poll")
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

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        response = super().changelist_view(
            request, {"title": _("Moderation: reported reasons first"), **(extra_context or {})}
        )
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            cards = [card(reason) for reason in context["cl"].result_list]
            # After a decision the focus goes to the following card (the last: to itself).
            for index, current in enumerate(cards):
                following = cards[index + 1] if index + 1 < len(cards) else current
                current["next"] = f"reason-{following['reason'].pk}"
            context["cards"] = cards
        return response

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # moderation goes through hide and restore, which are logged

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _moderate(self, request: HttpRequest, queryset: QuerySet, action: str) -> int:
        mine = queryset.filter(poll__in=Poll.objects.organised_by(request.user).values("pk"))
        return moderate_reasons(reasons=mine, action=action, moderator=request.user)

    @admin.action(description=gettext_lazy("Hide the selected reasons"))
    def hide(self, request: HttpRequest, queryset: QuerySet[Reason]) -> None:
        changed = self._moderate(request, queryset, ModerationDecision.Action.HIDE)
        messages.success(request, moderated_message(ModerationDecision.Action.HIDE, changed))

    @admin.action(description=gettext_lazy("Keep the selected reasons (show them)"))
    def restore(self, request: HttpRequest, queryset: QuerySet[Reason]) -> None:
        changed = self._moderate(request, queryset, ModerationDecision.Action.RESTORE)
        messages.success(request, moderated_message(ModerationDecision.Action.RESTORE, changed))

    def moderate_view(self, request: HttpRequest, reason_id: int, action: str) -> HttpResponse:
        reason = get_object_or_404(self.get_queryset(request), pk=reason_id)
        if request.method != "POST" or action not in ModerationDecision.Action.values:
            return HttpResponseRedirect(reverse("admin:surveys_reason_changelist"))
        changed = self._moderate(request, Reason.objects.filter(pk=reason.pk), action)
        if changed:
            messages.success(request, moderated_message(action, changed))
        else:
            messages.info(request, _("Nothing to change: the reason was already in that state."))
        back = request.META.get("HTTP_REFERER", "")
        if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
            back = reverse("admin:surveys_reason_changelist")
        # Keyboard users land on the next card instead of the top of the page.
        following = request.POST.get("next", "")
        if NEXT_CARD.match(following):
            back = back.split("#")[0] + "#" + following
        return HttpResponseRedirect(back)


def card(reason: Reason) -> dict[str, Any]:
    """What one card shows: the reason in full and everything needed to judge it."""
    option = reason.option
    short = localized(getattr(option, "short_label", None) or {}, get_language() or "en")
    buttons = []
    if reason.state != Reason.State.HIDDEN:
        buttons.append(("hide", _("Hide")))
    if reason.state == Reason.State.REPORTED:
        buttons.append(("restore", _("Keep")))
    if reason.state == Reason.State.HIDDEN:
        buttons.append(("restore", _("Show again")))
    participant = reason.participant
    return {
        "reason": reason,
        "option": short or localized(option.text, get_language() or "en"),
        "stance": reason.get_stance_display(),
        "arm": participant.get_arm_display() if participant.arm else "",
        "group": participant.group,
        "buttons": [
            (action, label, reverse("admin:surveys_reason_moderate", args=[reason.pk, action]))
            for action, label in buttons
        ],
    }


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
