"""The participant journey through the test client: steps, arms, resume, paradata, queries."""

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from surveys.models import Answer, Participant, Poll, Reason
from tests.factories import make_poll

pytestmark = pytest.mark.django_db

T1_PAGES: list[dict[str, Any]] = [
    {"q-rate_exit": "3", "q-rate_aid": "dk", "q-rate_escalate": "8"},
    {"q-rank.exit": "2", "q-rank.aid": "1", "q-rank.escalate": "3"},
    {"q-k_capital": "lviv"},
    {"q-leaning": "left"},
]
T2_PAGES: list[dict[str, Any]] = [
    {"q-rate_exit": "7", "q-rate_aid": "5", "q-rate_escalate": "8"},
    {"q-rank.exit": "1", "q-rank.aid": "2", "q-rank.escalate": "3"},
    {"q-k_capital": "kyiv"},
    {"q-balanced": "9"},
]


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    cache.clear()


def start(client: Client, poll: Poll, **params: str) -> Participant:
    url = reverse("surveys:entry", args=[poll.slug])
    page = client.get(url, params)
    assert page.status_code == 200
    entry = page.context["entry"]
    response = client.post(url, {"entry": entry, "consent": "yes"})
    assert response.status_code == 302
    assert response["Location"] == f"/p/{poll.slug}/t1/1/"
    return Participant.objects.get(entry_key=entry.split(":")[0])


def post_page(client: Client, url: str, data: dict[str, Any], wave: int | None = None) -> str:
    payload = dict(data)
    if wave is not None:
        payload["wave"] = str(wave)
    response = client.post(url, payload)
    assert response.status_code == 302, response.content.decode()[:3000]
    return response["Location"]


def answer_wave(client: Client, slug: str, step: str, pages: list[dict[str, Any]]) -> str:
    location = f"/p/{slug}/{step}/1/"
    for page in pages:
        assert client.get(location).status_code == 200
        location = post_page(client, location, page, wave=1 if step == "t1" else 2)
    return location


def walk(client: Client, poll: Poll, participant: Participant) -> None:
    """From T1 to the finish, whichever arm the participant is assigned."""
    location = answer_wave(client, poll.slug, "t1", T1_PAGES)
    participant.refresh_from_db()
    if participant.arm == Participant.Arm.TREATMENT:
        for page in range(1, 4):
            assert location == f"/p/{poll.slug}/briefing/{page}/"
            assert client.get(location).status_code == 200
            location = post_page(client, location, {})
        assert location == f"/p/{poll.slug}/deliberation/"
        location = post_page(
            client, location, {"r-exit.stance": "for", "r-exit.text": "Fewer deaths."}
        )
    assert location == f"/p/{poll.slug}/t2/1/"
    location = answer_wave(client, poll.slug, "t2", T2_PAGES)
    assert location == f"/p/{poll.slug}/done/"


def stored(participant: Participant) -> dict[tuple[str, int], tuple[Any, float | None, bool]]:
    return {
        (a.question.key, a.wave): (a.value, a.number, a.dont_know)
        for a in Answer.objects.filter(participant=participant).select_related("question")
    }


EXPECTED = {
    ("rate_exit", 1): (3, 3.0, False),
    ("rate_aid", 1): (None, None, True),
    ("rate_escalate", 1): (8, 8.0, False),
    ("rank", 1): (["aid", "exit", "escalate"], None, False),
    ("k_capital", 1): ("lviv", 2.0, False),
    ("leaning", 1): ("left", 1.0, False),
    ("rate_exit", 2): (7, 7.0, False),
    ("rate_aid", 2): (5, 5.0, False),
    ("rate_escalate", 2): (8, 8.0, False),
    ("rank", 2): (["exit", "aid", "escalate"], None, False),
    ("k_capital", 2): ("kyiv", 1.0, False),
    ("balanced", 2): (9, 9.0, False),
}


def test_treatment_journey_stores_exactly_the_answers_given_and_shows_the_movement() -> None:
    poll = make_poll(design={"control_share": 0.0, "group_size": 4})
    client = Client()
    participant = start(client, poll)
    walk(client, poll, participant)
    participant.refresh_from_db()
    assert participant.arm == "treatment"
    assert participant.position_order == ["A", "B"]
    assert participant.group == 1
    assert participant.completed_at and participant.briefed_at and participant.consented_at
    assert set(participant.step_times) == {"welcome", "t1", "briefing", "deliberation", "t2"}
    assert set(participant.position_seconds) == {"A", "B"}
    assert "too_fast" in participant.flags
    assert stored(participant) == EXPECTED
    reason = Reason.objects.get(participant=participant)
    assert (reason.option.key, reason.stance, reason.text) == ("exit", "for", "Fewer deaths.")
    finish = client.get(f"/p/{poll.slug}/done/").content.decode()
    assert "from 3 to 7" in finish
    assert "from don&#x27;t know to 5" in finish or "from don't know to 5" in finish


def test_control_journey_skips_briefing_and_deliberation() -> None:
    poll = make_poll(design={"control_share": 0.99, "group_size": 4})
    client = Client()
    participant = start(client, poll)
    walk(client, poll, participant)
    participant.refresh_from_db()
    assert participant.arm == "control"
    assert participant.briefed_at is None
    assert stored(participant) == EXPECTED
