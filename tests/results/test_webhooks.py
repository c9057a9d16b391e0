"""Webhooks: HMAC-signed POSTs to a local HTTP server, retries with backoff, a delivery log."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from results import webhooks
from results.models import ResultSnapshot, WebhookDelivery
from tests.results.api_fixtures import *  # noqa: F403
from tests.results.api_fixtures import sample_payload

pytestmark = pytest.mark.django_db


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.failures_left = 0


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((dict(self.headers), body))
            failing = state.failures_left > 0
            state.failures_left -= 1
            self.send_response(503 if failing else 204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def register(client, poll, url: str, events=None) -> dict:
    response = client.post(
        reverse("api:poll-webhooks", kwargs={"slug": poll.slug}),
        {"url": url, **({"events": events} if events else {})},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def new_snapshot(poll) -> ResultSnapshot:
    return ResultSnapshot.objects.create(
        poll=poll, fingerprint="a" * 64, code_version="t", payload=sample_payload()
    )


def test_new_snapshot_is_posted_signed_to_the_registered_endpoint(
    researcher, poll, receiver, django_capture_on_commit_callbacks
):
    state, url = receiver
    hook = register(researcher, poll, url)
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = new_snapshot(poll)
    assert len(state.requests) == 1
    headers, body = state.requests[0]
    assert headers["X-Deliberate-Event"] == "snapshot.ready"
    assert webhooks.verify(hook["secret"], headers["X-Deliberate-Signature"], body)
    assert not webhooks.verify("wrong-secret", headers["X-Deliberate-Signature"], body)
    assert not webhooks.verify(hook["secret"], headers["X-Deliberate-Signature"], body + b" ")
    message = json.loads(body)
    assert message["poll"] == poll.slug and message["data"]["snapshot_id"] == snapshot.pk
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "delivered" and delivery.response_status == 204


def test_failed_deliveries_are_retried_and_every_attempt_is_logged(
    researcher, poll, receiver, django_capture_on_commit_callbacks
):
    state, url = receiver
    state.failures_left = 2
    hook = register(researcher, poll, url, events=["snapshot.ready"])
    with django_capture_on_commit_callbacks(execute=True):
        new_snapshot(poll)
    assert len(state.requests) == 3
    log = researcher.get(
        reverse("api:webhook-deliveries", kwargs={"slug": poll.slug, "pk": hook["id"]})
    ).json()["results"]
    assert log[0]["state"] == "delivered" and log[0]["attempts"] == 3
    assert [a["status"] for a in log[0]["attempts_log"]] == [503, 503, 204]
    assert webhooks.backoff_seconds(1) < webhooks.backoff_seconds(2) < webhooks.backoff_seconds(3)


def test_delivery_gives_up_after_the_last_attempt(
    researcher, poll, receiver, django_capture_on_commit_callbacks
):
    state, url = receiver
    state.failures_left = 100
    register(researcher, poll, url)
    with django_capture_on_commit_callbacks(execute=True):
        new_snapshot(poll)
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "failed"
    assert delivery.attempts == webhooks.MAX_ATTEMPTS == len(state.requests)


def test_unsubscribed_events_are_not_sent(
    researcher, poll, receiver, django_capture_on_commit_callbacks
):
    state, url = receiver
    register(researcher, poll, url, events=["export.ready"])
    with django_capture_on_commit_callbacks(execute=True):
        new_snapshot(poll)
    assert state.requests == [] and not WebhookDelivery.objects.exists()


@pytest.mark.parametrize(
    "url",
    ["http://example.org/hook", "ftp://example.org/x", "https://user:pw@example.org/", "hook"],
)
def test_plain_http_is_refused_except_for_loopback(url):
    with pytest.raises(ValidationError):
        webhooks.check_webhook_url(url)


def test_api_refuses_a_non_loopback_http_webhook(researcher, poll):
    response = researcher.post(
        reverse("api:poll-webhooks", kwargs={"slug": poll.slug}),
        {"url": "http://example.org/hook"},
        format="json",
    )
    assert response.status_code == 400 and "url" in response.json()
