"""Webhooks: a poll's HTTPS endpoints receive an HMAC-signed POST when a new results snapshot or
an export is ready. Deliveries are Celery tasks with retries and backoff (results.jobs); every
attempt is logged on its WebhookDelivery.

Signature (as Stripe and GitHub do it): ``X-Deliberate-Signature: t=<unix time>,v1=<hex>`` where
``v1 = HMAC-SHA256(secret, "<t>.<raw body>")``; receivers recompute it and reject stale ``t``.
"""

import hashlib
import hmac
import ipaddress
import json
import secrets
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from results.models import Webhook, WebhookDelivery
from surveys.models import Poll

TIMEOUT_SECONDS = 10
MAX_ATTEMPTS = 6
LOOPBACK_NAMES = {"localhost"}
USER_AGENT = "Deliberate-Webhooks/1"


def backoff_seconds(attempt: int) -> int:
    """Seconds before attempt ``attempt + 1``: 30 s, 2 min, 8 min, 32 min, ~2 h."""
    return 30 * 4 ** (attempt - 1)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError("A webhook URL must be an absolute https:// URL.")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValidationError("Plain http:// is accepted only for loopback addresses; use https.")
    if parts.username or parts.password:
        raise ValidationError("Put no credentials in the URL; verify the signature instead.")


@transaction.atomic
def register_webhook(*, poll: Poll, url: str, events: list[str], user: Any) -> Webhook:
    check_webhook_url(url)
    unknown = sorted(set(events) - set(Webhook.Event.values))
    if unknown:
        raise ValidationError(f"Unknown events: {', '.join(unknown)}.")
    return Webhook.objects.create(
        poll=poll, url=url, events=events, secret=secrets.token_hex(32), created_by=user
    )


def announce(*, poll: Poll, event: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    """Queue one delivery per interested webhook; each is sent once the transaction commits."""
    deliveries = []
    for webhook in Webhook.objects.filter(poll=poll, active=True):
        if not webhook.wants(event):
            continue
        delivery = WebhookDelivery.objects.create(
            webhook=webhook,
            event=event,
            payload={"event": event, "poll": poll.slug, "data": data},
        )
        deliveries.append(delivery)
        transaction.on_commit(lambda pk=delivery.pk: _enqueue(pk), robust=True)
    return deliveries


def _enqueue(delivery_id: int) -> None:
    from results.jobs import deliver_webhook

    deliver_webhook.delay(delivery_id)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, tolerance: int = 300) -> bool:
    """What a receiver does: recompute the signature and refuse replays of old requests."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


class NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could bounce the signed payload to a host nobody registered.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirects)


def attempt_delivery(*, delivery_id: int) -> WebhookDelivery:
    """POST the delivery once and log the attempt; the caller decides about retrying."""
    delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)
    if delivery.state != WebhookDelivery.State.PENDING:
        return delivery
    body = json.dumps(
        {**delivery.payload, "delivery": delivery.pk, "sent_at": timezone.now()},
        cls=DjangoJSONEncoder,
    ).encode()
    request = urllib.request.Request(
        delivery.webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Deliberate-Event": delivery.event,
            "X-Deliberate-Delivery": str(delivery.pk),
            "X-Deliberate-Signature": sign(delivery.webhook.secret, int(time.time()), body),
        },
    )
    started = time.monotonic()
    status: int | None = None
    error = ""
    try:
        with OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as failure:
        status, error = failure.code, f"HTTP {failure.code}"
    except (urllib.error.URLError, OSError) as failure:
        error = str(getattr(failure, "reason", failure))[:200]
    record_attempt(
        delivery=delivery,
        status=status,
        error=error,
        milliseconds=int((time.monotonic() - started) * 1000),
    )
    return delivery


@transaction.atomic
def record_attempt(
    *, delivery: WebhookDelivery, status: int | None, error: str, milliseconds: int
) -> None:
    now = timezone.now()
    delivery.attempts += 1
    delivery.response_status = status
    delivery.attempts_log = [
        *delivery.attempts_log,
        {"at": now.isoformat(), "status": status, "error": error, "ms": milliseconds},
    ]
    if status is not None and 200 <= status < 300:
        delivery.state = WebhookDelivery.State.DELIVERED
        delivery.delivered_at = now
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.state = WebhookDelivery.State.FAILED
    delivery.save()
