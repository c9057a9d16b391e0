"""Import of a wide panel file: errors by row and column with nothing stored, and the
export-import round trip."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from surveys.definitions import save_poll, validate
from surveys.models import Answer, Participant
from tests.results.api_fixtures import *  # noqa: F403
from tests.results.api_fixtures import research_definition

pytestmark = pytest.mark.django_db


def wide_csv(client, poll) -> bytes:
    response = client.get(
        reverse("api:poll-export", kwargs={"slug": poll.slug}), {"format": "csv-wide"}
    )
    return b"".join(response.streaming_content)


@pytest.fixture
def fresh_copy(db):
    data = validate(research_definition(slug="small-poll-copy"), "<test>")
    poll, _ = save_poll(data=data, source="<test>")
    return poll


def upload(client, poll, content: bytes):
    return client.post(
        reverse("api:poll-import", kwargs={"slug": poll.slug}),
        {"file": io.BytesIO(content)},
        format="multipart",
    )


def test_broken_file_is_rejected_with_row_and_column_errors_and_nothing_stored(
    researcher, poll, fresh_copy, make_researcher
):
    from results.api.access import grant_poll
    from results.models import Grant

    user = Grant.objects.get(poll=poll).user
    grant = grant_poll(user=user, poll=fresh_copy)
    grant.can_import = True
    grant.save()
    lines = wide_csv(researcher, poll).decode().splitlines()
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:4]]
    rows[0][header.index("rate_exit_t1")] = "11"  # outside 0..10
    rows[1][header.index("arm")] = "placebo"
    rows[2][header.index("leaning_t1")] = "7"  # no such choice code
    content = "\n".join([lines[0], *(",".join(r) for r in rows)]).encode()
    response = upload(researcher, fresh_copy, content)
    assert response.status_code == 400
    errors = {(e["row"], e["column"]) for e in response.json()["errors"]}
    assert errors == {(2, "rate_exit_t1"), (3, "arm"), (4, "leaning_t1")}
    assert "outside the scale 0..10" in response.json()["errors"][0]["message"]
    assert not Participant.objects.filter(poll=fresh_copy).exists()
    assert not Answer.objects.filter(poll=fresh_copy).exists()


def test_unknown_columns_and_duplicate_ids_are_reported(fresh_copy, tmp_path):
    content = b"participant,arm,rate_nothing_t1\np1,treatment,3\np1,control,4\n"
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(CommandError) as failure:
        call_command("importresponses", fresh_copy.slug, str(path))
    assert "row 1, column rate_nothing_t1: unknown column" in str(failure.value)
    path.write_bytes(b"participant,arm\np1,treatment\np1,control\n")
    with pytest.raises(CommandError, match="row 3, column participant: the same id as row 2"):
        call_command("importresponses", fresh_copy.slug, str(path))
    assert not Participant.objects.filter(poll=fresh_copy).exists()


def test_round_trip_restores_every_answer_and_marks_participants_imported(
    researcher, poll, fresh_copy, tmp_path
):
    path = tmp_path / "wide.csv"
    path.write_bytes(wide_csv(researcher, poll))
    out = io.StringIO()
    call_command("importresponses", fresh_copy.slug, str(path), stdout=out)
    assert f"Imported {poll.participants.count()} participants" in out.getvalue()
    copies = Participant.objects.filter(poll=fresh_copy)
    assert copies.count() == poll.participants.count()
    assert all(copies.values_list("imported", flat=True))

    def answers(target, key) -> list:
        return sorted(
            (key(a.participant), a.question.key, a.wave, repr(a.value), a.number, a.dont_know)
            for a in Answer.objects.filter(poll=target).select_related("participant", "question")
        )

    def source_id(participant) -> str:
        return participant.label.removeprefix("imported as ")

    assert answers(fresh_copy, source_id) == answers(poll, lambda p: p.public_id)
    source = {p.public_id: p for p in poll.participants.all()}
    for copy in copies:
        original = source[copy.label.removeprefix("imported as ")]
        assert (copy.arm, copy.group, copy.position_order, copy.weight) == (
            original.arm,
            original.group,
            original.position_order,
            original.weight,
        )
        assert copy.completed_at == original.completed_at
        assert copy.step_times == original.step_times


def test_round_trip_gives_identical_results_tables(researcher, poll, fresh_copy, tmp_path):
    from results.compute import recompute_poll

    path = tmp_path / "wide.csv"
    path.write_bytes(wide_csv(researcher, poll))
    call_command("importresponses", fresh_copy.slug, str(path), stdout=io.StringIO())
    original = recompute_poll(poll.pk).payload
    copied = recompute_poll(fresh_copy.pk).payload
    for table in ("items", "did", "gaps", "knowledge", "options", "small_groups"):
        assert copied.get(table) == original.get(table), table
