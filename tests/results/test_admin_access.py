"""The admin writes researcher access through the same functions as the API and commands:
webhook addresses are checked and keyed, token lifetimes bounded, secrets shown once on the page
that creates them (never in the messages cookie), and list filters name only one's own polls."""

import re
import secrets
import socket
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from results.models import ApiToken, ExportJob, Grant, ResultSnapshot, Webhook
from surveys.journey.tokens import hash_token
from tests.factories import make_poll
from tests.surveys.admin_fixtures import client_for, staff

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


def form_key() -> str:
    """The random key an add form carries (the admin puts a fresh one in each form)."""
    return secrets.token_urlsafe(24)


def token_form(name: str, days: int, once: str | None = None) -> dict[str, str]:
    """The admin's add form of an API token, expiring ``days`` from now at noon."""
    expires = timezone.now() + timedelta(days=days)
    return {
        "name": name,
        "expires_at_0": expires.strftime("%Y-%m-%d"),
        "expires_at_1": "12:00:00",
        "once": once or form_key(),
    }


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
        {"poll": poll.pk, "url": url, "active": "on", "once": form_key()},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "address" in form_errors(response) or "https" in form_errors(response)
    assert not Webhook.objects.exists()


def test_admin_webhook_gets_a_key_shown_once_on_the_creating_page(public_dns):
    poll = make_poll(slug="mine")
    client = client_for(staff("org", polls=(poll,)))
    response = client.post(
        reverse("admin:results_webhook_add"),
        {
            "poll": poll.pk,
            "url": "https://hooks.example.test/in",
            "active": "on",
            "once": form_key(),
        },
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
    response = client.post(reverse("admin:results_apitoken_add"), token_form("notebook", 30))
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
    response = client.post(reverse("admin:results_apitoken_add"), token_form("forever", 3650))
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
    from results.access import grant_access
    from results.exports import package

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


@pytest.mark.parametrize("model", ["webhookdelivery", "exportjob", "resultsnapshot"])
def test_records_written_by_the_system_have_no_add_form(model):
    """The add forms were offered and a POST failed with a 500 (IntegrityError, no poll)."""
    from results.models import WebhookDelivery

    poll = make_poll(slug="mine")
    client = client_for(staff("org", polls=(poll,)))
    add = reverse(f"admin:results_{model}_add")
    assert add not in client.get(reverse("admin:index")).content.decode()
    assert add not in client.get(reverse(f"admin:results_{model}_changelist")).content.decode()
    assert client.get(add).status_code == 403
    response = client.post(add, {"poll": poll.pk, "format": "csv-long", "event": "x"})
    assert response.status_code == 403
    assert not (
        WebhookDelivery.objects.exists()
        or ExportJob.objects.exists()
        or ResultSnapshot.objects.exists()
    )


def add_page_key(client, url: str) -> str:
    page = client.get(url).content.decode()
    return re.search(r'name="once" value="([^"]+)"', page).group(1)


def test_resubmitting_the_token_form_does_not_create_a_second_token(client):
    """The secret page answers a POST: a reload used to issue another live token silently."""
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("me", is_staff=True))
    add = reverse("admin:results_apitoken_add")
    form = token_form("notebook", 30, once=add_page_key(client, add))
    first = client.post(add, form)
    assert re.search(r'value="dlb_', first.content.decode())
    replay = client.post(add, form)
    assert replay.status_code == 409
    page = replay.content.decode()
    assert "already created" in page and "shown once" in page
    assert "dlb_" not in page and 'id="secret-once"' not in page
    assert ApiToken.objects.count() == 1
    token = ApiToken.objects.get()
    assert reverse("admin:results_apitoken_change", args=[token.pk]) in page
    client.post(add, {**form, "once": add_page_key(client, add)})  # a new form: a new token
    assert ApiToken.objects.count() == 2


