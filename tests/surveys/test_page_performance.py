"""What the questionnaire pages keep from one request to the next (page form fields built
once) gives what building them anew gives, a participant still finds their own saved answers on
the cached page, and a submission locks only the participant's row."""

from typing import Any

import pytest
from django.db import connection
from django.http import QueryDict
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from surveys.definition.spec import poll_spec
from surveys.journey.forms import page_form
from surveys.models import Participant
from tests.factories import make_poll
from tests.surveys.test_journey import T1_PAGES, post_page, start

pytestmark = pytest.mark.django_db


def test_a_submission_locks_the_participant_not_the_shared_poll() -> None:
    poll = make_poll(design={"control_share": 0.0})
    client = Client()
    start(client, poll)
    with CaptureQueriesContext(connection) as queries:
        post_page(client, f"/p/{poll.slug}/t1/1/", T1_PAGES[0], wave=1)
    locks = [q["sql"] for q in queries if "FOR UPDATE" in q["sql"]]
    assert locks and all('FOR UPDATE OF "surveys_participant"' in sql for sql in locks)


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
