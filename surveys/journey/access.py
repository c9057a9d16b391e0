"""Who is this participant: the per-poll signed cookie (read by a statement compiled once per
process), invitation links and the rate limit on failed ones, the client's address, and the
language of the pages.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.core.cache import cache
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model, OuterRef, QuerySet
from django.db.models.functions import JSONArray
from django.db.models.query import get_related_populators
from django.db.models.sql.compiler import SQLCompiler
from django.db.transaction import TransactionManagementError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import get_language_info, get_supported_language_variant
from django.utils.translation.trans_real import parse_accept_lang_header

from surveys.journey.tokens import hash_token
from surveys.models import Answer, Participant, Poll

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
    found: Participant | None = participant_by_public_id(public_id, slug)
    return found


# The participant reads of the hot paths, compiled by the ORM once per process. Every
# questionnaire request reads the participant of the cookie with their poll (on a page, with
# their answers of the wave), and every submission reads it again under a row lock. Building
# and compiling those querysets (sixty columns, a join, a subquery) cost the worker more CPU
# than PostgreSQL spends answering them, while their SQL only differs in the values looked
# up. So each shape is compiled once with marker values and a request runs that SQL with its
# own: rows become instances exactly as the queryset makes them (the compiler's converters,
# Model.from_db, the select_related populators), through Django's cursor, so the statement is
# logged and counted like any other query.

# Marker values the shapes are compiled with; a request's values take their places. Public ids
# and slugs are short URL-safe strings and ids positive, so no real value is ever a marker.
PUBLIC_ID = "\x1epublic-id\x1e"
SLUG = "\x1eslug\x1e"
PK = -7_364_112_901


@dataclass(frozen=True)
class _Statement:
    sql: str
    params: tuple[Any, ...]
    compiler: SQLCompiler
    model: type[Model]
    fields: slice
    init_list: list[str]
    populators: list[Any]
    annotations: dict[str, int]
    converters: dict[int, Any]

    def first(self, values: dict[Any, Any]) -> Any:
        """The first row for ``values`` (marker: value) as a model instance, or None."""
        db = self.compiler.using
        params = [values.get(param, param) for param in self.params]
        with self.compiler.connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchmany(1)
        for row in self.compiler.apply_converters(rows, self.converters):
            obj = self.model.from_db(db, self.init_list, row[self.fields])
            for populator in self.populators:
                populator.populate(row, obj)
            for name, position in self.annotations.items():
                setattr(obj, name, row[position])
            return obj
        return None


def _compile(queryset: QuerySet[Any]) -> _Statement:
    compiler = queryset.query.get_compiler(using=queryset.db)
    sql, params = compiler.as_sql()
    info = compiler.klass_info
    assert info is not None
    select = info["select_fields"]
    fields = slice(select[0], select[-1] + 1)
    return _Statement(
        sql=sql,
        params=tuple(params),
        compiler=compiler,
        model=info["model"],
        fields=fields,
        init_list=[column[0].target.attname for column in compiler.select[fields]],
        populators=get_related_populators(info, compiler.select, queryset.db),
        annotations=dict(compiler.annotation_col_map),
        # What results_iter() would work out again for every row.
        converters=compiler.get_converters([column[0] for column in compiler.select]),
    )


def _from_cookie(wave: int | None) -> QuerySet[Participant]:
    found = Participant.objects.select_related("poll").filter(
        public_id=PUBLIC_ID, poll__slug=SLUG, revoked_at__isnull=True
    )
    if wave is not None:
        answers = Answer.objects.filter(participant=OuterRef("pk"), wave=wave).values(
            row=JSONArray("question_id", "value", "missing")
        )
        found = found.annotate(wave_answers=ArraySubquery(answers))
    return found[:1]


def _locked(_wave: int | None) -> QuerySet[Participant]:
    # ``of`` keeps the lock off the joined poll row, which every participant shares.
    return (
        Participant.objects.select_for_update(of=("self",)).select_related("poll").filter(pk=PK)[:1]
    )


_SHAPES: dict[str, Callable[[int | None], QuerySet[Participant]]] = {
    "from_cookie": _from_cookie,
    "locked": _locked,
}


@lru_cache(maxsize=64)
def _statement(shape: str, wave: int | None, connection: BaseDatabaseWrapper) -> _Statement:
    # Keyed by the connection too: each thread has its own, and a compiler keeps the one it
    # was compiled for (the SQL of a test database is the same, its connection is not). A
    # worker's threads are few and live as long as it does, so the entries stay few.
    return _compile(_SHAPES[shape](wave).using(connection.alias))


def participant_by_public_id(public_id: str, slug: str, wave: int | None = None) -> Any:
    """The unrevoked participant ``public_id`` of poll ``slug`` with its poll, or None; with
    ``wave``, also their answers of that wave as ``wave_answers`` [[question id, value,
    missing kind], ...] (PostgreSQL only)."""
    statement = _statement("from_cookie", wave, connections["default"])
    return statement.first({PUBLIC_ID: public_id, SLUG: slug})


def locked_with_poll(participant_id: int) -> Participant:
    """The participant's row locked until the transaction ends, with its poll read along (not
    locked). Raises ``Participant.DoesNotExist`` like ``get``."""
    connection = connections["default"]
    if connection.get_autocommit():
        # What select_for_update() says: a lock outside a transaction would be let go at once.
        raise TransactionManagementError("select_for_update cannot be used outside a transaction.")
    statement = _statement("locked", None, connection)
    found: Participant | None = statement.first({PK: participant_id})
    if found is None:
        raise Participant.DoesNotExist(f"Participant {participant_id} does not exist")
    return found


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
