"""The faster bulk-loading steps give exactly what the straightforward ones gave.

``positions`` (a lookup table by id, or a binary search for sparse ids) against a dictionary;
``arrange_answers`` against a per-row loop; the COPY read block by block against one whole
read; ``participant_digests`` against Django's ``salted_hmac`` per participant, so snapshots
stored before keep comparing equal in the release rule.
"""

from types import SimpleNamespace

import numpy as np
import pytest
from django.db import transaction
from django.utils.crypto import salted_hmac

from results.compute.loading import (
    ANSWER_ROW,
    PollData,
    _copy_header_size,
    arrange_answers,
    copy_numeric_answers,
    copy_numeric_blocks,
    iterate_numeric_answers,
    load_poll_data,
    positions,
)
from results.compute.recompute import participant_digests
from results.simulate import add_simulated_participants


@pytest.mark.parametrize("spread", [1, 3, 10_000_000], ids=["dense", "gaps", "sparse"])
def test_positions_match_a_dictionary(spread: int) -> None:
    rng = np.random.default_rng(spread)
    ids = rng.permutation(np.arange(50, 50 + 400 * spread, spread, dtype=np.int64))
    keys = np.concatenate([rng.choice(ids, 5_000), [0, 49, ids.max() + 1, 10**12]])
    keys = np.concatenate([keys, ids + (1 if spread > 1 else 10**9)])  # absent neighbours
    where = {int(key): index for index, key in enumerate(ids)}
    expected = np.array([where.get(int(key), -1) for key in keys])
    assert np.array_equal(positions(keys, ids), expected)


def test_positions_of_nothing() -> None:
    assert positions(np.array([1, 2], dtype=np.int64), np.array([], dtype=np.int64)).tolist() == [
        -1,
        -1,
    ]
    assert positions(np.array([], dtype=np.int64), np.array([3], dtype=np.int64)).size == 0


def test_arrange_answers_matches_a_loop() -> None:
    rng = np.random.default_rng(7)
    participant_ids = np.sort(rng.choice(np.arange(1_000, 9_000), 300, replace=False))
    questions = [SimpleNamespace(id=qid) for qid in (41, 7, 300)]
    n = 4_000
    rows = np.empty(n, dtype=ANSWER_ROW)
    # Some rows belong to nobody analysed, to a removed question or to a wave that is not 1/2.
    rows["participant"] = rng.choice(np.concatenate([participant_ids, [5, 99_999]]), n)
    rows["question"] = rng.choice([41, 7, 300, 8], n)
    rows["wave"] = rng.choice([1, 2, 3], n, p=[0.45, 0.45, 0.1])
    rows["number"] = rng.integers(0, 11, n).astype(float)
    rows["missing"] = rng.choice([0, 0, 0, 1, 2, 3, 4], n)
    # One answer per (participant, question, wave), as the database's constraint has it.
    _, first = np.unique(rows[["participant", "question", "wave"]], return_index=True)
    rows = rows[np.sort(first)]

    values, missing, answered = arrange_answers(rows, participant_ids, questions)

    expected_values = np.full(values.shape, np.nan)
    expected_missing = np.zeros(missing.shape, dtype=np.int8)
    expected_answered = np.zeros(answered.shape, dtype=bool)
    place = {int(pid): i for i, pid in enumerate(participant_ids)}
    question_index = {q.id: j for j, q in enumerate(questions)}
    for row in rows:
        i, j = place.get(int(row["participant"])), question_index.get(int(row["question"]))
        wave = int(row["wave"]) - 1
        if i is None or j is None or wave not in (0, 1):
            continue
        kind = int(row["missing"])
        expected_values[j, wave, i] = np.nan if kind else row["number"]
        expected_missing[j, wave, i] = kind
        expected_answered[j, wave, i] = kind != 4
    assert np.array_equal(values, expected_values, equal_nan=True)
    assert np.array_equal(missing, expected_missing)
    assert np.array_equal(answered, expected_answered)
    assert answered.any() and (missing == 2).any()  # the data exercised every branch


def test_participant_digests_equal_salted_hmac() -> None:
    rng = np.random.default_rng(3)
    n = 25
    values = rng.integers(0, 11, (2, 2, n)).astype(float)
    values[0, 1, :5] = np.nan
    data = PollData(
        poll_id=1,
        min_subgroup_size=5,
        questions=[],
        option_axis={},
        participant_ids=np.arange(10, 10 + n, dtype=np.int64),
        arm=rng.integers(0, 3, n).astype(np.int8),
        group=rng.integers(-1, 4, n),
        weight=np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
        values=values,
        dont_know=np.isnan(values),
        answered=~np.isnan(values),
        rankings={(1, 1): rng.permutation(np.tile([1.0, 2.0, np.nan], (n, 1)).T).T},
    )
    digests = participant_digests(data)

    columns = [
        data.arm.reshape(1, -1),
        data.group.reshape(1, -1),
        data.weight.reshape(1, -1),
        data.values.reshape(-1, n),
        data.dont_know.reshape(-1, n),
        data.answered.reshape(-1, n),
        data.rankings[(1, 1)].T,
    ]
    rows = np.vstack([np.asarray(c, dtype=np.float64) for c in columns]).T
    expected = {
        str(int(pid)): salted_hmac("results.release", row.tobytes()).hexdigest()[:16]
        for pid, row in zip(data.participant_ids, rows, strict=True)
    }
    assert digests == expected
    assert len(set(digests.values())) == n


@pytest.mark.django_db
def test_copy_in_small_blocks_reads_every_answer_once(seed_poll) -> None:
    """Blocks of a few rows (the stream cut anywhere) give the rows of one whole COPY, and the
    loaded arrays equal those arranged from the rows read through the ORM."""
    add_simulated_participants(poll=seed_poll, n=12, seed=4)
    whole = copy_numeric_answers(seed_poll.pk)
    blocks = list(copy_numeric_blocks(seed_poll.pk, block_rows=7))
    assert len(blocks) == -(-whole.size // 7) and all(b.size == 7 for b in blocks[:-1])
    assert np.concatenate(blocks).tobytes() == whole.tobytes()

    with transaction.atomic():
        data = load_poll_data(seed_poll.pk)
    values, missing, answered = arrange_answers(
        iterate_numeric_answers(seed_poll.pk), data.participant_ids, data.questions
    )
    assert data.n == 12 and data.n_answers == whole.size
    assert np.array_equal(data.values, values, equal_nan=True)
    assert np.array_equal(data.missing, missing)
    assert np.array_equal(data.answered, answered)


def test_a_stream_that_is_not_a_binary_copy_is_refused() -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL binary COPY"):
        _copy_header_size(memoryview(b"COPY\n" + bytes(20)))
