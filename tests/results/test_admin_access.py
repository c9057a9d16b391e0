"""The admin writes researcher access through the same functions as the API and commands:
webhook addresses are checked and keyed, token lifetimes bounded, secrets shown once on the page
that creates them (never in the messages cookie), and list filters name only one's own polls."""

import re
import socket
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from results.models import ApiToken, ExportJob, Grant, ResultSnapshot, Webhook
from surveys.tokens import hash_token
from tests.factories import make_poll
from tests.surveys.test_admin_support import client_for, staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def public_dns(monkeypatch):
    """hooks.example.test resolves to a public address (the sandbox has no DNS)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "hooks.example.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def form_errors(response) -> str:
    return " ".join(str(e) for e in response.context["adminform"].form.errors.values())


def messages_of(client) -> str:
    return client.cookies.get("messages").value if "messages" in client.cookies else ""


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.5/", "https://10.0.0.5/", "https://169.254.169.254/", "https://localhost/"],
)
def test_admin_refuses_a_webhook_to_an_internal_address(url):
    poll = make_poll(slug="mine")
    client = client_for(staff("org", polls=(poll,)))
    response = client.post(
        reverse("admin:results_webhook_add"),
        {"poll": poll.pk, "url": url, "events": "[]", "active": "on"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "address" in form_errors(response) or "https" in form_errors(response)
    assert not Webhook.objects.exists()


def test_admin_webhook_gets_a_key_shown_once_on_the_creating_page(public_dns):
    poll = make_poll(slug="mine")
    client = client_for(staff("org", polls=(poll,)))
    response = client.post(
        reverse("admin:results_webhook_add"),
        {"poll": poll.pk, "url": "https://hooks.example.test/in", "events": "[]", "active": "on"},
    )
    assert response.status_code == 200
    assert "adminform" not in response.context, form_errors(response)
    webhook = Webhook.objects.get()
    assert re.fullmatch(r"[0-9a-f]{64}", webhook.secret)
    assert webhook.created_by.username == "org"
    assert webhook.secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert webhook.secret not in messages_of(client)
    change = client.get(reverse("admin:results_webhook_change", args=[webhook.pk]))
    assert change.status_code == 200 and webhook.secret not in change.content.decode()


def test_admin_creates_a_token_and_shows_the_secret_once_on_the_page_not_in_a_message(client):
    from django.contrib.auth.models import User

    mine = User.objects.create_user("me", is_staff=True)
    client.force_login(mine)
    expires = timezone.now() + timedelta(days=30)
    response = client.post(
        reverse("admin:results_apitoken_add"),
        {
            "name": "notebook",
            "expires_at_0": expires.strftime("%Y-%m-%d"),
            "expires_at_1": "12:00:00",
        },
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(user=mine)
    secret = re.search(r'value="(dlb_[^"]+)"', response.content.decode()).group(1)
    assert token.token_hash == hash_token(secret)
    assert secret not in messages_of(client)
    assert not list(response.context["messages"])
    change = client.get(reverse("admin:results_apitoken_change", args=[token.pk]))
    assert secret not in change.content.decode()


def test_admin_refuses_a_token_that_would_live_longer_than_a_year(client):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("me", is_staff=True))
    expires = timezone.now() + timedelta(days=3650)
    response = client.post(
        reverse("admin:results_apitoken_add"),
        {
            "name": "forever",
            "expires_at_0": expires.strftime("%Y-%m-%d"),
            "expires_at_1": "12:00:00",
        },
    )
    assert response.status_code == 200
    assert "365 days" in form_errors(response)
    assert not ApiToken.objects.exists()


def test_admin_revoke_action_revokes_through_the_shared_function(client):
    from django.contrib.auth.models import User

    from results.access import issue_api_token

    mine = User.objects.create_user("me", is_staff=True)
    issued = issue_api_token(user=mine, name="t")
    client.force_login(mine)
    client.post(
        reverse("admin:results_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [issued.token.pk]},
    )
    assert ApiToken.objects.get().revoked_at is not None
    assert not ApiToken.objects.active().exists()


def test_admin_grant_is_aggregates_by_default_and_import_needs_microdata():
    from django.contrib.auth.models import User

    poll = make_poll(slug="mine")
    organiser = staff("org", polls=(poll,))
    researcher = User.objects.create_user("ana")
    client = client_for(organiser)
    refused = client.post(
        reverse("admin:results_grant_add"),
        {"user": researcher.pk, "poll": poll.pk, "level": "aggregates", "can_import": "on"},
    )
    assert refused.status_code == 200 and "microdata" in form_errors(refused)
    assert not Grant.objects.exists()
    page = client.get(reverse("admin:results_grant_add"))
    assert 'value="aggregates" selected' in page.content.decode()
    client.post(
        reverse("admin:results_grant_add"),
        {"user": researcher.pk, "poll": poll.pk, "level": "aggregates"},
    )
    grant = Grant.objects.get()
    assert grant.level == "aggregates" and grant.granted_by == organiser


def test_admin_revoking_a_grant_ends_its_export_links(django_user_model):
    from results import package
    from results.access import grant_access

    poll = make_poll(slug="mine")
    client = client_for(staff("org", polls=(poll,)))
    researcher = django_user_model.objects.create_user("ana")
    grant = grant_access(user=researcher, poll=poll, level="microdata")
    job = ExportJob.objects.create(poll=poll, user=researcher, format="csv-long", state="done")
    assert package.link_still_granted(job)
    client.post(reverse("admin:results_grant_delete", args=[grant.pk]), {"post": "yes"})
    assert not Grant.objects.exists()
    assert not package.link_still_granted(job)


@pytest.mark.parametrize("model", ["resultsnapshot", "grant", "webhook"])
def test_admin_poll_filters_list_only_the_organisers_own_polls(model, django_user_model):
    import secrets

    mine = make_poll(slug="mine-poll")
    also_mine = make_poll(slug="also-mine")
    theirs = make_poll(slug="their-secret-poll")
    researcher = django_user_model.objects.create_user("ana")
    for poll in (mine, also_mine, theirs):
        ResultSnapshot.objects.create(poll=poll, fingerprint="f", code_version="t", payload={})
        Grant.objects.create(user=researcher, poll=poll)
        Webhook.objects.create(poll=poll, url="https://x.test/", secret=secrets.token_hex(32))
    client = client_for(staff("org", polls=(mine, also_mine)))
    page = client.get(reverse(f"admin:results_{model}_changelist")).content.decode()
    assert f"poll__id__exact={mine.pk}" in page and f"poll__id__exact={also_mine.pk}" in page
    assert "their-secret-poll" not in page and f"poll__id__exact={theirs.pk}" not in page
