"""Interface translations: compiled Ukrainian catalog in the repository, used by the pages."""
# ruff: noqa: RUF001 - the expected texts are Ukrainian.

import gettext
import json
import re
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation

from tests.factories import make_poll
from tests.surveys.test_journey import start

ROOT = Path(__file__).resolve().parents[2]


def test_the_compiled_catalog_is_committed_and_matches_its_source() -> None:
    folder = ROOT / "deliberate" / "locale" / "uk" / "LC_MESSAGES"
    with (folder / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    pairs = re.findall(r'^msgid (".+")\nmsgstr (".+")$', (folder / "django.po").read_text(), re.M)
    assert len(pairs) > 80
    for msgid, msgstr in pairs:
        assert compiled.gettext(json.loads(msgid)) == json.loads(msgstr)


def test_every_journey_string_has_a_ukrainian_translation() -> None:
    text = (ROOT / "deliberate/locale/uk/LC_MESSAGES/django.po").read_text()
    assert "#, fuzzy" not in text
    with translation.override("uk"):
        assert translation.gettext("Don't know") == "Не знаю"
        assert translation.gettext("There is a problem") == "Є проблема"


@pytest.mark.django_db
def test_a_ukrainian_page_has_ukrainian_interface_and_content() -> None:
    poll = make_poll(design={"control_share": 0.0})
    client = Client()
    start(client, poll, lang="uk")
    html = client.get(f"/p/{poll.slug}/t1/1/").content.decode()
    assert "Не знаю" in html and "Далі" in html
    assert "Policies (uk)" in html
    response = client.post(f"/p/{poll.slug}/t1/1/", {"wave": "1"})
    assert "Оберіть число від 0 до 10 або «Не знаю»." in response.content.decode()


def test_ukrainian_has_three_plural_forms_chosen_by_the_standard_rule() -> None:
    text = (ROOT / "deliberate/locale/uk/LC_MESSAGES/django.po").read_text()
    header = re.search(r"Plural-Forms: (.*?)\\n", text.replace('"\n"', ""))
    assert header is not None
    assert header.group(1).startswith("nplurals=3;")
    expected = {
        1: "1 запитання потребує відповіді.",
        2: "2 запитання потребують відповіді.",
        4: "4 запитання потребують відповіді.",
        5: "5 запитань потребують відповіді.",
        11: "11 запитань потребують відповіді.",
        12: "12 запитань потребують відповіді.",
        21: "21 запитання потребує відповіді.",
        22: "22 запитання потребують відповіді.",
        25: "25 запитань потребують відповіді.",
    }
    with translation.override("uk"):
        for count, message in expected.items():
            shown = translation.ngettext(
                "%(count)s question needs an answer.", "%(count)s questions need an answer.", count
            ) % {"count": count}
            assert shown == message


@pytest.mark.django_db
def test_switching_language_mid_page_keeps_the_unsaved_answers_and_saves_none() -> None:
    from surveys.models import Answer

    poll = make_poll(design={"control_share": 0.0})
    client = Client()
    start(client, poll)
    url = f"/p/{poll.slug}/t1/1/"
    page = client.get(url).content.decode()
    assert '<form method="post" action="/p/small-poll/t1/1/" novalidate id="step-form">' in page
    assert re.search(
        r'<button[^>]*form="step-form"[^>]*formaction="/p/small-poll/t1/1/\?lang=uk"', page
    )
    response = client.post(
        f"{url}?lang=uk", {"wave": "1", "q-rate_exit": "3", "q-rate_aid": "dk", "draft": "uk"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="uk">' in html and "Policies (uk)" in html
    assert 'name="q-rate_exit" value="3" checked' in html
    assert 'name="q-rate_aid" value="dk" checked' in html
    # Not submitted: no message for the question left blank, nothing stored, still on page 1.
    assert "Є проблема" not in html
    assert not Answer.objects.exists()
    assert client.get(f"/p/{poll.slug}/")["Location"] == url
    assert client.cookies["django_language"].value == "uk"


def test_every_language_switch_names_a_language_in_itself_and_survives_an_unknown_code() -> None:
    from surveys.journey.access import language_links

    assert language_links(["en", "uk", "xx-unknown"]) == [
        ("en", "English"),
        ("uk", "Українська"),
        ("xx-unknown", "xx-unknown"),
    ]