def test_a_token_form_with_an_error_can_be_corrected_and_sent_again(client):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("me", is_staff=True))
    add = reverse("admin:results_apitoken_add")
    form = {"name": "x", "expires_at_0": "2099-01-01", "expires_at_1": "12:00:00"}
    form["once"] = add_page_key(client, add)
    assert "365 days" in form_errors(client.post(add, form))
    expires = timezone.now() + timedelta(days=30)
    client.post(add, {**form, "expires_at_0": expires.strftime("%Y-%m-%d")})
    assert ApiToken.objects.count() == 1


def test_resubmitting_the_webhook_form_does_not_register_a_second_webhook(public_dns):
    poll = make_poll(slug="mine")
    client = client_for(staff("org", polls=(poll,)))
    add = reverse("admin:results_webhook_add")
    form = {"poll": poll.pk, "url": "https://hooks.example.test/in", "active": "on"}
    form["once"] = add_page_key(client, add)
    first = client.post(add, form)
    secret = Webhook.objects.get().secret
    assert secret in first.content.decode()
    replay = client.post(add, form)
    assert replay.status_code == 409 and secret not in replay.content.decode()
    assert Webhook.objects.count() == 1


def test_the_secret_page_has_no_inline_script_and_a_content_security_policy(client):
    """``onfocus="this.select()"`` was refused by the policy (no inline script)."""
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("me", is_staff=True))
    response = client.post(reverse("admin:results_apitoken_add"), token_form("notebook", 30))
    page = response.content.decode()
    assert 'id="secret-once"' in page
    assert not re.search(r"\son[a-z]+\s*=", page), re.search(r"\son[a-z]+\s*=.{0,40}", page)
    assert "script-src" in response["Content-Security-Policy"]
    assert "unsafe-inline" not in response["Content-Security-Policy"].split("script-src")[1]
    assert re.search(r'<script src="[^"]*results/admin/secret-once\.js"', page)
    from pathlib import Path

    from django.contrib.staticfiles import finders

    assert "select()" in Path(finders.find("results/admin/secret-once.js")).read_text()


def test_the_add_forms_explain_their_rules_and_list_the_webhook_events(public_dns):
    poll = make_poll(slug="mine")
    client = client_for(staff("org", polls=(poll,)))
    webhook_form = client.get(reverse("admin:results_webhook_add")).content.decode()
    assert 'type="checkbox" name="events" value="snapshot.ready"' in webhook_form
    assert 'type="checkbox" name="events" value="export.ready"' in webhook_form
    assert "443" in webhook_form and "public addresses" in webhook_form
    token_form = client.get(reverse("admin:results_apitoken_add")).content.decode()
    assert "In UTC" in token_form and "365 days" in token_form
    # ``null`` used to be accepted silently as "all events"; a name that is no event is refused.
    add = reverse("admin:results_webhook_add")
    base = {"poll": poll.pk, "url": "https://hooks.example.test/in", "active": "on"}
    refused = client.post(add, {**base, "events": "null", "once": form_key()})
    assert "events" in refused.context["adminform"].form.errors
    assert not Webhook.objects.exists()
    client.post(add, {**base, "events": ["export.ready"], "once": form_key()})
    assert Webhook.objects.get().events == ["export.ready"]
    client.post(add, {**base, "once": form_key()})
    assert Webhook.objects.last().events == []  # none ticked: all events


def test_the_webhook_change_form_needs_no_form_key_and_keeps_the_address(public_dns):
    poll = make_poll(slug="mine")
    client = client_for(staff("org", polls=(poll,)))
    webhook = Webhook.objects.create(
        poll=poll, url="https://hooks.example.test/in", secret=secrets.token_hex(32)
    )
    change = reverse("admin:results_webhook_change", args=[webhook.pk])
    assert 'name="once"' not in client.get(change).content.decode()
    response = client.post(change, {"events": ["snapshot.ready"], "url": "https://evil.test/"})
    assert response.status_code == 302
    webhook.refresh_from_db()
    assert webhook.events == ["snapshot.ready"] and not webhook.active
    assert webhook.url == "https://hooks.example.test/in"


