"""The expert panel's published answers on the journey's wait page: what a participant who sat
in a live room reads before their second questionnaire (answers published after their room
closed reach them here, or on the page that ends the room)."""

from typing import Any

from django import template

from surveys.live.models import ExpertAnswer, RoomMember
from surveys.models import Participant

register = template.Library()


@register.inclusion_tag("live/wait_answers.html")
def panel_answers(participant: Participant | None, language: str) -> dict[str, Any]:
    """The answers for ``participant`` in ``language`` (none for a preview, the control arm,
    or whoever never sat in a room)."""
    if (
        participant is None
        or participant.pk is None
        or participant.arm != Participant.Arm.TREATMENT
        or not RoomMember.objects.filter(participant_id=participant.pk).exists()
    ):
        return {"answers": [], "shown": False}
    answers = list(
        ExpertAnswer.objects.filter(poll_id=participant.poll_id, published_at__isnull=False)
        .filter(language__in=["", language])
        .prefetch_related("questions")
        .order_by("published_at", "pk")
    )
    return {"answers": answers, "shown": True}
