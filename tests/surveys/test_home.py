"""The home page: what Deliberate is, and the polls anyone may join, in the visitor's language."""
# ruff: noqa: RUF001 - the expected texts are Ukrainian.

import re

import pytest
from django.conf import settings
from django.test import Client

from surveys.models import Poll
from tests.factories import make_poll

pytestmark = pytest.mark.django_db


@pytest.fixture
def polls() -> list[Poll]:
    both = make_poll()
    english_only = make_poll(slug="english-only")
    english_only.languages, english_only.title = ["en"], {"en": "English only"}
    english_only.save(update_fields=["languages", "title"])
    invited = make_poll(slug="invited", design={"access": "invitation"})
    draft = make_poll(slug="a-draft", status="draft")
    return [both, english_only, invited, draft]


def listed(html: str) -> list[str]:
    return re.findall(r'<a href="/p/([\w-]+)/">', html)


def test_it_says_what_deliberate_is_and_lists_open_polls_in_english(polls: list[Poll]) -> None:
    response = Client().get("/", HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert '<html lang="en">' in html
    assert "Deliberate runs Deliberative Polls online: everyone answers twice" in html
    assert "How it works" in html
    # Drafts are not open; an invitation-only poll would only show a stranger its refusal page.
    assert listed(html) == ["small-poll", "english-only"]
    assert ">A small poll</a>" in html
    assert "What should be done?" in html


def test_the_browser_preference_gives_ukrainian_and_titles_in_ukrainian(
    polls: list[Poll],
) -> None:
    html = Client().get("/", HTTP_ACCEPT_LANGUAGE="uk,en;q=0.5").content.decode()
    assert '<html lang="uk">' in html
    assert "Deliberate проводить деліберативні опитування онлайн: усі відповідають двічі" in html
    assert "Як це працює" in html
    assert ">A small poll (uk)</a>" in html
    # A poll without Ukrainian keeps its English title, marked so it is read as English.
    assert re.search(r'<li lang="en">\s*<a href="/p/english-only/">English only</a>', html)


def test_the_language_switch_links_and_remembers_the_choice(polls: list[Poll]) -> None:
    client = Client()
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<a href="/?lang=uk" lang="uk" hreflang="uk">Українська</a>' in html
    assert '<span lang="en" aria-current="true">English</span>' in html
    response = client.get("/?lang=uk", HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="uk">' in response.content.decode()
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "uk"
    # The poll's own pages read the same cookie, so the poll opens in the language chosen here.
    page = client.get("/p/small-poll/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="uk">' in page


def test_an_unknown_language_in_the_link_is_ignored(polls: list[Poll]) -> None:
    response = Client().get("/?lang=xx", HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="en">' in response.content.decode()
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_no_open_poll_says_so() -> None:
    html = Client().get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "No poll is open at the moment." in html
