"""What the questionnaire pages keep from one request to the next (participant reads compiled
once per process, page form fields built once) gives what building them anew gives, and a
participant still finds their own saved answers on the cached page."""

from typing import Any

import pytest
from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection, transaction
from django.db.models import OuterRef
from django.db.models.functions import JSONArray
from django.db.transaction import TransactionManagementError
from django.http import QueryDict
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from surveys.definition.spec import poll_spec
from surveys.journey import access
from surveys.journey.forms import page_form
from surveys.models import Answer, Participant
from tests.factories import make_poll
from tests.surveys.test_journey import T1_PAGES, post_page, start

pytestmark = pytest.mark.django_db


def field_values(participant: Participant) -> dict[str, Any]:
    return {f.attname: getattr(participant, f.attname) for f in Participant._meta.concrete_fields}


def test_the_compiled_read_is_the_querysets_participant_poll_and_answers() -> None:
    poll = make_poll(design={"control_share": 0.0})
    client = Client()
    started = start(client, poll)
    post_page(client, f"/p/{poll.slug}/t1/1/", T1_PAGES[0], wave=1)
    answers = Answer.objects.filter(participant=OuterRef("pk"), wave=1).values(
        row=JSONArray("question_id", "value", "missing")
    )
    expected = (
        Participant.objects.select_related("poll")
        .annotate(wave_answers=ArraySubquery(answers))
        .get(pk=started.pk)
    )
    found = access.participant_by_public_id(started.public_id, poll.slug, 1)
    assert field_values(found) == field_values(expected)
    assert found.poll == expected.poll
    assert found.poll.title == expected.poll.title
    assert found.poll.updated_at == expected.poll.updated_at
    assert sorted(map(tuple, found.wave_answers)) == sorted(map(tuple, expected.wave_answers))
    assert len(found.wave_answers) == 3  # including the don't know
    assert access.participant_by_public_id(started.public_id, poll.slug, 2).wave_answers == []
    without = access.participant_by_public_id(started.public_id, poll.slug)
    assert not hasattr(without, "wave_answers")


def test_the_compiled_read_finds_no_one_for_another_poll_or_a_revoked_participant() -> None:
    poll = make_poll(design={"control_share": 0.0})
    other = make_poll(slug="other", design={"control_share": 0.0})
    started = start(Client(), poll)
    assert access.participant_by_public_id(started.public_id, other.slug) is None
    assert access.participant_by_public_id("no-such-id", poll.slug, 1) is None
    Participant.objects.filter(pk=started.pk).update(revoked_at=timezone.now())
    assert access.participant_by_public_id(started.public_id, poll.slug) is None


@pytest.mark.django_db(transaction=True)  # outside the test's own transaction
def test_the_locked_read_needs_a_transaction_and_a_participant() -> None:
    poll = make_poll(design={"control_share": 0.0})
    started = start(Client(), poll)
    with pytest.raises(TransactionManagementError):
        access.locked_with_poll(started.pk)
    with transaction.atomic():
        locked = access.locked_with_poll(started.pk)
        assert field_values(locked) == field_values(Participant.objects.get(pk=started.pk))
        assert locked.poll.slug == poll.slug
        with pytest.raises(Participant.DoesNotExist):
            access.locked_with_poll(started.pk + 1000)


def test_the_locked_read_locks_the_participant_not_the_shared_poll() -> None:
    poll = make_poll(design={"control_share": 0.0})
    started = start(Client(), poll)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        access.locked_with_poll(started.pk)
    assert 'FOR UPDATE OF "surveys_participant"' in queries[-1]["sql"]


@pytest.mark.parametrize("language", ["en", "uk"])
def test_back_and_a_language_switch_show_the_participants_own_answers(language: str) -> None:
    poll = make_poll(design={"control_share": 0.0})
    mine, theirs = Client(), Client()
    start(mine, poll)
    start(theirs, poll)
    post_page(mine, f"/p/{poll.slug}/t1/1/", T1_PAGES[0], wave=1)
    post_page(theirs, f"/p/{poll.slug}/t1/1/", {**T1_PAGES[0], "q-rate_exit": "6"}, wave=1)
    for _ in range(2):  # the second from the cached frame
        back = mine.get(f"/p/{poll.slug}/t1/1/", {"lang": language}).content.decode()
        assert f'<html lang="{language}"' in back
        assert 'name="q-rate_exit" value="3" checked' in back
        assert 'value="6" checked' not in back
        other = theirs.get(f"/p/{poll.slug}/t1/1/", {"lang": language}).content.decode()
        assert 'name="q-rate_exit" value="6" checked' in other


def test_page_forms_share_their_fields_and_keep_each_languages_messages() -> None:
    spec = poll_spec(make_poll())
    participant = Participant(arm=Participant.Arm.TREATMENT, language="en")
    wrong = QueryDict("wave=1&q-rate_exit=11")

    def form(language: str) -> Any:
        with translation.override(language):
            built = page_form(wrong, spec=spec, participant=participant, place=("t1", 0))
            assert not built.is_valid()
            return built, built.question_errors()["q-rate_exit"]

    (first, english), (again, _same) = form("en"), form("en")
    (_other, ukrainian), (_back, english_again) = form("uk"), form("en")
    assert first.fields["q-rate_exit"] is again.fields["q-rate_exit"]
    assert first.fields["wave"] is not again.fields["wave"]  # Django's own, per form
    assert "is not on the scale" in english and english_again == english
    assert ukrainian != english and "11" in ukrainian


def test_pages_without_a_ranking_share_fields_whatever_the_option_order() -> None:
    """Options are shuffled per participant: only a ranking's fields follow that order, so a
    rating page is built once for all of them."""
    spec = poll_spec(make_poll())
    first = Participant(arm=Participant.Arm.TREATMENT, language="en", option_order=["b", "a"])
    second = Participant(arm=Participant.Arm.TREATMENT, language="en", option_order=["a", "b"])
    empty = QueryDict("wave=1")
    forms = [page_form(empty, spec=spec, participant=p, place=("t1", 0)) for p in (first, second)]
    assert forms[0].fields["q-rate_exit"] is forms[1].fields["q-rate_exit"]
