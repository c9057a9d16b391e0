"""Moderation of participants' reasons: hide or restore, each decision logged with who and when."""

from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from surveys.models import ModerationDecision, Reason

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