def test_an_organiser_reaches_nothing_of_another_polls_results_records(public_dns):
    """Attack: the organiser of one poll opens, edits, deletes and revokes the results records
    of another poll by id, and posts complete, valid forms naming it."""
    from django.contrib.auth.models import User

    from results.models import ImportJob, WebhookDelivery

    mine = make_poll(slug="mine")
    theirs = make_poll(slug="theirs")
    researcher = User.objects.create_user("ana")
    records = {
        "resultsnapshot": ResultSnapshot.objects.create(
            poll=theirs, fingerprint="f", code_version="t", payload={}
        ),
        "grant": Grant.objects.create(user=researcher, poll=theirs, level="microdata"),
        "webhook": (
            webhook := Webhook.objects.create(
                poll=theirs, url="https://hooks.example.test/x", secret=secrets.token_hex(32)
            )
        ),
        "webhookdelivery": WebhookDelivery.objects.create(
            webhook=webhook, event="snapshot.ready", payload={"x": 1}
        ),
        "exportjob": ExportJob.objects.create(poll=theirs, user=researcher, format="csv-long"),
        "importjob": ImportJob.objects.create(poll=theirs, user=researcher, size=1),
    }
    client = client_for(staff("org", polls=(mine,)))
    for model, record in records.items():
        change = client.get(reverse(f"admin:results_{model}_change", args=[record.pk]))
        # Django's admin answers an object outside the user's rows by sending them home.
        assert change.status_code in {302, 403, 404}, model
        assert "theirs" not in change.content.decode()
        client.post(reverse(f"admin:results_{model}_delete", args=[record.pk]), {"post": "yes"})
        assert type(record).objects.filter(pk=record.pk).exists(), model
    client.post(
        reverse("admin:results_grant_changelist"),
        {"action": "revoke", "_selected_action": [records["grant"].pk]},
    )
    client.post(
        reverse("admin:results_grant_change", args=[records["grant"].pk]),
        {"level": "aggregates"},
    )
    assert Grant.objects.get(pk=records["grant"].pk).level == "microdata"
    added = client.post(
        reverse("admin:results_grant_add"),
        {"user": researcher.pk, "poll": theirs.pk, "level": "microdata", "can_import": "on"},
    )
    assert added.status_code == 200 and "poll" in added.context["adminform"].form.errors
    hooked = client.post(
        reverse("admin:results_webhook_add"),
        {
            "poll": theirs.pk,
            "url": "https://hooks.example.test/mine",
            "events": ["snapshot.ready"],
            "active": "on",
            "once": form_key(),
        },
    )
    assert hooked.status_code == 200 and "poll" in hooked.context["adminform"].form.errors
    assert Grant.objects.count() == 1 and Webhook.objects.count() == 1
    for name, args in (
        ("surveys_poll_results", [theirs.pk]),
        ("surveys_poll_job", [theirs.pk, "0" * 32]),
    ):
        assert client.get(reverse(f"admin:{name}", args=args)).status_code == 404
    assert client.post(reverse("admin:surveys_poll_recompute", args=[theirs.pk])).status_code == 404


def test_an_organiser_cannot_rewrite_a_published_snapshot(django_user_model):
    """Attack: the organiser posts the snapshot's change form with a payload of their own (say,
    a small group's suppressed figures filled in). Snapshots are records of a computation: the
    admin shows them, never edits them."""
    from results.compute.recompute import recompute_poll
    from results.simulate import add_simulated_participants

    poll = make_poll(slug="mine")
    add_simulated_participants(poll=poll, n=10, seed=3)
    snapshot = recompute_poll(poll.pk)
    before = ResultSnapshot.objects.get(pk=snapshot.pk).payload
    client = client_for(staff("org", polls=(poll,)))
    url = reverse("admin:results_resultsnapshot_change", args=[snapshot.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'name="payload"' not in page.content.decode()
    forged = client.post(
        url,
        {
            "n_participants": 99,
            "n_treatment": 50,
            "n_control": 49,
            "settings": "{}",
            "payload": '{"items": [{"item": "rate_exit", "n_pairs": 1, "mean_t1": 7}]}',
        },
    )
    assert forged.status_code == 403
    after = ResultSnapshot.objects.get(pk=snapshot.pk)
    assert after.payload == before and after.n_participants == 10
