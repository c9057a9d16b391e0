"""The deliberation page's reasons: no stance chosen in advance, a stance needed only with text,
and every message names the option it is about."""

import re

import pytest
from django.http import QueryDict
from django.test import Client
from django.utils import translation

from surveys.journey.forms import ReasonsForm
from surveys.models import Participant, Reason
from tests.factories import make_poll
from tests.surveys.test_journey import fresh_cache, post_page, start, through_briefing

pytestmark = pytest.mark.django_db
__all__ = ["fresh_cache"]


def at_deliberation(lang: str = "en") -> tuple[Client, str, Participant]:
    poll = make_poll(design={"control_share": 0.0, "group_size": 4})
    client = Client()
    participant = start(client, poll, lang=lang)
    return client, through_briefing(client, poll), participant


def test_no_stance_is_chosen_in_advance() -> None:
    client, url, _ = at_deliberation()
    html = client.get(url).content.decode()
    stances = re.findall(r'<input[^>]*name="r-exit\.stance"[^>]*>', html)
    assert [re.search(r'value="(\w*)"', tag).group(1) for tag in stances] == ["for", "against"]  # type: ignore[union-attr]
    assert not any(" checked" in tag for tag in stances)
    assert ">No reason<" not in html
    # The summary links to #r-exit-stance: that is the first stance's id.
    assert 'id="r-exit-stance"' in stances[0]


def test_a_typed_reason_without_a_stance_names_its_option_and_keeps_the_text() -> None:
    client, url, participant = at_deliberation()
    response = client.post(url, {"r-exit.text": "Fewer deaths, sooner."})
    html = response.content.decode()
    assert response.status_code == 200
    message = "You wrote a reason about “Option exit”: say whether it is for or against."
    summary = html.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    assert f'<a href="#r-exit-stance">{message}</a>' in summary
    in_place = re.search(r'<p class="field-error" id="r-exit-stance-error">(.*?)</p>', html, re.S)
    assert in_place is not None and message in in_place.group(1)
    assert 'aria-describedby="r-exit-stance-error"' in html
    assert re.search(r'<input[^>]*id="r-exit-stance"[^>]*aria-invalid="true"', html)
    assert "Fewer deaths, sooner.</textarea>" in html
    assert Reason.objects.count() == 0
    participant.refresh_from_db()
    assert participant.step == "deliberation"


def test_a_stance_without_text_is_no_reason_and_no_error() -> None:
    client, url, _ = at_deliberation()
    location = post_page(
        client,
        url,
        {"r-exit.stance": "for", "r-aid.stance": "against", "r-aid.text": "Too slow."},
    )
    assert location != url
    assert list(Reason.objects.values_list("option__key", "stance", "text")) == [
        ("aid", "against", "Too slow.")
    ]


def test_a_tampered_stance_and_an_overlong_reason_name_their_options() -> None:
    client, url, _ = at_deliberation()
    response = client.post(
        url,
        {
            "r-exit.stance": "maybe",
            "r-exit.text": "x",
            "r-aid.stance": "for",
            "r-aid.text": "y" * 2001,
        },
    )
    html = response.content.decode()
    assert "For “Option exit”, choose “For” or “Against”." in html
    assert "Your reason about “Option aid” is too long: keep it under 2000 characters." in html
    assert '<a href="#r-aid-text">' in html
    assert Reason.objects.count() == 0


def test_ukrainian_messages_name_the_option_in_ukrainian() -> None:
    client, url, _ = at_deliberation("uk")
    html = client.post(url, {"r-escalate.text": "Бо інакше не зупиниться."}).content.decode()
    assert (
        "Ви написали аргумент щодо варіанта «Option escalate (uk)»: вкажіть, він «за» чи «проти»."
        in html
    )
    assert "Ваш аргумент «за» чи «проти» цього варіанта?" in html


