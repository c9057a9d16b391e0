"""Who may do what with a poll in the admin: per-poll roles, not global model permissions.

Organisers are the users in ``Poll.organisers``: they manage everything about their polls.
Researchers hold a ``results.models.Grant`` for a poll: they read its results (and manage their
own API tokens in the results app), nothing else. Superusers see everything. A staff user who
is on no poll sees no poll and nothing that belongs to one.

The poll sets themselves are named QuerySet methods, ``Poll.objects.organised_by(user)`` and
``Poll.objects.readable_by(user)``; these are the yes/no questions the admin asks of them.
"""

from typing import Any

from surveys.models import Poll


def can_organise(user: Any, poll: Poll | None) -> bool:
    """Whether the user manages this poll (or, with no poll, any poll at all)."""
    polls = Poll.objects.organised_by(user)
    return polls.exists() if poll is None else polls.filter(pk=poll.pk).exists()


def can_read_results(user: Any, poll: Poll) -> bool:
    return Poll.objects.readable_by(user).filter(pk=poll.pk).exists()
