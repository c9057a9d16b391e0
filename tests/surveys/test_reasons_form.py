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
from tests.surveys.test_journey import T1_PAGES, answer_wave, fresh_cache, post_page, start

pytestmark = pytest.mark.django_db
__all__ = ["fresh_cache"]


def at_deliberation(lang: str = "en") -> tuple[Client, str, Participant]:
    poll = make_poll(design={"control_share": 0.0, "group_size": 4})
    client = Client()
    participant = start(client, poll, lang=lang)
    answer_wave(client, poll.slug, "t1", T1_PAGES)
    for page in (1, 2, 3):
        post_page(client, f"/p/{poll.slug}/briefing/{page}/", {})
    return client, f"/p/{poll.slug}/deliberation/", participant


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
