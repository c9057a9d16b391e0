"""Researcher access: API tokens and per-poll grants, as typed write functions and reads."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from results.models import ApiToken, Grant
from surveys.models import Poll
from surveys.tokens import hash_token, new_token

TOKEN_PREFIX = "dlb_"
DEFAULT_TOKEN_DAYS = 90
# Writing last_used_at on every request would turn each read into a write; once a minute is
# precise enough to spot stale tokens.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once; only its hash is stored


def token_lifetime() -> timedelta:
    return timedelta(days=getattr(settings, "API_TOKEN_DAYS", DEFAULT_TOKEN_DAYS))


@transaction.atomic
def issue_api_token(*, user: Any, name: str, days: int | None = None) -> IssuedToken:
    secret = TOKEN_PREFIX + new_token()
    lifetime = timedelta(days=days) if days is not None else token_lifetime()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=secret[:12],
        token_hash=hash_token(secret),
        expires_at=timezone.now() + lifetime,
    )
    return IssuedToken(token=token, secret=secret)


def revoke_api_token(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


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


@transaction.atomic
def grant_poll(*, user: Any, poll: Poll, granted_by: Any = None) -> Grant:
    grant, _ = Grant.objects.get_or_create(
        user=user, poll=poll, defaults={"granted_by": granted_by}
    )
    return grant


def polls_for(user: Any) -> QuerySet[Poll]:
    """The polls a researcher may read: all for superusers, otherwise those granted."""
    if not user.is_authenticated:
        return Poll.objects.none()
    if user.is_superuser:
        return Poll.objects.all()
    return Poll.objects.filter(pk__in=Grant.objects.for_user(user).values("poll"))
