"""Personal invitation links: made in bulk, shown once, stored only as hashes.

A link's token exists in memory while the organiser's CSV is written and nowhere after: the
database keeps its SHA-256 (``surveys.journey.tokens.hash_token``) on a new, untouched Participant.
"""

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from surveys.journey.tokens import hash_token, new_token
from surveys.models import Participant, Poll

MAX_INVITATIONS = 10_000
MAX_LABEL = Participant._meta.get_field("label").max_length
MAX_CONTACT = Participant._meta.get_field("contact").max_length
# Spreadsheet programs run cells starting with these as formulas.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class InvitationError(Exception):
    """The request cannot be fulfilled as given; nothing was stored."""


@dataclass(frozen=True)
class Invitation:
    label: str
    token: str


@dataclass(frozen=True)
class Invitee:
    label: str
    contact: str = ""


def read_invitees(raw: bytes) -> list[Invitee]:
    """Parse a CSV of labels (column ``label``, optional ``contact``) with row-precise errors."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvitationError("The CSV file is not UTF-8 text.") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    columns = [name.strip().lower() for name in reader.fieldnames or []]
    if "label" not in columns:
        raise InvitationError("The CSV file needs a header row with a 'label' column.")
    reader.fieldnames = columns
    invitees = []
    for row in reader:
        label = (row.get("label") or "").strip()
        contact = (row.get("contact") or "").strip()
        where = f"row {reader.line_num}"
        if not label:
            raise InvitationError(f"{where}: the label is empty.")
        if len(label) > MAX_LABEL:
            raise InvitationError(f"{where}: the label is longer than {MAX_LABEL} characters.")
        if len(contact) > MAX_CONTACT:
            raise InvitationError(f"{where}: the contact is longer than {MAX_CONTACT} characters.")
        invitees.append(Invitee(label=label, contact=contact))
    if not invitees:
        raise InvitationError("The CSV file has no rows below its header.")
    return invitees


def create_invitations(
    *, poll: Poll, count: int | None = None, invitees: list[Invitee] | None = None
) -> list[Invitation]:
    """Create one invitation per invitee (or ``count`` unlabelled ones); returns the tokens.

    The returned tokens are the only copy: hand them to the organiser once and drop them.
    """
    if invitees is None:
        if not count or count < 1:
            raise InvitationError("Ask for at least one invitation.")
        invitees = [Invitee(label="") for _ in range(count)]
    if len(invitees) > MAX_INVITATIONS:
        raise InvitationError(f"At most {MAX_INVITATIONS} invitations at a time.")
    if poll.status == Poll.Status.CLOSED:
        raise InvitationError("The poll is closed: reopen it before inviting more people.")
    invitations = [Invitation(label=invitee.label, token=new_token()) for invitee in invitees]
    with transaction.atomic():
        Participant.objects.bulk_create(
            Participant(
                poll=poll,
                token_hash=hash_token(invitation.token),
                label=invitee.label,
                contact=invitee.contact,
            )
            for invitation, invitee in zip(invitations, invitees, strict=True)
        )
    return invitations


def neutralise(text: str) -> str:
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def invitations_csv(invitations: Iterable[Invitation], link: Callable[[str], str]) -> str:
    """The links as CSV (label, link): the one time they can be seen. Contacts never leave."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["label", "link"])
    for invitation in invitations:
        writer.writerow([neutralise(invitation.label), link(invitation.token)])
    return out.getvalue()


def revoke_invitations(*, participants: Any) -> int:
    """Revoke unused invitations (already completed ones stay valid records); returns the count."""
    with transaction.atomic():
        return participants.filter(
            token_hash__isnull=False, revoked_at__isnull=True, completed_at__isnull=True
        ).update(revoked_at=timezone.now())


NOT_STARTED = Q(consented_at__isnull=True)
IN_PROGRESS = Q(consented_at__isnull=False, completed_at__isnull=True)
COMPLETED = Q(completed_at__isnull=False)


def invitation_counts(poll: Poll) -> dict[str, int]:
    """How many invitations are not started, in progress, completed and revoked."""
    live = Q(revoked_at__isnull=True)
    return (
        Participant.objects.filter(poll=poll)
        .invited()
        .aggregate(
            total=Count("pk"),
            not_started=Count("pk", filter=NOT_STARTED & live),
            in_progress=Count("pk", filter=IN_PROGRESS & live),
            completed=Count("pk", filter=COMPLETED),
            revoked=Count("pk", filter=Q(revoked_at__isnull=False) & ~COMPLETED),
        )
    )


def invitation_status(participant: Participant) -> str:
    if participant.completed_at:
        return "completed"
    if participant.revoked_at:
        return "revoked"
    if participant.consented_at:
        return "in progress"
    return "not started"


def returning_participant(token: str) -> Participant | None:
    """The participant of a return link (see ``surveys.journey.tokens.return_token``); unknown and
    revoked links give None, which the view answers with the invitations' one 404."""
    return (
        Participant.objects.filter(return_token_hash=hash_token(token), revoked_at__isnull=True)
        .select_related("poll")
        .first()
    )
