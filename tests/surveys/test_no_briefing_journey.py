"""A poll without positions has no briefing: the treatment arm goes from the first
questionnaire to the deliberation, and the briefing's address leads back to where they are."""

import pytest
from django.core.cache import cache
from django.test import Client

from surveys.models import Participant, Poll
from tests.factories import make_poll, small_definition
from tests.surveys.test_journey import T1_PAGES, T2_PAGES, answer_wave, post_page, start

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    cache.clear()


def no_briefing_poll() -> Poll:
    options = [
        {key: value for key, value in option.items() if key != "position"}
        for option in small_definition()["options"]
    ]
    # Everyone in the treatment arm, so the walk below goes through the deliberation.
    design = {"control_share": 0, "group_size": 4, "min_subgroup_size": 2}
    return make_poll(positions=[], options=options, design=design)


def test_the_treatment_arm_goes_from_t1_to_the_deliberation_without_a_briefing() -> None:
    poll = no_briefing_poll()
    assert poll.positions.count() == 0
    client = Client()
    participant = start(client, poll)
    location = answer_wave(client, poll.slug, "t1", T1_PAGES)
    participant.refresh_from_db()
    assert participant.arm == Participant.Arm.TREATMENT
    assert participant.position_order == []
    assert location == f"/p/{poll.slug}/deliberation/"
    # The briefing's address is not a step of this poll: it leads to the current page.
    briefing = client.get(f"/p/{poll.slug}/briefing/1/")
    assert briefing.status_code == 302
    assert briefing["Location"] == f"/p/{poll.slug}/deliberation/"
    page = client.get(location)
    assert page.status_code == 200
    location = post_page(client, location, {"r-exit.stance": "for", "r-exit.text": "Cheaper."})
    assert location == f"/p/{poll.slug}/t2/1/"
    assert answer_wave(client, poll.slug, "t2", T2_PAGES) == f"/p/{poll.slug}/done/"
    participant.refresh_from_db()
    assert participant.completed_at is not None
    assert participant.briefed_at is None
