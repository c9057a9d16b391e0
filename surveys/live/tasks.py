"""The moderator's clock: a task per (room, version) at the next due moment, and a beat
sweeper that ticks every room whose moment passed (a lost or late task, a restarted worker).

Both are idempotent: they lock the room and apply only what is due at that moment, and the
per-version task does nothing once the room has left the version it was queued for.
"""

import logging

from celery import shared_task
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from surveys.live import moderator
from surveys.live.models import Room

logger = logging.getLogger(__name__)
# Rooms one sweep handles at most (the rest wait for the next sweep, seconds later).
SWEEP_LIMIT = 500


@shared_task(name="live.run_due", ignore_result=True)
def run_due(room_id: int, version: int) -> int:
    """Apply what is due in the room if it is still at ``version``; returns the events sent."""
    return len(moderator.tick_room(room_id, version=version))


@shared_task(name="live.sweep", ignore_result=True)
def sweep() -> int:
    """Tick every open room with something due; returns how many rooms moved."""
    now = timezone.now()
    due = (
        Room.objects.exclude(state=Room.State.CLOSED)
        .filter(
            Q(deadline__lte=now)
            | Q(turn_deadline__lte=now)
            | Q(nudge_at__lte=now)
            | Q(state=Room.State.WAITING, deadline__isnull=True, slot__starts_at__lte=now)
        )
        .values_list("pk", flat=True)
        .order_by("pk")[:SWEEP_LIMIT]
    )
    moved = 0
    for room_id in due:
        with transaction.atomic():
            # Skip a room another process is ticking right now; the next sweep sees it again.
            room = (
                Room.objects.select_for_update(of=("self",), skip_locked=True)
                .select_related("slot", "turn_member")
                .filter(pk=room_id)
                .first()
            )
            if room is not None and moderator.tick(room, now=timezone.now()):
                moved += 1
    if moved:
        logger.info("live sweep moved %s rooms", moved)
    return moved
