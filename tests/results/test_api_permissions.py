"""Every endpoint, walked as a granted researcher, as one without the grant, and anonymously."""

import secrets

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from results.compute.progress import create_job
from results.models import ExportJob, Webhook
from tests.results.api_fixtures import bearer

pytestmark = pytest.mark.django_db

POLL_GETS = [
    ("api:poll-detail", {}),
    ("api:poll-participants", {}),
    ("api:poll-answers", {}),
    ("api:poll-results", {}),
    *((f"api:results-{t}", {}) for t in ("items", "did", "gaps", "knowledge", "options")),
    ("api:results-small-groups", {}),
    ("api:poll-webhooks", {}),
]


def endpoints(poll, job: ExportJob, webhook: Webhook) -> list[tuple[str, str, dict]]:
    def url(name: str, **kwargs) -> str:
        return reverse(name, kwargs={"slug": poll.slug, **kwargs})

    return [
        *(("get", url(name, **kwargs), {}) for name, kwargs in POLL_GETS),
        ("get", url("api:poll-export") + "?format=csv-long", {}),
        # No format: the grant is checked before the parameters, or a 400 tells the poll exists.
        ("get", url("api:poll-export"), {}),
        ("get", url("api:poll-participants") + "?arm=nonsense", {}),
        ("get", url("api:export-job", pk=job.pk), {}),
        ("get", url("api:webhook", pk=webhook.pk), {}),
        ("get", url("api:webhook-deliveries", pk=webhook.pk), {}),
        ("post", url("api:poll-webhooks"), {"url": "https://example.org/hook"}),
        ("post", url("api:poll-import"), {}),
        ("post", url("api:poll-recompute"), {}),
        ("get", url("api:recompute-status", job_id=create_job(poll.pk)), {}),
        ("delete", url("api:webhook", pk=webhook.pk), {}),
    ]


@pytest.fixture
def targets(poll, snapshot, django_user_model):
    owner = django_user_model.objects.create_user("owner")
    job = ExportJob.objects.create(poll=poll, user=owner, format="csv-long")
    webhook = Webhook.objects.create(
        poll=poll, url="https://example.org/h", secret=secrets.token_hex(32)
    )
    return endpoints(poll, job, webhook)


def call(client: APIClient, method: str, url: str, data: dict):
    return getattr(client, method)(url, data, format="multipart" if "import" in url else "json")


def test_anonymous_requests_are_refused_with_401_everywhere(targets):
    client = APIClient()
    assert client.get(reverse("api:poll-list")).status_code == 401
    for method, url, data in targets:
        response = call(client, method, url, data)
        assert response.status_code == 401, (method, url)
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_researcher_without_the_grant_gets_404_everywhere_and_an_empty_poll_list(
    targets, outsider, poll
):
    listing = outsider.get(reverse("api:poll-list"))
    assert listing.status_code == 200
    assert listing.json()["results"] == []
    for method, url, data in targets:
        response = call(outsider, method, url, data)
        assert response.status_code == 404, (method, url, response.content[:200])


def test_granted_researcher_reaches_every_endpoint(targets, researcher, poll, django_user_model):
    Webhook.objects.update(created_by=django_user_model.objects.get(username="granted"))
    listing = researcher.get(reverse("api:poll-list"))
    assert [p["slug"] for p in listing.json()["results"]] == [poll.slug]
    expected = {"get": {200}, "post": {201, 202, 400}, "delete": {204}}
    for method, url, data in targets:
        if url.endswith(("/export/", "?arm=nonsense")):
            assert call(researcher, method, url, data).status_code == 400
            continue
        response = call(researcher, method, url, data)
        assert response.status_code in expected[method], (method, url, response.content[:300])


def test_grant_without_import_right_gets_403_on_import(poll, make_researcher):
    _, secret = make_researcher("reader", polls=(poll,))
    response = bearer(secret).post(reverse("api:poll-import", kwargs={"slug": poll.slug}), {})
    assert response.status_code == 403


