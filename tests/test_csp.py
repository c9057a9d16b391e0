"""Content Security Policy: every kind of page sends the header, and no page carries inline
script or style that the policy would have to allow with 'unsafe-inline'."""

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from results.compute.recompute import recompute_poll
from results.simulate import add_simulated_participants
from surveys.models import Poll
from tests.factories import make_poll
from tests.surveys.admin_fixtures import client_for, poll_with_activity, staff
from tests.surveys.test_journey import T1_PAGES, T2_PAGES, start

pytestmark = pytest.mark.django_db


class InlineCode(HTMLParser):
    """Collects what a strict CSP blocks: inline scripts and styles without the page's nonce,
    style attributes and inline event handlers."""

    def __init__(self, nonce: str | None) -> None:
        super().__init__()
        self.nonce, self.problems = nonce, []
        self.opened: tuple[str, dict[str, str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if "style" in a:
            self.problems.append(f"style attribute on <{tag}>: {a['style']}")
        for name in a:
            if name.startswith("on"):
                self.problems.append(f"event handler {name} on <{tag}>")
        if tag in {"script", "style"}:
            self.opened = (tag, a)

    def handle_data(self, data: str) -> None:
        if self.opened is None or not data.strip():
            return
        tag, a = self.opened
        if tag == "script" and a.get("type") == "application/json":
            return  # json_script data: never executed
        if self.nonce and a.get("nonce") == self.nonce:
            return
        self.problems.append(f"inline <{tag}>: {data.strip()[:80]}")

    def handle_endtag(self, tag: str) -> None:
        self.opened = None


def policy(response: HttpResponse) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    assert header, f"no CSP header on {response.request['PATH_INFO']}"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_strict(response: HttpResponse) -> dict[str, list[str]]:
    assert response.status_code in (200, 404, 500), response.status_code
    directives = policy(response)
    for name in ("script-src", "style-src", "default-src"):
        assert "'unsafe-inline'" not in directives[name]
        assert "'unsafe-eval'" not in directives.get(name, [])
    assert directives["object-src"] == ["'none'"]
    nonce = next(
        (v[len("'nonce-") : -1] for v in directives["script-src"] if v.startswith("'nonce-")), None
    )
    parser = InlineCode(nonce)
    parser.feed(response.content.decode())
    path = response.request["PATH_INFO"]
    assert parser.problems == [], f"{path}: {parser.problems}"
    return directives


def test_every_participant_step_is_strict(client: Client) -> None:
    cache.clear()
    poll = make_poll(design={"control_share": 0.0})
    welcome = client.get(reverse("surveys:entry", args=[poll.slug]))
    assert_strict(welcome)
    start(client, poll)
    pages = [f"/p/{poll.slug}/t1/{n}/" for n in range(1, len(T1_PAGES) + 1)]
    answers = [(url, data, 1) for url, data in zip(pages, T1_PAGES, strict=True)]
    answers += [(f"/p/{poll.slug}/briefing/{n}/", {}, None) for n in (1, 2, 3)]
    reason = {"r-exit.stance": "for", "r-exit.text": "Fewer deaths."}
    answers.append((f"/p/{poll.slug}/deliberation/", reason, None))
    answers += [(f"/p/{poll.slug}/t2/{n}/", data, 2) for n, data in enumerate(T2_PAGES, 1)]
    for url, data, wave in answers:
        page = client.get(url)
        assert page.status_code == 200, url
        assert_strict(page)
        # An invalid post shows the error summary and field errors: strict too.
        if wave is not None:
            assert_strict(client.post(url, {"wave": str(wave)}))
        payload = {**data, **({"wave": str(wave)} if wave else {})}
        assert client.post(url, payload).status_code == 302, url
    assert_strict(client.get(f"/p/{poll.slug}/done/"))


def test_every_admin_page_an_organiser_uses_is_strict() -> None:
    poll = poll_with_activity("alpha")
    add_simulated_participants(poll=poll, n=30, seed=3)
    recompute_poll(poll.pk)
    client = client_for(staff("olga", polls=(poll,)))
    assert_strict(Client().get(reverse("admin:login")))
    urls = [
        reverse("admin:index"),
        reverse("admin:surveys_poll_changelist"),
        reverse("admin:surveys_poll_add"),
        reverse("admin:surveys_poll_import"),
        reverse("admin:surveys_participant_changelist"),
        reverse("admin:surveys_reason_changelist"),
        reverse("admin:surveys_participant_change", args=[poll.participants.first().pk]),
    ]
    for name in ["change", "checklist", "invitations", "monitor", "clone", "history", "preview"]:
        urls.append(reverse(f"admin:surveys_poll_{name}", args=[poll.pk]))
    urls.append(reverse("admin:surveys_poll_lifecycle", args=[poll.pk, "close"]))
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        directives = assert_strict(response)
        assert directives["frame-ancestors"] == ["'none'"], url
    results = client.get(reverse("admin:surveys_poll_results", args=[poll.pk]))
    assert 'id="chart-forest"' in results.content.decode()
    assert_strict(results)


def test_the_preview_frame_may_be_framed_by_the_admin_only() -> None:
    poll = make_poll()
    client = client_for(staff("olga", polls=(poll,)))
    url = reverse("admin:surveys_poll_preview_page", args=[poll.pk])
    query = {"step": "briefing", "page": 1, "arm": "treatment", "order": "A B", "language": "en"}
    response = client.get(url, query)
    assert response.status_code == 200
    directives = assert_strict(response)
    assert directives["frame-ancestors"] == ["'self'"]


def test_api_documentation_pages_are_strict(client: Client) -> None:
    swagger = client.get(reverse("api-docs"))
    assert swagger.status_code == 200
    assert_strict(swagger)
    script = re.search(r'<script src="([^"]*script=[^"]*)"', swagger.content.decode())
    assert script, "the Swagger UI init script is served from its own URL"
    init = client.get(script.group(1).replace("&amp;", "&"))
    assert init["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in init.content

    redoc = client.get(reverse("api-redoc"))
    directives = assert_strict(redoc)
    page = redoc.content.decode()
    assert "fonts.googleapis.com" not in page
    nonce = next(v for v in directives["style-src"] if v.startswith("'nonce-"))[7:-1]
    assert f'nonce="{nonce}"' in page  # handed to Redoc for the styles it inserts
    assert "blob:" in directives["worker-src"]


def test_error_pages_are_strict(client: Client, settings: Any, monkeypatch: Any) -> None:
    settings.DEBUG = False
    assert_strict(client.get("/no-such-page/"))
    client.raise_request_exception = False

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("surveys.journey.views.render", broken)
    assert_strict(client.get("/"))


def test_superuser_admin_pages_of_other_models_are_strict() -> None:
    root = client_for(User.objects.create_superuser("root", password="x"))
    for url in ["/admin/auth/user/", "/admin/auth/user/add/", "/admin/auth/group/add/"]:
        response = root.get(url)
        assert response.status_code == 200, url
        assert_strict(response)
    assert Poll.objects.count() == 0
