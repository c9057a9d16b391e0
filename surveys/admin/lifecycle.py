"""A poll's lifecycle: draft, open, closed. Opening requires a passing readiness check."""

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from surveys.definition.readiness import check_poll
from surveys.models import Poll


class TransitionError(Exception):
    """The poll cannot move to the asked status; nothing was changed."""


# (from, to): what each move is called in the admin.
TRANSITIONS = {
    (Poll.Status.DRAFT, Poll.Status.OPEN): "open",
    (Poll.Status.OPEN, Poll.Status.CLOSED): "close",
    (Poll.Status.CLOSED, Poll.Status.OPEN): "reopen",
}
TARGETS = {name: target for (_, target), name in TRANSITIONS.items()}
DONE = {"open": "opened", "close": "closed", "reopen": "reopened"}


def change_status(*, poll_id: int, transition: str, by: Any) -> Poll:
    """Move a poll along its lifecycle (``open``, ``close`` or ``reopen``) under a row lock.

    ``by`` is the acting user: callers have checked they organise the poll.
    """
    if transition not in TARGETS:
        raise TransitionError(_("Unknown transition '%(name)s'.") % {"name": transition})
    with transaction.atomic():
        poll = Poll.objects.select_for_update().get(pk=poll_id)
        target = TARGETS[transition]
        if TRANSITIONS.get((poll.status, target)) != transition:
            refused = {
                "open": _("A %(status)s poll cannot be opened."),
                "close": _("A %(status)s poll cannot be closed."),
                "reopen": _("A %(status)s poll cannot be reopened."),
            }
            raise TransitionError(refused[transition] % {"status": poll.get_status_display()})
        if target == Poll.Status.OPEN:
            readiness = check_poll(poll)
            if not readiness.ready:
                titles = "; ".join(check.title for check in readiness.failing)
                raise TransitionError(
                    _("The poll is not ready to open: %(checks)s.") % {"checks": titles}
                )
        poll.status = target
        poll.save(update_fields=["status", "updated_at"])
    return poll
