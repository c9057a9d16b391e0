"""Who may do what with a poll in the admin: per-poll roles, not global model permissions.

Organisers are the users in ``Poll.organisers``: they manage everything about their polls.
Researchers hold a ``results.models.Grant`` for a poll: they read its results (and manage their
own API tokens in the results app), nothing else. Superusers see everything. A staff user who
is on no poll sees no poll and nothing that belongs to one.
"""

from typing import Any

from django.apps import apps
from django.db.models import Q, QuerySet

from surveys.models import Poll


def _grant_model() -> Any:
    # The researcher grants live in the results app; until they exist nobody is a researcher.
    try:
        return apps.get_model("results", "Grant")
    except LookupError:
        return None


def organised_polls(user: Any) -> QuerySet[Poll]:
    """Polls the user may manage: all for superusers, otherwise those they organise."""
    if not getattr(user, "is_active", False) or not user.is_staff:
        return Poll.objects.none()
    return Poll.objects.visible_to(user)


def result_polls(user: Any) -> QuerySet[Poll]:
    """Polls whose results the user may read: organised polls and polls granted to them."""
    if not getattr(user, "is_active", False) or not user.is_staff:
        return Poll.objects.none()
    if user.is_superuser:
        return Poll.objects.all()
    condition = Q(organisers=user)
    grant = _grant_model()
    if grant is not None:
        condition |= Q(pk__in=grant.objects.filter(user=user).values("poll"))
    return Poll.objects.filter(condition).distinct()


def can_organise(user: Any, poll: Poll | None) -> bool:
    """Whether the user manages this poll (or, with no poll, any poll at all)."""
    polls = organised_polls(user)
    return polls.exists() if poll is None else polls.filter(pk=poll.pk).exists()


def can_read_results(user: Any, poll: Poll) -> bool:
    return result_polls(user).filter(pk=poll.pk).exists()


def sees_contacts(user: Any, poll: Poll) -> bool:
    """Invitees' contact details are for the poll's own organisers only, superusers included."""
    return poll.organisers.filter(pk=user.pk).exists()
