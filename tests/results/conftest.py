"""Fixtures of the results-engine tests: the seed poll with simulated participants.

Django is imported inside the functions only, so the pure statistics tests run without it:
``pytest tests/results/test_stats.py -p no:django``.
"""

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
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
