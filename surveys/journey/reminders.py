"""The one email reminder a waiting participant may ask for: when their second questionnaire
opens, a message with their return link, through Django's email backend.

The address is asked for only on the see-you page and kept apart from the answers in a
``ReminderAddress``. It is used once: the row is deleted in the same transaction that sends the
message, and also when the participant withdraws (cascade) or the poll closes.

Sending is safe under retries and several workers: each message is sent inside a transaction
that holds the address row with ``SELECT ... FOR UPDATE SKIP LOCKED`` and deletes it before
committing, so a second worker skips the row while the first sends and finds it gone after. A
worker killed between the mail server's acceptance and the commit would send it once more on
the next run: mail servers take no part in database transactions, so this is the one duplicate
possible (at least once, never lost).
"""

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from surveys.journey import tokens
from surveys.models import Participant, Poll, ReminderAddress, localized

logger = logging.getLogger(__name__)
# One run sends at most this many, so a run stays well inside the task's time limit; beat
# comes back a minute later for the rest.
BATCH = 200


@transaction.atomic
def save_address(*, participant_id: int, email: str, site: str) -> bool:
    """Keep ``email`` for the reminder of a participant who waits for their T2 (replacing an
    address given before); False, storing nothing, for anyone not waiting."""
    participant = Participant.objects.select_for_update().filter(pk=participant_id).first()
    if participant is None or participant.step != Participant.Step.WAIT:
        return False
    ReminderAddress.objects.update_or_create(
        participant=participant,
        defaults={"poll_id": participant.poll_id, "email": email, "site": site},
    )
    return True


def forget_address(*, participant_id: int) -> None:
    ReminderAddress.objects.filter(participant_id=participant_id).delete()


def forget_closed_polls() -> int:
    """Delete the addresses of polls that are no longer open (closing a poll in the admin
    deletes them at once; this catches a poll closed any other way). Returns how many."""
    deleted, _ = ReminderAddress.objects.exclude(poll__status=Poll.Status.OPEN).delete()
    return deleted


def _due(now: datetime) -> QuerySet[ReminderAddress]:
    """Addresses whose participant's T2 has opened by ``now``: at the poll's date, or its delay
    after the participant's own T1 (the same rule as ``surveys.definition.schedule``)."""
    opens = Coalesce(
        F("poll__t2_opens"),
        ExpressionWrapper(
            F("participant__t1_completed_at") + F("poll__t2_after"), output_field=DateTimeField()
        ),
    )
    return (
        ReminderAddress.objects.filter(poll__status=Poll.Status.OPEN)
        .alias(opens=opens)
        .filter(Q(opens__lte=now) | Q(opens__isnull=True))
    )


def _message(address: ReminderAddress) -> EmailMessage:
    participant = address.participant
    poll = address.poll
    language = participant.language if participant.language in poll.languages else "en"
    link = address.site.rstrip("/") + reverse(
        "surveys:return", args=[tokens.return_token(participant.public_id)]
    )
    with translation.override(language):
        # One line: a line break in a header would make the message unsendable, and every
        # later reminder would wait behind it.
        title = " ".join(localized(poll.title, language).split())
        subject = _("The second questionnaire is open: %(poll)s") % {"poll": title}
        body = "\n\n".join(
            [
                _("Hello,"),
                _(
                    "You asked us to remind you when the second questionnaire of “%(poll)s” "
                    "opens. It is open now. Your personal link brings you back to your place:"
                )
                % {"poll": title},
                link,
                _(
                    "Please do not forward this email: anyone with the link can answer in your "
                    "name. The same link lets you withdraw from the poll."
                ),
                _(
                    "We have now deleted your email address: this is the only message you will "
                    "get from us."
                ),
            ]
        )
    return EmailMessage(subject=subject, body=body, to=[address.email])


class ReminderNotSent(Exception):
    """Sending the reminder of address ``pk`` failed; the address is kept for a later run."""

    def __init__(self, pk: int) -> None:
        super().__init__(pk)
        self.pk = pk


def send_one(now: datetime, *, skip: frozenset[int] = frozenset()) -> bool:
    """Send one due reminder (not one of ``skip``), or delete one that is no longer needed (the
    participant came back on their own); False when none is left to handle. Raises
    ``ReminderNotSent`` when the mail server refuses it (nothing changes then)."""
    with transaction.atomic():
        address = (
            _due(now)
            .exclude(pk__in=skip)
            .select_related("participant", "poll")
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("pk")
            .first()
        )
        if address is None:
            return False
        if address.participant.step == Participant.Step.WAIT:
            # Sent while the row is locked and deleted before the commit: see the module's note.
            try:
                _message(address).send()
            except Exception as error:
                raise ReminderNotSent(address.pk) from error
        address.delete()
    return True


# After this many failures in a row the mail server is taken to be down until the next run.
FAILURES_IN_A_ROW = 3


@shared_task(
    name="surveys.reminders.send_due_reminders",
    acks_late=True,
    ignore_result=True,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
)
def send_due_reminders() -> int:
    """Beat's task: forget the addresses of closed polls, then send the reminders that are due.
    Returns how many due addresses were handled. Safe to run twice at once or again after a
    failure: each address is handled by one transaction that deletes it. An address the mail
    server refuses stays for the next run without holding back the others."""
    forget_closed_polls()
    now = timezone.now()
    handled, in_a_row = 0, 0
    failed: set[int] = set()
    while handled < BATCH and in_a_row < FAILURES_IN_A_ROW:
        try:
            if not send_one(now, skip=frozenset(failed)):
                break
        except ReminderNotSent as error:
            logger.warning("a reminder could not be sent; it stays for the next run", exc_info=True)
            failed.add(error.pk)
            in_a_row += 1
            continue
        handled += 1
        in_a_row = 0
    return handled
