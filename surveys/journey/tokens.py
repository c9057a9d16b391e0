"""Invitation and return-link tokens: stored only as a SHA-256 hash and looked up by it, and
kept out of every log line (a token in a log is a key to someone's answers)."""

import base64
import hashlib
import logging
import re
import secrets
from datetime import timedelta
from typing import Any

from django.utils.crypto import salted_hmac
from gunicorn.glogging import Logger as GunicornLogger

# "/i/<token>" and "/r/<token>" wherever they appear: a path, a request line, a full URL in a
# Referer; percent-encoded too ("/%69/<token>", "/i%2F<token>"), since Django routes the decoded
# path and a raw request line keeps the encoding.
INVITATION_PATH = re.compile(r"/([ir]|%69|%72)(?:/|%2f)[^/\s?#\"']+", re.IGNORECASE)
REDACTED = r"/\1/<token>"
RETURN_SALT = "surveys.return-link"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def return_token(public_id: str) -> str:
    """The token of a participant's return link: an HMAC of their public id under the site's
    secret key (256 bits). Derived rather than random so the wait page can show the same link
    on every visit while the database holds only its hash; without the secret key the public
    id (which is in exports) gives nothing. Rotating SECRET_KEY invalidates return links."""
    digest = salted_hmac(RETURN_SALT, public_id, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hash_token(token: str) -> str:
    # A plain SHA-256 suffices: the token has 256 bits of entropy, so no salt or stretching.
    return hashlib.sha256(token.encode()).hexdigest()


def redact(value: Any) -> Any:
    """``value`` with every invitation path's token replaced; other values unchanged."""
    return INVITATION_PATH.sub(REDACTED, value) if isinstance(value, str) else value


class RedactInvitationTokens(logging.Filter):
    """Redacts invitation tokens in a log record's message and arguments. Attached to the
    loggers that write request paths (``django.request``'s "Not Found: /i/<token>/",
    ``django.server``'s request lines): a logger's filter rewrites the record once, before any
    handler up the chain (console, mail to admins) sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.msg)
        if isinstance(record.args, dict):
            record.args = {key: redact(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(redact(value) for value in record.args)
        return True


class RedactingGunicornLogger(GunicornLogger):
    """gunicorn's logger with tokens redacted from every access-log field (request line, path,
    Referer, headers):
    ``gunicorn --logger-class surveys.journey.tokens.RedactingGunicornLogger``."""

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta
    ) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) for key, value in atoms.items()}
