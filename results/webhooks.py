"""Webhooks: a poll's HTTPS endpoints receive an HMAC-signed POST when a new results snapshot or
an export is ready. Every attempt is logged on its WebhookDelivery, in coarse categories.

Signature (as Stripe and GitHub do it): ``X-Deliberate-Signature: t=<unix time>,v1=<hex>`` where
``v1 = HMAC-SHA256(secret, "<t>.<raw body>")``; receivers recompute it and reject stale ``t``.

Targets are checked by one function, ``resolve_public``, at registration and again at each
delivery, whose connection goes to the address that was checked (a DNS answer that changes in
between cannot point the POST at an internal host). Only public addresses are accepted; loopback
only when ``WEBHOOK_ALLOW_LOOPBACK`` is on (tests). Only port 443 unless ``WEBHOOK_ALLOWED_PORTS``
lists more. Redirects are never followed.

The delivery log is written for the receiver's owner, who can read it through the API, so it must
not become a port scanner: a failure is one of a few categories (no exact status code), and no
attempt records how long it took (a refusal answers in milliseconds, a timeout in seconds).

Who receives what: ``snapshot.ready`` goes to every webhook of the poll (the results are the
poll's, and the event carries metadata only); ``export.ready`` only to the webhooks registered by
the user who started the export.

Deliveries never run inside the request that caused them: with a worker they are Celery tasks;
in the embedded default (tasks run eagerly) they go to a small background thread pool. Retries
are due at ``next_attempt_at``; the beat task ``send_due_webhooks`` sends what is due.
"""

import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Container
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from results.models import ResultSnapshot, Webhook, WebhookDelivery
from surveys.models import Poll

TIMEOUT_SECONDS = 10
MAX_ATTEMPTS = 6
USER_AGENT = "Deliberate-Webhooks/1"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# What the delivery log says about a failure: enough for a receiver to fix its endpoint, too
# little to map a network (refused, timed out and TLS failures all read "unreachable").
UNREACHABLE = "unreachable"
BLOCKED = "blocked: the host resolves to a non-public address"
REDIRECTED = "rejected (redirect, not followed)"
OTHER_FAILURE = "failed"
SWITCHED_OFF = "webhook switched off"
CATEGORIES = frozenset(
    {UNREACHABLE, BLOCKED, REDIRECTED, OTHER_FAILURE, SWITCHED_OFF}
    | {f"rejected (HTTP {family}xx)" for family in (4, 5)}
)
DEFAULT_ALLOWED_PORTS = (443,)
# The Celery task that sends one delivery (results.tasks.deliver_webhook).
DELIVER_TASK = "results.jobs.deliver_webhook"


def backoff_seconds(attempt: int) -> int:
    """Seconds before attempt ``attempt + 1``: 30 s, 2 min, 8 min, 32 min, ~2 h."""
    return 30 * 4 ** (attempt - 1)


def loopback_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_LOOPBACK", False))


def allowed_ports() -> Container[int]:
    return getattr(settings, "WEBHOOK_ALLOWED_PORTS", DEFAULT_ALLOWED_PORTS)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo client), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public(address: IPAddress) -> bool:
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def is_allowed(address: IPAddress) -> bool:
    inner = embedded_ipv4(address) or address
    if loopback_allowed() and (address.is_loopback or inner.is_loopback):
        return True
    return is_public(address)


