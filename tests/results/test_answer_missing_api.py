"""The answers API says why an answer has no value (its missing kind), and keeps the
don't-know flag its clients read; participant ids are filtered within the poll."""

import pytest
from django.urls import reverse

from surveys.models import Answer, Participant
from tests.factories import make_poll

pytestmark = pytest.mark.django_db


def test_every_answer_carries_its_missing_kind_and_the_dont_know_flag(researcher, poll) -> None:
    refused = Answer.objects.filter(poll=poll, question__key="rate_exit", wave=1).first()
    assert refused is not None
    Answer.objects.filter(pk=refused.pk).update(value=None, number=None, missing="refused")
    url = reverse("api:poll-answers", kwargs={"slug": poll.slug})
    public_id = refused.participant.public_id
    response = researcher.get(url, {"participant": public_id, "item": "rate_exit", "wave": 1})
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert (row["participant"], row["value"], row["number"]) == (public_id, None, None)
    assert (row["missing"], row["dont_know"]) == ("refused", False)

    stored = {
        (a.participant.public_id, a.question.key, a.wave): a.missing
        for a in Answer.objects.filter(poll=poll).select_related("participant", "question")
    }
    rows = []
    next_url = f"{url}?wave=1"
    while next_url:
        page = researcher.get(next_url).json()
        rows += page["results"]
        next_url = page["next"]
    assert {(r["participant"], r["item"], r["wave"]): r["missing"] for r in rows} == {
        key: kind for key, kind in stored.items() if key[2] == 1
    }
    assert all(r["dont_know"] == (r["missing"] == "dont_know") for r in rows)
    assert {"dont_know", "refused", ""} <= {r["missing"] for r in rows}


def test_the_same_participant_id_in_another_poll_adds_nothing_here(researcher, poll) -> None:
    mine = poll.participants.filter(answers__isnull=False).first()
    elsewhere = make_poll(slug="elsewhere")
    twin = Participant.objects.create(poll=elsewhere, public_id=mine.public_id)
    Answer.objects.create(
        poll=elsewhere,
        participant=twin,
        question=elsewhere.questions.get(key="rate_exit"),
        wave=1,
        value=3,
        number=3.0,
    )
    url = reverse("api:poll-answers", kwargs={"slug": poll.slug})
    response = researcher.get(url, {"participant": mine.public_id})
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == mine.answers.count() > 0
    assert {row["participant"] for row in rows} == {mine.public_id}
