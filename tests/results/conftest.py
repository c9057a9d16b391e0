"""Fixtures of the results-engine tests: the seed poll with simulated participants."""

from pathlib import Path

import pytest

from results.simulate import add_simulated_participants
from surveys.definitions import load_definition, save_poll
from surveys.models import Poll

SEED = Path(__file__).resolve().parents[2] / "seeds" / "west-putin-exit.yaml"


def load_seed_poll() -> Poll:
    poll, _ = save_poll(data=load_definition(SEED), source=str(SEED))
    return poll


@pytest.fixture
def seed_poll(db: None) -> Poll:
    return load_seed_poll()


@pytest.fixture
def seed_poll_with_participants(seed_poll: Poll) -> Poll:
    add_simulated_participants(poll=seed_poll, n=300, seed=7)
    return seed_poll