def resolve_public(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, all of them allowed, or a ValidationError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise ValidationError(
            f"The host {host!r} does not resolve.", code="webhook_unresolvable"
        ) from None
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not addresses or not all(is_allowed(a) for a in addresses):
        raise ValidationError(
            "A webhook must reach a public address: loopback, private, link-local, reserved, "
            "multicast and unspecified addresses are refused.",
            code="webhook_address",
        )
    return addresses


def target_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable webhook URL, or a ValidationError."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError("The webhook URL is not valid.", code="webhook_url") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError("A webhook URL must be an absolute https:// URL.", code="webhook_url")
    if parts.username or parts.password:
        raise ValidationError(
            "Put no credentials in the URL; verify the signature instead.", code="webhook_url"
        )
    port = port or (443 if parts.scheme == "https" else 80)
    if port not in allowed_ports():
        # Any other port would let the delivery log probe services (SSH, databases) on hosts.
        raise ValidationError(
            "A webhook must use the standard https port 443 (leave the port out of the URL).",
            code="webhook_port",
        )
    return parts.scheme, parts.hostname, port


def check_webhook_url(url: str) -> list[IPAddress]:
    """The one check of a webhook target, used at registration (API, admin) and delivery."""
    scheme, host, port = target_of(url)
    addresses = resolve_public(host, port)
    if scheme == "http" and not all(a.is_loopback for a in addresses):
        raise ValidationError(
            "Plain http:// is accepted only for loopback addresses; use https.",
            code="webhook_url",
        )
    return addresses


def announce(
    *, poll: Poll, event: str, data: dict[str, Any], owner: Any = None
) -> list[WebhookDelivery]:
    """Record one pending delivery per interested webhook; each is sent after the commit, never
    inside the request or task that announced it. With ``owner``, only that user's webhooks.

    ``export.ready`` concerns one user's export: it needs ``owner`` (refused without, so a new
    call site cannot broadcast one researcher's exports to everyone's webhooks)."""
    if event == Webhook.Event.EXPORT_READY and owner is None:
        raise ValueError("export.ready goes to the webhooks of the export's owner: pass owner.")
    deliveries = []
    now = timezone.now()
    webhooks = Webhook.objects.filter(poll=poll, active=True)
    if owner is not None:
        webhooks = webhooks.filter(created_by=owner)
    for webhook in webhooks:
        if not webhook.wants(event):
            continue
        delivery = WebhookDelivery.objects.create(
            webhook=webhook,
            event=event,
            payload={"event": event, "poll": poll.slug, "data": data},
            next_attempt_at=now,
        )
        deliveries.append(delivery)
        transaction.on_commit(lambda pk=delivery.pk: dispatch(pk), robust=True)
    return deliveries


def announce_snapshot(snapshot: ResultSnapshot) -> list[WebhookDelivery]:
    """Announce a newly saved snapshot to every webhook of its poll, if it was released; one
    held back is not announced (its participant count alone would tell one new completion)."""
    if snapshot.released_at is None:
        return []
    return announce(
        poll=snapshot.poll,
        event=Webhook.Event.SNAPSHOT_READY,
        data={
            "snapshot_id": snapshot.pk,
            "computed_at": snapshot.computed_at.isoformat() if snapshot.computed_at else None,
            "n_participants": snapshot.n_participants,
            "fingerprint": snapshot.fingerprint,
        },
    )


# The embedded default has no worker: deliveries go to these threads instead of running inside
# the participant's request (a hanging receiver once held a final submit for a minute).
BACKGROUND = ThreadPoolExecutor(max_workers=2, thread_name_prefix="webhooks")


def dispatch(delivery_id: int) -> None:
    if current_app.conf.task_always_eager:
        BACKGROUND.submit(send_in_background, delivery_id)
    else:
        # By name: the task lives in results.tasks, which imports this module. The eager case
        # never reaches Celery, so sending by name loses nothing there.
        current_app.send_task(DELIVER_TASK, args=(delivery_id,))


def send_in_background(delivery_id: int) -> None:
    """One attempt in a background thread; a failure is tried again after its backoff by a
    timer in this process (no beat runs in the embedded default). If the process ends first,
    the delivery stays pending and due, for the sweeper of a deployment that has one."""
    try:
        delivery = attempt_delivery(delivery_id=delivery_id)
    finally:
        connections.close_all()  # this thread's own connections
    if delivery.state == WebhookDelivery.State.PENDING and delivery.next_attempt_at:
        wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
        timer = threading.Timer(
            max(wait, 0.0), BACKGROUND.submit, (send_in_background, delivery_id)
        )
        timer.daemon = True  # never holds a process that is shutting down
        timer.start()


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


def pinned_connection(
    scheme: str, host: str, port: int, address: IPAddress
) -> http.client.HTTPConnection:
    """A connection to ``address`` (already checked) that still speaks to ``host``: the Host
    header, TLS server name and certificate check use the name. http.client follows no
    redirects."""
    connection: http.client.HTTPConnection
    if scheme == "https":
        connection = http.client.HTTPSConnection(
            host, port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)

    def connect(_target: tuple[str, int], timeout: float, source: Any = None) -> socket.socket:
        return socket.create_connection((str(address), port), timeout, source)

    connection._create_connection = connect  # type: ignore[attr-defined]
    return connection


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """POST once: (HTTP status or None, coarse error or "")."""
    try:
        scheme, host, port = target_of(url)
        addresses = resolve_public(host, port)
    except ValidationError:
        return None, BLOCKED
    if scheme == "http" and not all(a.is_loopback for a in addresses):
        return None, BLOCKED
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # IPv4 first: a host with an AAAA record is often unreachable over IPv6 from a server.
    address = sorted(addresses, key=lambda a: a.version)[0]
    connection = pinned_connection(scheme, host, port, address)
    try:
        connection.request("POST", path, body=body, headers=headers)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None, UNREACHABLE
    finally:
        connection.close()
    if 200 <= status < 300:
        return status, ""
    if 300 <= status < 400:
        return status, REDIRECTED
    if 400 <= status < 600:
        return status, f"rejected (HTTP {status // 100}xx)"
    return status, OTHER_FAILURE


def delivered(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def coarse_attempt(entry: dict[str, Any]) -> dict[str, Any]:
    """An attempt as the log shows it: when, the status only if delivered, and a category.
    Also applied on display, so entries logged before the log was coarse show no more."""
    status = entry.get("status")
    if delivered(status):
        return {"at": entry.get("at"), "status": status, "error": ""}
    error = entry.get("error", "")
    if isinstance(status, int) and 300 <= status < 400:
        error = REDIRECTED
    elif isinstance(status, int) and 400 <= status < 600:
        error = f"rejected (HTTP {status // 100}xx)"
    elif error not in CATEGORIES:  # free text logged by older code (e.g. "Connection refused")
        error = UNREACHABLE if status is None else OTHER_FAILURE
    return {"at": entry.get("at"), "status": None, "error": error}


def coarse_log(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [coarse_attempt(entry) for entry in entries]


def claim(delivery_id: int) -> WebhookDelivery | None:
    """Take a due delivery for one attempt; its next due time moves on at once, so a sweeper
    and a queued task never send the same attempt twice."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("webhook")
            .filter(pk=delivery_id, state=WebhookDelivery.State.PENDING)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .first()
        )
        if delivery is None:
            return None
        delivery.next_attempt_at = now + timedelta(seconds=backoff_seconds(delivery.attempts + 1))
        delivery.save(update_fields=["next_attempt_at"])
    return delivery


def attempt_delivery(*, delivery_id: int) -> WebhookDelivery:
    """POST the delivery once, if it is due, and log the attempt."""
    delivery = claim(delivery_id)
    if delivery is None:
        return WebhookDelivery.objects.get(pk=delivery_id)
    body = json.dumps(
        {**delivery.payload, "delivery": delivery.pk, "sent_at": timezone.now()},
        cls=DjangoJSONEncoder,
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Deliberate-Event": delivery.event,
        "X-Deliberate-Delivery": str(delivery.pk),
        "X-Deliberate-Signature": sign(delivery.webhook.secret, int(time.time()), body),
    }
    started = timezone.now()
    if delivery.webhook.active:
        status, error = post(delivery.webhook.url, body, headers)
    else:
        status, error = None, SWITCHED_OFF
    record_attempt(delivery=delivery, status=status, error=error, started=started)
    return delivery


def due_deliveries(limit: int = 500) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(
            state=WebhookDelivery.State.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


@transaction.atomic
def record_attempt(
    *, delivery: WebhookDelivery, status: int | None, error: str, started: datetime
) -> None:
    """Log one attempt. Every time written is the attempt's start, to the second (the next try
    too): a time taken after the attempt would tell how long the target took to fail."""
    started = started.replace(microsecond=0)
    delivery.attempts += 1
    entry = coarse_attempt({"at": started.isoformat(), "status": status, "error": error})
    delivery.response_status = entry["status"]
    delivery.attempts_log = [*delivery.attempts_log, entry]
    if delivered(status):
        delivery.state = WebhookDelivery.State.DELIVERED
        delivery.delivered_at = started
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.state = WebhookDelivery.State.FAILED
    else:
        delivery.next_attempt_at = started + timedelta(seconds=backoff_seconds(delivery.attempts))
    delivery.save()
