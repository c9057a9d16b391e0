"""Who is this participant: the per-poll signed cookie, invitation links and the rate limit on
failed ones, the client's address, and the language of the pages.
"""

import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.translation import get_language_info, get_supported_language_variant
from django.utils.translation.trans_real import parse_accept_lang_header

from surveys.journey.tokens import hash_token
from surveys.models import Participant, Poll

logger = logging.getLogger(__name__)

COOKIE_SALT = "surveys.participant"
COOKIE_AGE = 90 * 24 * 3600
FAILED_TOKEN_LIMIT = 20
FAILED_TOKEN_WINDOW = 15 * 60


def cookie_name(slug: str) -> str:
    return f"dp-{slug}"


def participant_from_cookie(request: HttpRequest, slug: str) -> Participant | None:
    """The participant this browser started in the poll, with their poll (one query)."""
    public_id = request.get_signed_cookie(
        cookie_name(slug), default=None, salt=COOKIE_SALT, max_age=COOKIE_AGE
    )
    if not public_id:
        return None
    return (
        Participant.objects.select_related("poll")
        .filter(public_id=public_id, poll__slug=slug, revoked_at__isnull=True)
        .first()
    )


def remember(response: HttpResponse, participant: Participant, slug: str) -> None:
    response.set_signed_cookie(
        cookie_name(slug),
        participant.public_id,
        salt=COOKIE_SALT,
        max_age=COOKIE_AGE,
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


def client_ip(request: HttpRequest) -> str:
    """The address a request came from. Behind TRUSTED_PROXY_COUNT proxies it is the entry the
    outermost of them appended to X-Forwarded-For (each proxy appends the address it was
    reached from; entries to its left are whatever the client sent, so they count for nothing).
    With no trusted proxy, or a header shorter than the chain, it is REMOTE_ADDR: behind a
    proxy that would be the proxy's own address, shared by every participant."""
    trusted: int = settings.TRUSTED_PROXY_COUNT
    if trusted > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        hops = [hop.strip() for hop in forwarded if hop.strip()]
        if len(hops) >= trusted:
            return hops[-trusted]
    return request.META.get("REMOTE_ADDR", "unknown")


def _failures_key(request: HttpRequest) -> str:
    return f"surveys:token-failures:{client_ip(request)}"


def token_attempts_blocked(request: HttpRequest) -> bool:
    """Whether this address has failed too often. Asked only after a look-up failed: a valid
    link is never refused, however many bad ones came from the same (perhaps shared) address.
    With the counter store down, invited participants must still get in: fail open."""
    try:
        return (cache.get(_failures_key(request)) or 0) >= FAILED_TOKEN_LIMIT
    except Exception:
        logger.warning("token rate limit unavailable", exc_info=True)
        return False


def count_failed_token(request: HttpRequest) -> None:
    key = _failures_key(request)
    try:
        # add() starts the window only once; incr() keeps its expiry (atomic on Redis).
        cache.add(key, 0, FAILED_TOKEN_WINDOW)
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, FAILED_TOKEN_WINDOW)
    except Exception:
        logger.warning("token rate limit unavailable; failure not counted", exc_info=True)


def invited_participant(token: str) -> Participant | None:
    """The participant of a usable invitation: unknown, revoked and used-up all give None."""
    return (
        Participant.objects.usable_invitations()
        .select_related("poll")
        .filter(token_hash=hash_token(token))
        .first()
    )


def choose_language(
    request: HttpRequest, *, poll: Poll, participant: Participant | None
) -> tuple[str, bool]:
    """(language, explicitly chosen): link parameter, then switcher cookie, then the recorded
    choice, then the browser's preference, then the poll's first language."""
    languages = list(poll.languages) or [settings.LANGUAGE_CODE]
    asked = request.GET.get("lang")
    if asked in languages:
        return asked, True
    cookie = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    if cookie in languages:
        return cookie, False
    if participant is not None and participant.pk and participant.language in languages:
        return participant.language, False
    for code, _ in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
        try:
            variant = get_supported_language_variant(code)
        except LookupError:
            continue
        if variant in languages:
            return variant, False
    return languages[0], False


def keep_language(response: HttpResponse, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=COOKIE_AGE,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


def poll_is_open(poll: Poll) -> bool:
    return poll.status == Poll.Status.OPEN


def language_links(codes: Iterable[str]) -> list[tuple[str, str]]:
    """Each language with its name in that language ("Українська"), as every language switch
    shows it; a code Django does not know keeps its code rather than failing the page."""
    links = []
    for code in codes:
        try:
            links.append((code, get_language_info(code)["name_local"]))
        except KeyError:
            links.append((code, code))
    return links
