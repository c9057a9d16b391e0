"""Hostile definitions: a position's source link may only be an http or https address, on every
path that writes one (admin form, definition file, model) and on every page that draws one."""

import pytest
from django.core import signing
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from surveys.admin.authoring import clone_poll
from surveys.definition.files import DefinitionError, parse_yaml
from surveys.journey.access import COOKIE_SALT, cookie_name
from surveys.models import Participant, Poll, Position
from tests.factories import make_poll
from tests.surveys.admin_fixtures import client_for, form_fields, staff

pytestmark = pytest.mark.django_db

ATTACK = "javascript:alert(document.domain)"


@pytest.mark.parametrize(
    "url",
    [
        ATTACK,
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "//evil.example/x",
        "https://example.org/a\njavascript:alert(1)",
    ],
)
def test_the_model_refuses_a_source_url_that_is_not_http_or_https(url: str) -> None:
    poll = make_poll()
    position = poll.positions.get(key="A")
    position.sources = [{"title": "Source", "url": url}]
    with pytest.raises(ValidationError, match=r"Source 1: .* is not an http or https address"):
        position.full_clean()


def test_the_model_accepts_http_and_https_sources_and_sources_without_a_link() -> None:
    position = make_poll().positions.get(key="A")
    position.sources = [
        {"title": "One", "url": "https://example.org/report?page=2"},
        {"title": "Two", "url": "http://example.org/"},
        {"title": "Three", "publisher": "A journal"},
    ]
    position.full_clean()  # raises ValidationError on a refused source
    position.save()
    position.refresh_from_db()
    assert [source.get("url") for source in position.sources] == [
        "https://example.org/report?page=2",
        "http://example.org/",
        None,
    ]


def source_row(field: str, source: dict[str, str]) -> dict[str, list[str]]:
    """A source typed into the first row of a position's sources editor."""
    return {
        f"{field}-rows": ["1"],
        f"{field}-0-title-en": [source["title"]],
        f"{field}-0-url": [source["url"]],
        f"{field}-0-extra": [""],
    }


def test_the_admin_form_refuses_a_javascript_source_and_stores_nothing() -> None:
    poll = make_poll()
    client = client_for(staff("olga", polls=(poll,)))
    url = reverse("admin:surveys_poll_change", args=[poll.pk])
    payload = form_fields(client.get(url).content.decode(), "poll_form")
    field = next(name for name in payload if name.endswith("-sources-rows")).removesuffix("-rows")
    payload.update(source_row(field, {"title": "Read this", "url": ATTACK}))
    response = client.post(url, payload)
    assert response.status_code == 200
    assert "is not an http or https address" in response.content.decode()
    assert not Position.objects.filter(sources__contains=[{"url": ATTACK}]).exists()


@pytest.mark.parametrize(
    "source",
    [
        {"title": "Read this", "url": "https://ok.example/\u0000x"},
        {"title": "Read\u0000this", "url": "https://ok.example/"},
    ],
)
def test_the_admin_form_refuses_a_nul_character_in_a_source_and_stores_nothing(
    source: dict[str, str],
) -> None:
    poll = make_poll()
    client = client_for(staff("olga", polls=(poll,)))
    url = reverse("admin:surveys_poll_change", args=[poll.pk])
    payload = form_fields(client.get(url).content.decode(), "poll_form")
    field = next(name for name in payload if name.endswith("-sources-rows")).removesuffix("-rows")
    before = list(Position.objects.order_by("pk").values_list("sources", flat=True))
    payload.update(source_row(field, source))
    response = client.post(url, payload)  # was a 500: PostgreSQL stores no NUL in JSON
    assert response.status_code == 200
    assert "may not contain a NUL character" in response.content.decode()
    assert list(Position.objects.order_by("pk").values_list("sources", flat=True)) == before


def test_a_definition_with_a_nul_character_is_refused_with_its_path() -> None:
    text = 'slug: "nul-poll"\ntitle: {en: "A\\0B"}\n'
    with pytest.raises(DefinitionError, match=r"title\.en: contains a NUL character"):
        parse_yaml(text, "nul.yaml")


def stored_attack(position_key: str = "A") -> Participant:
    """A poll whose source holds the attack, written around the validator as an older row would
    have been, and a treatment participant on the briefing page."""
    poll = make_poll(design={"control_share": 0.0, "counterbalance_positions": False})
    Position.objects.filter(poll=poll, key=position_key).update(
        sources=[{"title": "Read this", "url": ATTACK}, {"title": "Fine", "url": "https://x.org/"}]
    )
    return Participant.objects.create(
        poll=poll,
        consented_at=timezone.now(),
        step=Participant.Step.BRIEFING,
        arm=Participant.Arm.TREATMENT,
        position_order=["A", "B"],
    )


def test_the_briefing_page_never_links_a_stored_javascript_url() -> None:
    participant = stored_attack()
    slug = participant.poll.slug
    client = Client()
    signed = signing.get_cookie_signer(salt=cookie_name(slug) + COOKIE_SALT).sign(
        participant.public_id
    )
    client.cookies[cookie_name(slug)] = signed
    response = client.get(f"/p/{slug}/briefing/1/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Read this" in page
    assert "javascript:" not in page
    assert 'href="https://x.org/"' in page


def test_the_admin_preview_never_links_a_stored_javascript_url() -> None:
    poll = stored_attack().poll
    client = client_for(staff("olga", polls=(poll,)))
    query = {"step": "briefing", "page": 1, "arm": "treatment", "order": "A B", "language": "en"}
    response = client.get(reverse("admin:surveys_poll_preview_page", args=[poll.pk]), query)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Read this" in page
    assert "javascript:" not in page


def test_a_clone_does_not_copy_a_stored_javascript_url() -> None:
    poll = stored_attack().poll
    with pytest.raises(DefinitionError, match=r"positions\[0\]\.sources\[0\]\.url: .*not an http"):
        clone_poll(poll=poll, slug="copy", by=staff("olga"))
    assert not Poll.objects.filter(slug="copy").exists()
