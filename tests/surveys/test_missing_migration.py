"""Migration 0006 turns the don't-know flag of stored answers into the answer's missing kind,
and back when it is reversed: no stored don't know is lost either way."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("surveys", "0005_consent_reminders_withdrawal_languages")
AFTER = ("surveys", "0006_missing_kinds_codes_families_live_step")


def migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


@pytest.mark.django_db(transaction=True)
def test_dont_know_answers_become_the_missing_kind_dont_know_and_back() -> None:
    migrate(BEFORE)
    try:
        apps = MigrationExecutor(connection).loader.project_state([BEFORE]).apps
        Poll = apps.get_model("surveys", "Poll")
        Section = apps.get_model("surveys", "Section")
        Question = apps.get_model("surveys", "Question")
        Participant = apps.get_model("surveys", "Participant")
        Answer = apps.get_model("surveys", "Answer")
        poll = Poll.objects.create(slug="old", title={"en": "Old"}, question={"en": "Q"})
        section = Section.objects.create(poll=poll, key="s", title={"en": "S"})
        rating = Question.objects.create(
            poll=poll,
            section=section,
            key="rate",
            kind="rating",
            scale_min=0,
            scale_max=10,
            dont_know=True,
            text={"en": "Rate"},
        )
        people = [Participant.objects.create(poll=poll, public_id=f"p{i}") for i in range(3)]
        Answer.objects.create(
            poll=poll, participant=people[0], question=rating, wave=1, value=None, dont_know=True
        )
        Answer.objects.create(
            poll=poll, participant=people[1], question=rating, wave=1, value=7, number=7.0
        )

        migrate(AFTER)
        with connection.cursor() as cursor:
            cursor.execute("SELECT number, missing FROM surveys_answer ORDER BY participant_id")
            assert cursor.fetchall() == [(None, "dont_know"), (7.0, "")]
            cursor.execute("SELECT dont_know FROM surveys_question")
            assert cursor.fetchall() == [(True,)]  # the question still offers don't know

        migrate(BEFORE)
        with connection.cursor() as cursor:
            cursor.execute("SELECT number, dont_know FROM surveys_answer ORDER BY participant_id")
            assert cursor.fetchall() == [(None, True), (7.0, False)]
    finally:
        # Leave the database at the newest migrations for the tests after this one.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
