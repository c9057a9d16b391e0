"""Fixtures of the results-engine tests: the seed poll with simulated participants.

The research API's fixtures (a small poll with answers, researchers with tokens) are here too;
their plain helpers live in ``api_fixtures``. Django is imported inside the functions only, so
the pure statistics tests run without it: ``pytest tests/results/stats -p no:django``.
"""

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from rest_framework.test import APIClient

    from results.models import ResultSnapshot
    from surveys.models import Poll

SEED = Path(__file__).resolve().parents[2] / "seeds" / "west-putin-exit.yaml"


# With 13 pairs or fewer and ties, scipy's Wilcoxon (called by results.stats.item_change)
# enumerates 2^n sign flips through a slow Python path, about half a second a call; tests raise
# the minimum subgroup size past it so they stay fast (the default of 5 is exercised by the
# seed-poll check of the benchmark notes).
FAST_MIN_SUBGROUP_SIZE = 14


def load_seed_poll() -> "Poll":
    from surveys.definition.files import load_definition, save_poll
    from surveys.models import Poll

    poll, _ = save_poll(data=load_definition(SEED), source=str(SEED))
    Poll.objects.filter(pk=poll.pk).update(min_subgroup_size=FAST_MIN_SUBGROUP_SIZE)
    poll.refresh_from_db()
    return poll


@pytest.fixture
def seed_poll(db: None) -> "Poll":
    return load_seed_poll()


@pytest.fixture
def seed_poll_with_participants(seed_poll: "Poll") -> "Poll":
    from results.simulate import add_simulated_participants

    add_simulated_participants(poll=seed_poll, n=300, seed=7, group_size=15)
    return seed_poll


# --- the research API: a small poll with answers, and researchers with tokens ------------------


@pytest.fixture
def poll(db: None) -> "Poll":
    from surveys.definition.files import save_poll, validate
    from tests.results.api_fixtures import fill_poll, research_definition

    data = validate(research_definition(), "<test>")
    poll, _ = save_poll(data=data, source="<test>")
    fill_poll(poll)
    return poll


@pytest.fixture
def snapshot(poll: "Poll") -> "ResultSnapshot":
    from django.utils import timezone

    from results.models import ResultSnapshot
    from tests.results.api_fixtures import sample_payload

    return ResultSnapshot.objects.create(
        poll=poll,
        n_participants=24,
        n_treatment=12,
        n_control=12,
        fingerprint="f" * 64,
        code_version="test",
        payload=sample_payload(),
        released_at=timezone.now(),  # aggregates-only grants read released snapshots only
    )


@pytest.fixture
def make_researcher(db: None) -> Callable[..., tuple[Any, str]]:
    """Makes a user with the given grants and an API token; returns (user, token secret)."""
    from django.contrib.auth import get_user_model

    from results.access import grant_access, issue_api_token

    def make(
        name: str,
        *,
        polls: tuple["Poll", ...] = (),
        can_import: bool = False,
        level: str = "microdata",
    ) -> tuple[Any, str]:
        user = get_user_model().objects.create_user(name, password="x-unused-password")
        for poll in polls:
            grant_access(user=user, poll=poll, level=level, can_import=can_import)
        return user, issue_api_token(user=user, name="tests").secret

    return make


@pytest.fixture
def researcher(poll: "Poll", make_researcher: Callable[..., tuple[Any, str]]) -> "APIClient":
    from tests.results.api_fixtures import bearer

    _, secret = make_researcher("granted", polls=(poll,), can_import=True)
    return bearer(secret)


@pytest.fixture
def outsider(poll: "Poll", make_researcher: Callable[..., tuple[Any, str]]) -> "APIClient":
    from tests.results.api_fixtures import bearer

    _, secret = make_researcher("outsider")
    return bearer(secret)
