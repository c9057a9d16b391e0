"""Invitations: hashed tokens, a CSV shown once, labels from a CSV, revocation and status."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from surveys.invitations import (
    InvitationError,
    create_invitations,
    invitation_counts,
    invitations_csv,
    read_invitees,
    revoke_invitations,
)
from surveys.models import Participant
from surveys.tokens import hash_token
from tests.factories import make_poll
from tests.surveys.test_admin_support import client_for, staff

pytestmark = pytest.mark.django_db


def test_invitations_store_only_the_hash_of_each_token() -> None:
    poll = make_poll()
    invitations = create_invitations(poll=poll, count=3)
    assert len({i.token for i in invitations}) == 3
    stored = set(Participant.objects.values_list("token_hash", flat=True))
    assert stored == {hash_token(i.token) for i in invitations}
    assert not any(i.token in stored for i in invitations)


def test_labels_and_contacts_come_from_a_csv_with_a_header() -> None:
    raw = b"Label;Contact\nAnna;anna@example.org\nBen;\n"
    invitees = read_invitees(raw)
    assert [(i.label, i.contact) for i in invitees] == [("Anna", "anna@example.org"), ("Ben", "")]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"name\nAnna\n", "needs a header row with a 'label' column"),
        (b"label\nAnna\n\xff\n", "not UTF-8"),
        (b"label,contact\nAnna,a@x.org\n,b@x.org\n", "row 3: the label is empty"),
        (b"label\n", "no rows below its header"),
    ],
)
def test_a_bad_csv_of_labels_is_refused_with_a_precise_error(raw: bytes, message: str) -> None:
    with pytest.raises(InvitationError, match=message):
        read_invitees(raw)


def test_the_links_csv_neutralises_formulas_and_never_carries_contacts() -> None:
    poll = make_poll()
    invitees = read_invitees(b"label,contact\n=HYPERLINK(1),x@example.org\n")
    invitations = create_invitations(poll=poll, invitees=invitees)
    rows = list(csv.reader(io.StringIO(invitations_csv(invitations, lambda t: f"/i/{t}/"))))
    assert rows[0] == ["label", "link"]
    assert rows[1] == ["'=HYPERLINK(1)", f"/i/{invitations[0].token}/"]
    assert "x@example.org" not in str(rows)


def test_a_closed_poll_refuses_new_invitations() -> None:
    poll = make_poll(status="closed")
    with pytest.raises(InvitationError, match="closed"):
        create_invitations(poll=poll, count=1)
    assert not Participant.objects.exists()


def test_revoking_spares_completed_invitations_and_counts_follow_status() -> None:
    poll = make_poll()
    create_invitations(poll=poll, count=4)
    first, second, third, _ = Participant.objects.order_by("pk")
    now = timezone.now()
    Participant.objects.filter(pk=first.pk).update(consented_at=now, completed_at=now)
    Participant.objects.filter(pk=second.pk).update(consented_at=now)
    assert (
        revoke_invitations(participants=Participant.objects.filter(pk__in=[first.pk, third.pk]))
        == 1
    )
    assert invitation_counts(poll) == {
        "total": 4,
        "not_started": 1,
        "in_progress": 1,
        "completed": 1,
        "revoked": 1,
    }


def test_the_admin_downloads_the_links_once_as_csv() -> None:
    poll = make_poll()
    client = client_for(staff("olga", polls=(poll,)))
    url = reverse("admin:surveys_poll_invitations", args=[poll.pk])
    upload = SimpleUploadedFile("labels.csv", b"label\nAnna\nBen\n", content_type="text/csv")
    response = client.post(url, {"labels": upload})
    assert response["Content-Type"].startswith("text/csv")
    assert "no-store" in response["Cache-Control"]
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["label"] for row in rows] == ["Anna", "Ben"]
    token = rows[0]["link"].rstrip("/").rsplit("/", 1)[-1]
    assert rows[0]["link"].startswith("http://testserver/i/")
    assert Participant.objects.get(label="Anna").token_hash == hash_token(token)
    # The page afterwards shows the counts, never the links again.
    page = client.get(url).content.decode()
    assert token not in page and ">2</dd>" in page


def test_the_admin_refuses_a_request_without_number_or_labels_and_stores_nothing() -> None:
    poll = make_poll()
    client = client_for(staff("olga", polls=(poll,)))
    response = client.post(reverse("admin:surveys_poll_invitations", args=[poll.pk]), {})
    assert "Give a number of links or upload a CSV of labels." in response.content.decode()
    assert not Participant.objects.exists()


def test_the_invitation_list_shows_status_but_no_answers() -> None:
    poll = make_poll()
    create_invitations(poll=poll, count=2)
    client = client_for(staff("olga", polls=(poll,)))
    participant = Participant.objects.first()
    page = client.get(reverse("admin:surveys_participant_change", args=[participant.pk]))
    text = page.content.decode()
    assert "not started" in text
    assert "token_hash" not in text and participant.token_hash not in text
    assert "answer" not in text.lower().replace("answers", "")
