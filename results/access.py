"""Researcher access, written in one place: API tokens, per-poll grants with their level, and
webhooks. The API views, the admin and the management commands all call these functions, so a
rule (a bounded token lifetime, a webhook's address check and key) holds whatever the path.

Reads are here too: at which level a user may read a poll (which polls at all is
``Poll.objects.readable_by(user)``).
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from results.models import ApiToken, Grant, Webhook
from results.webhooks import check_webhook_url
from surveys.journey.tokens import hash_token, new_token
from surveys.models import Poll

TOKEN_PREFIX = "dlb_"
DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 365
# Writing last_used_at on every request would turn each read into a write; once a minute is
# precise enough to spot stale tokens.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once; only its hash is stored


def token_lifetime() -> timedelta:
    return timedelta(days=getattr(settings, "API_TOKEN_DAYS", DEFAULT_TOKEN_DAYS))


def max_token_days() -> int:
    """The longest lifetime a token may be issued with (a year unless a setting allows more)."""
    return getattr(settings, "API_TOKEN_MAX_DAYS", MAX_TOKEN_DAYS)


def check_token_lifetime(lifetime: timedelta) -> None:
    """Tokens live at least an hour and at most ``max_token_days()``: a leaked token that never
    expires is a leak forever."""
    if lifetime < timedelta(hours=1) or lifetime > timedelta(days=max_token_days()):
        raise ValidationError(
            f"A token must expire between an hour and {max_token_days()} days from now.",
            code="token_lifetime",
        )


@transaction.atomic
def issue_api_token(
    *, user: Any, name: str, days: int | None = None, expires_at: datetime | None = None
) -> IssuedToken:
    """A new token for ``user``, valid for ``days`` or until ``expires_at`` (default 90 days)."""
    now = timezone.now()
    if expires_at is None:
        expires_at = now + (timedelta(days=days) if days is not None else token_lifetime())
    check_token_lifetime(expires_at - now)
    if not name.strip():
        raise ValidationError("Name the token (what it is for).", code="token_name")
    secret = TOKEN_PREFIX + new_token()
    token = ApiToken.objects.create(
        user=user,
        name=name.strip()[:100],
        prefix=secret[:12],
        token_hash=hash_token(secret),
        expires_at=expires_at,
    )
    return IssuedToken(token=token, secret=secret)


def revoke_api_token(*, token: ApiToken) -> bool:
    """Revoke the token: its requests and the download links of its exports stop working."""
    return bool(
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


def find_active_token(secret: str) -> ApiToken | None:
    """The active token with this secret; unknown, revoked and expired all give None."""
    token = (
        ApiToken.objects.active()
        .select_related("user")
        .filter(token_hash=hash_token(secret))
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def check_grant(*, level: str, can_import: bool) -> None:
    """A grant's level exists, and importing (a write on microdata) comes with microdata."""
    if level not in Grant.Level.values:
        raise ValidationError(f"Unknown access level {level!r}.", code="grant_level")
    if can_import and level != Grant.Level.MICRODATA:
        raise ValidationError("Importing needs the microdata level.", code="grant_import")


@transaction.atomic
def grant_access(
    *,
    user: Any,
    poll: Poll,
    level: str = Grant.Level.AGGREGATES,
    can_import: bool = False,
    granted_by: Any = None,
) -> Grant:
    """Give (or change) a researcher's access to one poll; aggregates only unless told."""
    check_grant(level=level, can_import=can_import)
    grant, created = Grant.objects.select_for_update().get_or_create(
        user=user,
        poll=poll,
        defaults={"level": level, "can_import": can_import, "granted_by": granted_by},
    )
    if not created and (grant.level, grant.can_import) != (level, can_import):
        grant.level, grant.can_import = level, can_import
        grant.save(update_fields=["level", "can_import"])
    return grant


def revoke_grant(*, grant: Grant) -> None:
    """Withdraw the access: the poll's endpoints and its export links stop working at once."""
    Grant.objects.filter(pk=grant.pk).delete()


@transaction.atomic
def register_webhook(*, poll: Poll, url: str, events: list[str], user: Any) -> Webhook:
    """A new webhook with a fresh key, owned by ``user``; the address is checked (no internal
    targets, port 443 only unless ``WEBHOOK_ALLOWED_PORTS`` lists more).

    Any grant may register one, aggregates included: ``snapshot.ready`` carries the snapshot's
    metadata only (id, time, participant count, fingerprint), which that level may read, and
    ``export.ready`` is sent only to the webhooks of the user who started the export."""
    check_webhook_url(url)
    unknown = sorted(set(events) - set(Webhook.Event.values))
    if unknown:
        raise ValidationError(f"Unknown events: {', '.join(unknown)}.", code="webhook_events")
    return Webhook.objects.create(
        poll=poll, url=url, events=events, secret=secrets.token_hex(32), created_by=user
    )


def webhooks_of(user: Any, poll: Poll) -> QuerySet[Webhook]:
    """The webhooks a researcher sees and manages through the API: those they registered on
    the poll. Organisers see all of a poll's webhooks in the admin."""
    return Webhook.objects.filter(poll=poll, created_by=user)


def has_microdata(user: Any, poll: Poll) -> bool:
    """May the user read the poll's answers, participants and exports (checked live)?"""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or Grant.objects.for_user(user).microdata().filter(poll=poll).exists()


def may_import(user: Any, poll: Poll) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    return (
        user.is_superuser
        or Grant.objects.for_user(user).microdata().filter(poll=poll, can_import=True).exists()
    )