def test_superuser_token_sees_every_poll(poll, django_user_model):
    from results.access import issue_api_token

    admin = django_user_model.objects.create_superuser("root", password="x-unused")
    client = bearer(issue_api_token(user=admin, name="t").secret)
    slugs = [p["slug"] for p in client.get(reverse("api:poll-list")).json()["results"]]
    assert slugs == [poll.slug]


def test_each_token_is_throttled_on_its_own(researcher, outsider, settings):
    from django.core.cache import cache

    cache.clear()
    settings.API_TOKEN_RATE = "3/min"
    url = reverse("api:poll-list")
    assert [researcher.get(url).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert outsider.get(url).status_code == 200
    cache.clear()


def test_recompute_answers_202_with_a_status_url_that_reports_the_new_snapshot(
    researcher, poll, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = researcher.post(reverse("api:poll-recompute", kwargs={"slug": poll.slug}))
    assert response.status_code == 202
    status = researcher.get(response.json()["status_url"]).json()
    assert status["state"] in {"queued", "running", "done"}
    if status["state"] == "done":
        assert status["snapshot_id"] and status["results_url"]


# Recompute too: its progress would tell the size of a snapshot not yet released.
MICRODATA = ("/participants/", "/answers/", "/export/", "/exports/", "/import/", "/recompute/")


def assert_aggregates_only(client: APIClient, targets: list[tuple[str, str, dict]]) -> None:
    """Every aggregate endpoint answers; each of the nine microdata ones is a 403 that says so."""
    seen_microdata = 0
    for method, url, data in targets:
        response = call(client, method, url, data)
        if any(part in url for part in MICRODATA):
            seen_microdata += 1
            assert response.status_code == 403, (method, url, response.content[:200])
            assert "aggregate results only" in response.json()["detail"]
        else:
            assert response.status_code in {200, 201, 202, 204, 400}, (method, url)
    assert seen_microdata == 9


def test_aggregates_grant_reaches_results_but_gets_403_on_every_microdata_endpoint(
    targets, poll, make_researcher
):
    user, secret = make_researcher("aggregates-only", polls=(poll,), level="aggregates")
    Webhook.objects.update(created_by=user)  # their own: an aggregates grant may have webhooks
    client = bearer(secret)
    assert_aggregates_only(client, targets)
    assert client.get(reverse("api:results-items", kwargs={"slug": poll.slug})).json()["rows"]


def test_a_new_grant_gives_aggregates_only_by_default(poll, django_user_model):
    from results.access import grant_access

    user = django_user_model.objects.create_user("new")
    assert grant_access(user=user, poll=poll).level == "aggregates"


def test_a_researcher_sees_and_manages_only_the_webhooks_they_registered(poll, make_researcher):
    """An aggregates-level researcher used to list everyone's webhook URLs (with the secrets in
    their paths), delete them (204) and read their delivery logs."""
    from results.models import WebhookDelivery

    owner, _ = make_researcher("owner", polls=(poll,))
    theirs = Webhook.objects.create(
        poll=poll,
        url="https://hooks.example.org/mic-secret-path?key=abc",
        secret=secrets.token_hex(32),
        created_by=owner,
    )
    WebhookDelivery.objects.create(webhook=theirs, event="export.ready", payload={"x": 1})
    _, secret = make_researcher("snoop", polls=(poll,), level="aggregates")
    snoop = bearer(secret)

    def url(name: str, **kwargs) -> str:
        return reverse(name, kwargs={"slug": poll.slug, **kwargs})

    listing = snoop.get(url("api:poll-webhooks"))
    assert listing.status_code == 200 and listing.json() == []
    assert "mic-secret-path" not in listing.content.decode()
    assert snoop.get(url("api:webhook", pk=theirs.pk)).status_code == 404
    assert snoop.get(url("api:webhook-deliveries", pk=theirs.pk)).status_code == 404
    assert snoop.delete(url("api:webhook", pk=theirs.pk)).status_code == 404
    assert Webhook.objects.filter(pk=theirs.pk).exists()
    # An aggregates grant may register its own (snapshot events carry metadata only).
    created = snoop.post(
        url("api:poll-webhooks"), {"url": "https://1.1.1.1/mine"}, format="json"
    ).json()
    assert [w["id"] for w in snoop.get(url("api:poll-webhooks")).json()] == [created["id"]]
    assert snoop.delete(url("api:webhook", pk=created["id"])).status_code == 204


def organiser_client(django_user_model, poll, name: str = "organiser") -> tuple[object, APIClient]:
    """A staff organiser of ``poll`` (no grant) with an API token of their own."""
    from results.access import issue_api_token

    user = django_user_model.objects.create_user(name, is_staff=True)
    poll.organisers.add(user)
    return user, bearer(issue_api_token(user=user, name="t").secret)


def test_an_organiser_of_another_poll_gets_404_everywhere(targets, django_user_model):
    from tests.factories import make_poll

    _, client = organiser_client(django_user_model, make_poll(slug="their-own"))
    listed = client.get(reverse("api:poll-list")).json()["results"]
    assert [row["slug"] for row in listed] == ["their-own"]
    for method, url, data in targets:
        response = call(client, method, url, data)
        assert response.status_code == 404, (method, url, response.content[:200])


def test_an_organiser_reads_no_more_through_the_api_than_an_aggregates_grant(
    targets, poll, snapshot, django_user_model
):
    """The organiser's own poll: the latest released snapshot, and 403 on every microdata
    endpoint (answers, participants, exports, import, recompute and its progress)."""
    from results.models import ResultSnapshot

    user, client = organiser_client(django_user_model, poll)
    Webhook.objects.update(created_by=user)
    ResultSnapshot.objects.create(
        poll=poll, n_participants=25, fingerprint="e" * 64, code_version="test", payload={}
    )  # newer, not released
    assert_aggregates_only(client, targets)
    results = client.get(reverse("api:poll-results", kwargs={"slug": poll.slug})).json()
    assert (results["id"], results["n_participants"]) == (snapshot.pk, 24)


def test_an_organiser_taken_off_the_staff_reads_nothing_through_the_api(
    targets, poll, snapshot, django_user_model
):
    """Organising is an admin role: the staff flag removed, a token issued before reaches
    neither the poll list nor any endpoint of the poll they are still listed on."""
    user, client = organiser_client(django_user_model, poll)
    assert client.get(reverse("api:poll-results", kwargs={"slug": poll.slug})).status_code == 200
    user.is_staff = False
    user.save(update_fields=["is_staff"])
    assert client.get(reverse("api:poll-list")).json()["results"] == []
    for method, url, data in targets:
        response = call(client, method, url, data)
        assert response.status_code == 404, (method, url, response.content[:200])


def test_a_revoked_grant_reaches_nothing_of_the_poll(targets, poll, make_researcher):
    from results.access import revoke_grant
    from results.models import Grant

    user, secret = make_researcher("revoked", polls=(poll,), can_import=True)
    Webhook.objects.update(created_by=user)
    revoke_grant(grant=Grant.objects.get(user=user, poll=poll))
    client = bearer(secret)
    assert client.get(reverse("api:poll-list")).json()["results"] == []
    for method, url, data in targets:
        response = call(client, method, url, data)
        assert response.status_code == 404, (method, url, response.content[:200])


def test_a_recompute_of_another_poll_is_not_found_through_ones_own_poll(
    researcher, poll, make_researcher
):
    """A microdata researcher of one poll holding the job id of another poll's recompute (still
    running, so no snapshot to check yet) must not follow its progress through their poll."""
    from tests.factories import make_poll

    other = make_poll(slug="another")
    job_id = create_job(other.pk)
    url = reverse("api:recompute-status", kwargs={"slug": poll.slug, "job_id": job_id})
    assert researcher.get(url).status_code == 404
    own = reverse("api:recompute-status", kwargs={"slug": poll.slug, "job_id": create_job(poll.pk)})
    assert researcher.get(own).status_code == 200
