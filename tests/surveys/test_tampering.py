"""Bad input and tampering: a specific message next to the field, and nothing stored."""

from typing import Any

import pytest
from django.test import Client

from surveys.models import Answer, Participant, Reason
from tests.factories import make_poll
from tests.surveys.test_journey import (
    T1_PAGES,
    answer_wave,
    fresh_cache,
    post_page,
    start,
    through_briefing,
)

pytestmark = pytest.mark.django_db
__all__ = ["fresh_cache"]


@pytest.fixture
def journey() -> tuple[Client, Any, Participant]:
    poll = make_poll(design={"control_share": 0.0, "group_size": 4})
    client = Client()
    return client, poll, start(client, poll)


def rejected(client: Client, url: str, data: dict[str, Any]) -> str:
    response = client.post(url, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "There is a problem" in html
    assert Answer.objects.count() == 0
    return html


POLICY = {"q-rate_exit": "3", "q-rate_aid": "4", "q-rate_escalate": "5", "wave": "1"}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"q-rate_exit": "11"},
            "q-rate_exit",
            "“11” is not on the scale: choose a number from 0 to 10.",
        ),
        ({"q-rate_exit": "-1"}, "q-rate_exit", "“-1” is not on the scale"),
        ({"q-rate_exit": "seven"}, "q-rate_exit", "“seven” is not on the scale"),
        ({"q-rate_exit": "3.5"}, "q-rate_exit", "“3.5” is not on the scale"),
        (
            {"q-rate_exit": None},
            "q-rate_exit",
            "Choose a number from 0 to 10, or “Don&#x27;t know”.",
        ),
    ],
)
def test_a_bad_rating_is_rejected_next_to_its_field_and_nothing_is_stored(
    journey: tuple[Client, Any, Participant], change: dict[str, Any], field: str, message: str
) -> None:
    client, poll, _ = journey
    data = {**POLICY, **change}
    data = {k: v for k, v in data.items() if v is not None}
    html = rejected(client, f"/p/{poll.slug}/t1/1/", data)
    assert f'id="{field}-error"' in html
    assert message.replace("'", "&#x27;") in html or message in html
    assert f'href="#{field}"' in html


def test_two_values_for_one_rating_are_rejected(journey: tuple[Client, Any, Participant]) -> None:
    client, poll, _ = journey
    data = {**POLICY, "q-rate_exit": ["3", "9"]}
    html = rejected(client, f"/p/{poll.slug}/t1/1/", data)
    assert "Give only one answer." in html


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"q-nonsense": "1"}, "“q-nonsense” is not a question of this poll."),
        ({"q-balanced": "5"}, "“q-balanced” belongs to the other questionnaire"),
        ({"q-k_capital": "kyiv"}, "“q-k_capital” is on another page of this questionnaire."),
        ({"wave": "2"}, "This form belongs to the other questionnaire. Nothing was saved."),
    ],
)
def test_answers_for_unknown_items_other_pages_or_the_other_wave_store_nothing(
    journey: tuple[Client, Any, Participant], extra: dict[str, str], message: str
) -> None:
    client, poll, _ = journey
    html = rejected(client, f"/p/{poll.slug}/t1/1/", {**POLICY, **extra})
    assert message in html


def test_a_ranking_with_a_repeated_rank_is_rejected(
    journey: tuple[Client, Any, Participant],
) -> None:
    client, poll, _ = journey
    post_page(client, f"/p/{poll.slug}/t1/1/", POLICY)
    Answer.objects.all().delete()
    url = f"/p/{poll.slug}/t1/2/"
    data = {"wave": "1", "q-rank.exit": "1", "q-rank.aid": "1", "q-rank.escalate": "3"}
    html = rejected(client, url, data)
    assert "Each rank can be used only once; used more than once: 1." in html
    html = rejected(client, url, {"wave": "1", "q-rank.exit": "1"})
    assert "Give every option a rank, or none at all." in html
    html = rejected(
        client, url, {"wave": "1", "q-rank.exit": "1", "q-rank.aid": "2", "q-rank.escalate": "4"}
    )
    assert "Ranks go from 1 to 3." in html
    html = rejected(client, url, {"wave": "1"})
    assert "Give each option a rank, 1 for your first choice." in html


def test_a_choice_that_is_not_offered_is_rejected(journey: tuple[Client, Any, Participant]) -> None:
    client, poll, participant = journey
    Participant.objects.filter(pk=participant.pk).update(page=2)
    html = rejected(client, f"/p/{poll.slug}/t1/3/", {"wave": "1", "q-k_capital": "moscow"})
    assert "“moscow” is not one of the answers offered." in html
    html = rejected(client, f"/p/{poll.slug}/t1/3/", {"wave": "1"})
    assert "Choose one answer." in html


