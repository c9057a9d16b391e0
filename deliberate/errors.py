"""Error pages: friendly, in the participant's language, with a way back; JSON under /api/.

Django's defaults are bare English pages. Here the HTML pages extend the participant layout
(404, 403, 400 and a failed CSRF check render with the request's context), while 500 renders a
self-contained template with no context processors: whatever broke the request (the database,
a context processor) must not break the error page too. LocaleMiddleware has activated the
language the participant chose before any view runs, so every page is translated.

The research API always answers JSON: DRF's exception handler covers errors raised in its
views, and these handlers cover the rest (unknown /api/ URLs, uncaught exceptions).
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.templatetags.static import static
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults

API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX) or request.path == API_PREFIX.rstrip("/")


def _json(detail: str, status: int) -> JsonResponse:
    # DRF's own shape, so clients handle these like any other API error.
    return JsonResponse({"detail": detail}, status=status)


def back_link(request: HttpRequest) -> str:
    """The page the participant came from, when it is one of ours; else nothing."""
    referer = request.META.get("HTTP_REFERER", "")
    try:
        host = request.get_host()
    except DisallowedHost:
        return ""  # the 400 for a forged Host header must not fail on it again
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={host}, require_https=request.is_secure()
    ):
        return referer
    return ""


def _page(request: HttpRequest, template: str, status: int, **context: Any) -> HttpResponse:
    body = loader.render_to_string(
        template,
        {"back_url": back_link(request), "status": status, **context},
        request,
    )
    return HttpResponse(body, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _json("Bad request.", 400)
    return _page(request, "400.html", 400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _json("You do not have permission to perform this action.", 403)
    return _page(request, "403.html", 403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _json("Not found.", 404)
    return _page(request, "404.html", 404)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form posted with an expired or missing CSRF token: usually a page left open too long
    or cookies switched off. The participant is sent back to the same page to try again."""
    if _is_api(request):
        return _json(f"CSRF Failed: {reason}", 403)
    return _page(request, "403_csrf.html", 403, retry_url=request.path)


def _stylesheet() -> str:
    # With the manifest storage a missing manifest raises: the 500 page then goes unstyled
    # rather than failing itself.
    try:
        return static("surveys/site.css")
    except Exception:
        return ""


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return _json("A server error occurred.", 500)
    try:
        template = loader.get_template("500.html")
    except Exception:
        return defaults.server_error(request)
    language = translation.get_language() or settings.LANGUAGE_CODE
    with translation.override(language):
        # A plain dict: no RequestContext, so no context processor runs on a broken request.
        body = template.render(
            {"stylesheet": _stylesheet(), "back_url": back_link(request), "language": language}
        )
    return HttpResponse(body, status=500)
