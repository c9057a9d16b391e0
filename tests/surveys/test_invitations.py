"""Invitations: hashed tokens, a CSV shown once, labels from a CSV, revocation and status; a
valid link always admitted however many bad ones share its address, and tokens kept out of logs."""

import csv
import io
import logging
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from surveys.journey.access import FAILED_TOKEN_LIMIT, client_ip
from surveys.journey.invitations import (
    InvitationError,
    create_invitations,
    invitation_counts,
    invitations_csv,
    read_invitees,
    revoke_invitations,
)
from surveys.journey.tokens import RedactingGunicornLogger, hash_token, redact
from surveys.models import Participant
from tests.factories import make_poll
from tests.surveys.admin_fixtures import client_for, staff

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
    # The page itself, not the admin's navigation (which lists the live rooms' expert answers).
    content = text.split('id="content-start"', 1)[1]
    assert "answer" not in content.lower().replace("answers", "")


@pytest.fixture
def no_failures_counted() -> None:
    cache.clear()


@pytest.mark.usefixtures("no_failures_counted")
def test_a_valid_link_is_admitted_after_many_bad_ones_from_the_same_address() -> None:
    poll = make_poll(design={"access": "invitation"})
    (invitation,) = create_invitations(poll=poll, count=1)
    # Behind a TLS proxy every participant has the proxy's address: the guesser's too.
    shared = Client(REMOTE_ADDR="10.0.0.2")
    codes = [shared.get(f"/i/guess-{attempt}/").status_code for attempt in range(25)]
    assert codes[:FAILED_TOKEN_LIMIT] == [404] * FAILED_TOKEN_LIMIT
    assert set(codes[FAILED_TOKEN_LIMIT:]) == {429}
    response = shared.get(f"/i/{invitation.token}/")
    assert response.status_code == 302
    assert response["Location"] == f"/p/{poll.slug}/"
    assert invitation.token not in response["Location"]
    assert shared.get(response["Location"]).status_code == 200
    assert shared.get("/i/guess-again/").status_code == 429


@pytest.mark.usefixtures("no_failures_counted")
def test_behind_a_trusted_proxy_failures_count_per_client_and_the_header_cannot_be_forged(
    settings: Any,
) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    make_poll(design={"access": "invitation"})

    def via_proxy(forwarded_for: str) -> Client:
        return Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded_for)

    guesser = via_proxy("203.0.113.5")
    for attempt in range(FAILED_TOKEN_LIMIT):
        assert guesser.get(f"/i/guess-{attempt}/").status_code == 404
    assert guesser.get("/i/guess-again/").status_code == 429
    # The proxy appends the address it saw; what the client put before it counts for nothing.
    assert via_proxy("198.51.100.7, 203.0.113.5").get("/i/x/").status_code == 429
    assert via_proxy("198.51.100.7").get("/i/x/").status_code == 404
    # With no trusted proxy the header is the client's own invention and is ignored.
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(RequestFactory().get("/", HTTP_X_FORWARDED_FOR="1.2.3.4")) == "127.0.0.1"
    assert via_proxy("203.0.113.5").get("/i/x/").status_code == 404


@pytest.mark.usefixtures("no_failures_counted")
def test_tokens_never_reach_the_request_log(caplog: pytest.LogCaptureFixture) -> None:
    poll = make_poll(design={"access": "invitation"})
    (invitation,) = create_invitations(poll=poll, count=1)
    revoke_invitations(participants=Participant.objects.all())
    client = Client(REMOTE_ADDR="10.0.0.4")
    secrets = [invitation.token, *(f"Secret{n}Token" for n in range(FAILED_TOKEN_LIMIT + 1))]
    with caplog.at_level(logging.INFO):
        codes = {client.get(f"/i/{secret}/?lang=uk").status_code for secret in secrets}
    assert codes == {404, 429}
    lines = [record.getMessage() for record in caplog.records]
    assert "Not Found: /i/<token>/" in lines and "Too Many Requests: /i/<token>/" in lines
    assert not [line for line in lines if any(secret in line for secret in secrets)]


@pytest.mark.parametrize("path", ["/%69/{token}/", "/i%2F{token}/", "/I%2f{token}/?lang=uk"])
def test_percent_encoded_invitation_paths_are_redacted_too(path: str) -> None:
    token = "Q2hlY2tzdW0tc2VjcmV0LXRva2VuLXZhbHVlLXh5eg"
    line = f'"GET {path.format(token=token)} HTTP/1.1" 302'
    assert token not in redact(line)
    assert "<token>" in redact(line)


def test_tokens_never_reach_gunicorns_access_log() -> None:
    from gunicorn.config import Config
    from gunicorn.glogging import SafeAtoms

    logger = RedactingGunicornLogger(Config())
    token = "Q2hlY2tzdW0tc2VjcmV0LXRva2VuLXZhbHVlLXh5eg"
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/i/{token}/?lang=uk",
        "PATH_INFO": f"/i/{token}/",
        "QUERY_STRING": "lang=uk",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": f"https://polls.example/i/{token}/",
        "REMOTE_ADDR": "10.0.0.5",
    }
    request = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])
    response = SimpleNamespace(status="302 Found", headers=[("Location", "/p/x/")], sent=0)
    atoms = logger.atoms(response, request, environ, timedelta(milliseconds=3))
    line = logger.cfg.access_log_format % SafeAtoms(atoms)
    assert '"GET /i/<token>/?lang=uk HTTP/1.1" 302' in line
    assert token not in line and token not in str(atoms)