def test_a_long_option_text_is_cut_to_a_few_words_in_messages() -> None:
    text = "Offer Putin an amnesty and a quiet retirement, instead of a war-crimes trial."
    with translation.override("en"):
        form = ReasonsForm(
            QueryDict("r-amnesty.text=x"), option_keys=["amnesty"], option_texts={"amnesty": text}
        )
        assert not form.is_valid()
    assert form.option_errors() == {
        "r-amnesty.stance": "You wrote a reason about “Offer Putin an amnesty and a quiet "
        "retirement,…”: say whether it is for or against."
    }


def with_a_reason_to_report(lang: str = "en") -> tuple[Client, str, Reason]:
    """A reader at the deliberation page of a group where another member gave a reason (in
    the reader's language: small groups form within a language)."""
    author_client, url, author = at_deliberation(lang)
    post_page(author_client, url, {"r-exit.stance": "for", "r-exit.text": "Fewer deaths."})
    reader = Client()
    start(reader, author.poll, lang=lang)
    through_briefing(reader, author.poll)
    return reader, url, Reason.objects.get()


DRAFTS = {
    "r-aid.text": "Aid keeps them fighting, half typed",
    "r-aid.stance": "against",
    "r-escalate.text": "No stance chosen yet",
}


def test_reporting_without_javascript_brings_the_typed_reasons_back_unsaved() -> None:
    reader, url, reason = with_a_reason_to_report()
    page = reader.get(url).content.decode()
    # The report button sends the reasons form along, to the report's address.
    button = re.search(r'<button[^>]*class="link report"[^>]*>', page)
    assert button is not None
    assert 'form="reasons-form"' in button.group(0)
    assert f'formaction="/p/{reason.poll.slug}/reasons/{reason.id}/report/#reason-{reason.id}"' in (
        button.group(0)
    )
    response = reader.post(f"/p/{reason.poll.slug}/reasons/{reason.id}/report/", DRAFTS)
    html = response.content.decode()
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    assert "Aid keeps them fighting, half typed</textarea>" in html
    assert "No stance chosen yet</textarea>" in html
    assert re.search(r'<input[^>]*name="r-aid\.stance" value="against"[^>]*checked', html)
    # A draft is not a submission: no error for the reason without a stance, nothing saved.
    assert "There is a problem" not in html and "say whether it is for or against" not in html
    assert Reason.objects.count() == 1
    assert "You reported this reason." in html
    # The page's own form still posts to the step, not to the report.
    assert f'<form method="post" action="{url}" novalidate id="reasons-form">' in html
    reason.refresh_from_db()
    assert (reason.state, reason.report_count) == ("reported", 1)


def test_reporting_with_javascript_answers_json_and_counts_once() -> None:
    reader, _, reason = with_a_reason_to_report("uk")
    address = f"/p/{reason.poll.slug}/reasons/{reason.id}/report/"
    response = reader.post(address, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json() == {
        "reported": True,
        "message": "Дякуємо. Модератор перегляне цей аргумент.",
    }
    assert reader.post(address, HTTP_ACCEPT="application/json").json()["reported"] is True
    reason.refresh_from_db()
    assert reason.report_count == 1


def test_the_author_cannot_report_their_own_reason() -> None:
    author_client, url, author = at_deliberation()
    post_page(author_client, url, {"r-exit.stance": "for", "r-exit.text": "Mine."})
    reason = Reason.objects.get()
    response = author_client.post(
        f"/p/{author.poll.slug}/reasons/{reason.id}/report/", HTTP_ACCEPT="application/json"
    )
    assert response.json()["reported"] is False
    reason.refresh_from_db()
    assert reason.report_count == 0


def test_switching_language_on_the_reasons_page_keeps_them_unsaved() -> None:
    client, url, participant = at_deliberation()
    page = client.get(url).content.decode()
    switch = re.search(r'<button[^>]*name="draft"[^>]*lang="uk"[^>]*>Українська</button>', page)
    assert switch is not None and 'form="reasons-form"' in switch.group(0)
    response = client.post(f"{url}?lang=uk", {**DRAFTS, "draft": "uk"})
    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="uk">' in html
    assert "Aid keeps them fighting, half typed</textarea>" in html
    assert "Є проблема" not in html
    assert Reason.objects.count() == 0
    participant.refresh_from_db()
    assert participant.step == "deliberation" and participant.language == "uk"