def test_a_rejected_page_shows_the_values_given_again(
    journey: tuple[Client, Any, Participant],
) -> None:
    client, poll, _ = journey
    html = rejected(client, f"/p/{poll.slug}/t1/1/", {**POLICY, "q-rate_exit": "99"})
    assert 'name="q-rate_aid" value="4" checked' in html


def test_skipping_ahead_by_url_leads_back_to_the_current_step(
    journey: tuple[Client, Any, Participant],
) -> None:
    client, poll, _ = journey
    for url in (
        f"/p/{poll.slug}/t1/3/",
        f"/p/{poll.slug}/t2/1/",
        f"/p/{poll.slug}/briefing/1/",
        f"/p/{poll.slug}/done/",
    ):
        assert client.get(url)["Location"] == f"/p/{poll.slug}/t1/1/"
        response = client.post(url, {"wave": "2", "q-rate_exit": "3"})
        assert response["Location"] == f"/p/{poll.slug}/t1/1/"
    assert Answer.objects.count() == 0


def test_t1_is_frozen_once_the_briefing_is_shown(journey: tuple[Client, Any, Participant]) -> None:
    client, poll, _ = journey
    location = answer_wave(client, poll.slug, "t1", T1_PAGES)
    assert location == f"/p/{poll.slug}/briefing/1/"
    before = list(Answer.objects.order_by("id").values_list("value", flat=True))
    response = client.post(f"/p/{poll.slug}/t1/1/", {**POLICY, "q-rate_exit": "10"})
    assert response["Location"] == location
    assert client.get(f"/p/{poll.slug}/t1/1/")["Location"] == location
    assert list(Answer.objects.order_by("id").values_list("value", flat=True)) == before


def test_a_reason_with_no_stance_is_rejected_and_nothing_is_stored(
    journey: tuple[Client, Any, Participant],
) -> None:
    client, poll, participant = journey
    url = through_briefing(client, poll)
    response = client.post(url, {"r-exit.text": "No stance given", "r-ghost.text": "x"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "You wrote a reason about “Option exit”: say whether it is for or against." in html
    assert "“r-ghost.text” is not an option of this poll." in html
    assert 'id="r-exit-stance-error"' in html
    assert Reason.objects.count() == 0
    participant.refresh_from_db()
    assert participant.step == "deliberation"


def test_posts_without_a_csrf_token_are_refused(journey: tuple[Client, Any, Participant]) -> None:
    _, poll, _ = journey
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = journey[0].cookies
    response = strict.post(f"/p/{poll.slug}/t1/1/", POLICY)
    assert response.status_code == 403
    assert Answer.objects.count() == 0
    fresh = Client(enforce_csrf_checks=True)
    assert fresh.post(f"/p/{poll.slug}/", {"consent": "yes"}).status_code == 403
    assert Participant.objects.count() == 1


def test_back_to_a_closed_step_says_it_is_closed_and_shows_no_form(
    journey: tuple[Client, Any, Participant],
) -> None:
    client, poll, participant = journey
    deliberation = through_briefing(client, poll)
    page = client.get(deliberation)
    # Step pages are never kept by the browser: Back fetches them again.
    assert page["Cache-Control"] == "private, no-store"
    location = post_page(client, deliberation, {"r-exit.stance": "for", "r-exit.text": "Kept."})
    assert location == f"/p/{poll.slug}/t2/1/"
    # Browser Back from T2: the deliberation is closed; the participant is sent to T2, which
    # says so, once.
    back = client.get(deliberation)
    assert back.status_code == 302 and back["Location"] == location
    here = client.get(location)
    html = here.content.decode()
    assert "The step “Deliberation” is closed" in html
    assert 'id="reasons-form"' not in html
    assert here["Cache-Control"] == "private, no-store"
    assert "is closed" not in client.get(location).content.decode()
    # A form kept from before is sent anyway: nothing changes, and the page says why.
    client.post(deliberation, {"r-exit.stance": "against", "r-exit.text": "Changed."})
    assert list(Reason.objects.values_list("stance", "text")) == [("for", "Kept.")]
    assert "The step “Deliberation” is closed" in client.get(location).content.decode()
    # A skip ahead is refused without the closed-step notice (it was never open).
    client.get(f"/p/{poll.slug}/done/")
    assert "is closed" not in client.get(location).content.decode()
    participant.refresh_from_db()
    assert participant.step == "t2"


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("en", "The step “Briefing” is behind you."),
        ("uk", "Крок «Інформаційні матеріали» уже позаду."),
    ],
)
def test_back_to_a_step_without_input_says_it_is_behind_not_that_answers_are_saved(
    journey: tuple[Client, Any, Participant], language: str, said: str
) -> None:
    client, poll, _ = journey
    client.get(through_briefing(client, poll), {"lang": language})
    back = client.get(f"/p/{poll.slug}/briefing/3/")
    html = client.get(back["Location"]).content.decode()
    assert said in html
    assert "saved" not in html.split(said)[1][:80] and "збережено" not in html
