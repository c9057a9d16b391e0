"""The names the API modules and older callers import; the functions live in results.access."""

from typing import Any

from results.access import (
    IssuedToken,
    find_active_token,
    grant_access,
    has_microdata,
    issue_api_token,
    may_import,
    polls_for,
    revoke_api_token,
    token_lifetime,
)
from results.models import Grant
from surveys.models import Poll

__all__ = [
    "IssuedToken",
    "find_active_token",
    "grant_poll",
    "has_microdata",
    "issue_api_token",
    "may_import",
    "polls_for",
    "revoke_api_token",
    "token_lifetime",
]


def grant_poll(*, user: Any, poll: Poll, granted_by: Any = None) -> Grant:
    """A microdata grant, as every grant was before access levels (kept for existing callers;
    new code calls ``grant_access`` and says which level it means)."""
    existing = Grant.objects.filter(user=user, poll=poll).first()
    if existing is not None:
        return existing
    return grant_access(user=user, poll=poll, level=Grant.Level.MICRODATA, granted_by=granted_by)
