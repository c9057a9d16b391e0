"""The poll over time: the schedule, the wait with its return link and calendar file, the page
that explains the arm, and questions limited to an arm."""

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest
import yaml
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client, override_settings
from django.utils import timezone

from surveys.definition import schedule
from surveys.definition.files import dump_poll, load_definition, save_poll, validate
from surveys.definition.readiness import check_poll
from surveys.definition.spec import build_spec
from surveys.definition.yaml_reader import DefinitionError
from surveys.journey import flow, tokens
from surveys.journey.access import FAILED_TOKEN_LIMIT
from surveys.journey.flow import Place
from surveys.models import Answer, Participant, Poll
from tests.factories import small_definition
from tests.surveys.test_journey import T1_PAGES, answer_wave, post_page, start

pytestmark = pytest.mark.django_db
Step = Participant.Step
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CONTROL_T2 = [
    {"q-rate_exit": "6", "q-rate_aid": "5", "q-rate_escalate": "8"},
    {"q-rank.exit": "1", "q-rank.aid": "2", "q-rank.escalate": "3"},
    {"q-k_capital": "kyiv"},
]
TREATMENT_T2 = [*CONTROL_T2, {"q-balanced": "9"}]


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    cache.clear()


def definition(**schedule_fields: str) -> dict[str, Any]:
    data = small_definition()
    data["questions"][-1]["arms"] = ["treatment"]  # "the material was balanced"
    if schedule_fields:
        data["schedule"] = schedule_fields
    return data


def scheduled_poll(**schedule_fields: str) -> Poll:
    poll, _ = save_poll(data=validate(definition(**schedule_fields), "<test>"), source="<test>")
    return poll


def in_days(days: float) -> str:
    return (timezone.now() + timedelta(days=days)).isoformat()


def finish_t1(client: Client, poll: Poll, *, arm: str) -> tuple[Participant, str]:
    """Consent, fix the arm (assignment is random), answer T1; (participant, next location)."""
    participant = start(client, poll)
    Participant.objects.filter(pk=participant.pk).update(arm=arm, group=1)
    location = answer_wave(client, poll.slug, "t1", T1_PAGES)
    participant.refresh_from_db()
    return participant, location


def open_t2_now(poll: Poll) -> None:
    poll.t2_opens = timezone.now() - timedelta(minutes=1)
    poll.save()


# --- pure functions --------------------------------------------------------------------------


def test_t2_opens_at_the_date_or_after_the_participants_own_t1() -> None:
    fixed = schedule.Schedule(t2_opens=NOW)
    delayed = schedule.Schedule(t2_after=timedelta(days=7))
    done = NOW - timedelta(days=1)
    assert schedule.t2_opens_for(fixed, t1_completed_at=done) == NOW
    assert schedule.t2_opens_for(delayed, t1_completed_at=done) == done + timedelta(days=7)
    assert schedule.t2_opens_for(schedule.Schedule(), t1_completed_at=done) is None
    assert not schedule.t2_is_open(fixed, t1_completed_at=done, now=NOW - timedelta(seconds=1))
    assert schedule.t2_is_open(fixed, t1_completed_at=done, now=NOW)
    assert schedule.t2_is_open(schedule.Schedule(), t1_completed_at=done, now=NOW)


def test_an_inconsistent_schedule_is_named_in_words() -> None:
    day = timedelta(days=1)
    assert schedule.problems(schedule.Schedule(t1_opens=NOW, t1_closes=NOW - day)) == [
        "The first questionnaire closes before it opens."
    ]
    assert schedule.problems(schedule.Schedule(t1_opens=NOW, t2_opens=NOW - day)) == [
        "The second questionnaire opens before the first one does."
    ]
    assert schedule.problems(schedule.Schedule(t2_opens=NOW, deliberation_closes=NOW + day)) == [
        "The deliberation closes after the second questionnaire opens."
    ]
    assert schedule.problems(schedule.Schedule(deliberation_closes=NOW)) == [
        "A deliberation end is set, but the second questionnaire has no date or delay."
    ]
    # T2 may open before T1 closes: late starters then answer T2 straight after T1.
    assert schedule.problems(schedule.Schedule(t1_closes=NOW + day, t2_opens=NOW)) == []


def test_the_control_arm_is_always_told_what_happens_next_and_waits_only_over_time() -> None:
    poll = scheduled_poll()
    spec = build_spec(poll)
    control, treatment = Participant.Arm.CONTROL, Participant.Arm.TREATMENT
    after_t1 = Place(Step.T1, len(spec.pages(1)) - 1)
    assert flow.next_place(spec, arm=control, place=after_t1) == Place(Step.NEXT, 0)
    assert flow.next_place(spec, arm=treatment, place=after_t1) == Place(Step.BRIEFING, 0)
    assert flow.shown_steps(spec, control) == ("welcome", "t1", "next", "t2", "done")
    # The control arm is not asked the briefing's evaluation: one T2 page fewer.
    assert flow.page_count(spec, Step.T2, control) == 3
    assert flow.page_count(spec, Step.T2, treatment) == 4
    timed = build_spec(scheduled_poll(t2_opens=in_days(3)))
    assert flow.next_place(timed, arm=treatment, place=after_t1) == Place(Step.NEXT, 0)
    assert "wait" in flow.shown_steps(timed, control)
    assert flow.past_wait(Place(Step.WAIT, 0), t2_open=True) == Place(Step.T2, 0)
    assert flow.past_wait(Place(Step.WAIT, 0), t2_open=False) == Place(Step.WAIT, 0)


# --- definitions and the admin ----------------------------------------------------------------


def test_a_schedule_loads_dumps_and_reloads_identically(tmp_path: Path) -> None:
    data = definition(t1_opens="2026-12-01T09:00:00Z", t2_after="P7D")
    path = tmp_path / "poll.yaml"
    # Unquoted, YAML reads the time as a datetime: it is accepted all the same.
    text = yaml.safe_dump(data, allow_unicode=True).replace(
        "'2026-12-01T09:00:00Z'", "2026-12-01T09:00:00Z"
    )
    path.write_text(text)
    loaded = load_definition(path)
    assert loaded["schedule"] == {
        "t1_opens": "2026-12-01T09:00:00+00:00",
        "t2_after": "P7DT00H00M00S",
    }
    poll, _ = save_poll(data=loaded, source=str(path))
    assert poll.t2_after == timedelta(days=7) and poll.t1_opens == NOW
    first = dump_poll(poll)
    assert first["schedule"] == loaded["schedule"]
    assert first["questions"][-1]["arms"] == ["treatment"]
    (tmp_path / "dumped.yaml").write_text(yaml.safe_dump(first, allow_unicode=True))
    assert load_definition(tmp_path / "dumped.yaml") == first


@pytest.mark.parametrize(
    ("schedule_fields", "message"),
    [
        (
            {"t2_opens": "2026-12-08T09:00:00Z", "t2_after": "P7D"},
            "give t2_opens or t2_after, not both",
        ),
        ({"t2_opens": "2026-12-08 09:00"}, "give the time with its UTC offset"),
        ({"t2_opens": "next tuesday"}, "not an ISO 8601 date and time"),
        ({"t2_after": "P1W"}, "'P1W' is not an ISO 8601 duration in days and hours (e.g. P7D"),
        (
            {"t1_opens": "2026-12-08T09:00:00Z", "t2_opens": "2026-12-01T09:00:00Z"},
            "opens before the first one does",
        ),
    ],
)
def test_a_bad_schedule_in_a_definition_is_a_clear_error_and_stores_nothing(
    schedule_fields: dict[str, str], message: str
) -> None:
    with pytest.raises(DefinitionError) as error:
        validate(definition(**schedule_fields), "<test>")
    assert message in str(error.value)
    assert not Poll.objects.exists()


def test_only_a_t2_question_can_be_limited_to_an_arm() -> None:
    data = definition()
    data["questions"][0]["arms"] = ["treatment"]  # a paired rating, asked in both waves
    with pytest.raises(DefinitionError) as error:
        validate(data, "<test>")
    assert "questions[0].arms: only a T2-only question can be limited" in str(error.value)


def test_the_admin_and_the_readiness_check_refuse_an_inconsistent_schedule() -> None:
    poll = scheduled_poll(t2_opens=in_days(3))
    poll.deliberation_closes = timezone.now() + timedelta(days=4)
    with pytest.raises(ValidationError, match="deliberation closes after"):
        poll.full_clean()
    poll.save()
    check = next(c for c in check_poll(poll).checks if c.key == "schedule")
    assert not check.ok and check.fix == "schedule"
    assert check.problems == ["The deliberation closes after the second questionnaire opens."]


# --- the journey over time --------------------------------------------------------------------


def test_a_control_participant_waits_cannot_reach_t2_and_comes_back_by_the_return_link() -> None:
    poll = scheduled_poll(t2_opens=in_days(3))
    client = Client()
    participant, location = finish_t1(client, poll, arm="control")
    assert location == f"/p/{poll.slug}/next/"
    page = client.get(location).content.decode()
    assert "this is part of the design, not a mistake" in page
    assert post_page(client, location, {}) == f"/p/{poll.slug}/wait/"
    participant.refresh_from_db()
    assert participant.step == Step.WAIT and participant.return_token_hash
    wait = client.get(f"/p/{poll.slug}/wait/")
    token = tokens.return_token(participant.public_id)
    assert f"http://testserver/r/{token}/" in wait.content.decode()
    assert wait["Cache-Control"] == "private, no-store"
    # T2 by URL, by GET or POST, before it opens: back to the wait, nothing stored.
    for url in (f"/p/{poll.slug}/t2/1/", f"/p/{poll.slug}/t2/3/", f"/p/{poll.slug}/done/"):
        assert client.get(url)["Location"] == f"/p/{poll.slug}/wait/"
    client.post(f"/p/{poll.slug}/t2/1/", {**CONTROL_T2[0], "wave": "2"})
    assert not Answer.objects.filter(participant=participant, wave=2).exists()
    # The return link before the opening shows the date again, never the questionnaire.
    elsewhere = Client()
    response = elsewhere.get(f"/r/{token}/")
    assert response["Location"] == f"/p/{poll.slug}/wait/"
    assert elsewhere.get(response["Location"]).status_code == 200
    open_t2_now(poll)
    back = Client()
    response = back.get(f"/r/{token}/")
    assert response.status_code == 302 and response["Location"] == f"/p/{poll.slug}/t2/1/"
    assert answer_wave(back, poll.slug, "t2", CONTROL_T2) == f"/p/{poll.slug}/done/"
    done = back.get(f"/p/{poll.slug}/done/").content.decode()
    assert f"/p/{poll.slug}/positions/" in done
    positions = back.get(f"/p/{poll.slug}/positions/")
    assert (
        positions.status_code == 200 and "Body of <strong>A</strong>" in positions.content.decode()
    )
    keys = set(
        Answer.objects.filter(participant=participant, wave=2).values_list(
            "question__key", flat=True
        )
    )
    assert keys == {"rate_exit", "rate_aid", "rate_escalate", "rank", "k_capital"}


def test_a_treatment_participant_deliberates_then_waits_and_answers_every_t2_page() -> None:
    poll = scheduled_poll(t2_opens=in_days(3), deliberation_closes=in_days(2))
    client = Client()
    participant, location = finish_t1(client, poll, arm="treatment")
    assert location == f"/p/{poll.slug}/next/"
    assert "You can give your reasons until" in client.get(location).content.decode()
    location = post_page(client, location, {})
    for page in (1, 2, 3):
        assert location == f"/p/{poll.slug}/briefing/{page}/"
        location = post_page(client, location, {})
    assert location == f"/p/{poll.slug}/deliberation/"
    location = post_page(client, location, {"r-exit.stance": "for", "r-exit.text": "Peace."})
    assert location == f"/p/{poll.slug}/wait/"
    assert client.get(f"/p/{poll.slug}/t2/1/")["Location"] == location
    # The treatment arm is not offered the read-only briefing (it has read it).
    assert client.get(f"/p/{poll.slug}/positions/")["Location"] == location
    open_t2_now(poll)
    # The plain poll link brings them on too, once T2 is open.
    assert client.get(f"/p/{poll.slug}/")["Location"] == location
    assert client.get(location)["Location"] == f"/p/{poll.slug}/t2/1/"
    assert answer_wave(client, poll.slug, "t2", TREATMENT_T2) == f"/p/{poll.slug}/done/"
    assert Answer.objects.filter(participant=participant, question__key="balanced").exists()


def test_with_a_delay_each_participant_waits_from_their_own_t1() -> None:
    poll = scheduled_poll(t2_after="PT36H")
    client = Client()
    participant, location = finish_t1(client, poll, arm="control")
    post_page(client, location, {})
    participant.refresh_from_db()
    assert participant.step == Step.WAIT
    due = participant.t1_completed_at + timedelta(hours=36)
    Participant.objects.filter(pk=participant.pk).update(
        t1_completed_at=participant.t1_completed_at - timedelta(hours=37)
    )
    assert client.get(f"/p/{poll.slug}/wait/")["Location"] == f"/p/{poll.slug}/t2/1/"
    assert due > timezone.now()


def test_without_a_schedule_both_arms_go_on_in_one_sitting() -> None:
    poll = scheduled_poll()
    control = Client()
    _, location = finish_t1(control, poll, arm="control")
    assert location == f"/p/{poll.slug}/next/"
    assert "You can answer it now." in control.get(location).content.decode()
    assert post_page(control, location, {}) == f"/p/{poll.slug}/t2/1/"
    assert answer_wave(control, poll.slug, "t2", CONTROL_T2) == f"/p/{poll.slug}/done/"
    treatment = Client()
    _, location = finish_t1(treatment, poll, arm="treatment")
    assert location == f"/p/{poll.slug}/briefing/1/"
    for _ in range(3):
        location = post_page(treatment, location, {})
    location = post_page(treatment, location, {})
    assert location == f"/p/{poll.slug}/t2/1/"
    assert answer_wave(treatment, poll.slug, "t2", TREATMENT_T2) == f"/p/{poll.slug}/done/"
    assert not Participant.objects.filter(return_token_hash__isnull=False).exists()


def test_the_calendar_file_parses_and_holds_the_date_and_the_return_link() -> None:
    opens = timezone.now().replace(microsecond=0) + timedelta(days=3)
    poll = scheduled_poll(t2_opens=opens.isoformat())
    client = Client()
    participant, location = finish_t1(client, poll, arm="control")
    post_page(client, location, {})
    response = client.get(f"/p/{poll.slug}/return.ics")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = icalendar.Calendar.from_ical(response.content)
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == opens
    link = f"http://testserver/r/{tokens.return_token(participant.public_id)}/"
    assert str(event["URL"]) == link
    assert link in str(event["DESCRIPTION"]) and "A small poll" in str(event["SUMMARY"])
    assert all(len(line) <= 75 for line in response.content.split(b"\r\n"))


def test_before_t1_opens_the_link_shows_the_date_and_after_it_closes_a_polite_page() -> None:
    poll = scheduled_poll(t1_opens=in_days(1), t2_opens=in_days(8))
    response = Client().get(f"/p/{poll.slug}/")
    assert (
        response.status_code == 403 and "This poll has not opened yet" in response.content.decode()
    )
    poll.t1_opens, poll.t1_closes = None, timezone.now() - timedelta(minutes=1)
    poll.save()
    response = Client().get(f"/p/{poll.slug}/", {"lang": "uk"})
    assert response.status_code == 410
    assert not Participant.objects.exists()


def test_a_return_link_to_a_closed_poll_shows_the_closed_page() -> None:
    poll = scheduled_poll(t2_opens=in_days(3))
    client = Client()
    participant, location = finish_t1(client, poll, arm="control")
    post_page(client, location, {})
    Poll.objects.filter(pk=poll.pk).update(status=Poll.Status.CLOSED)
    back = Client()
    response = back.get(f"/r/{tokens.return_token(participant.public_id)}/")
    assert back.get(response["Location"]).status_code == 410


# --- attacks ----------------------------------------------------------------------------------


def test_a_forged_unissued_or_revoked_return_link_gets_the_one_404() -> None:
    poll = scheduled_poll(t2_opens=in_days(3))
    client = Client()
    waiting, location = finish_t1(client, poll, arm="control")
    post_page(client, location, {})
    other, _ = finish_t1(Client(), poll, arm="treatment")  # at the briefing: no link issued
    with override_settings(SECRET_KEY="an attacker's guess at the key" * 2):
        forged = tokens.return_token(waiting.public_id)
    bad_link = Client().get("/i/unknown/").content
    for token in (forged, tokens.return_token(other.public_id), "unknown"):
        response = Client().get(f"/r/{token}/")
        assert response.status_code == 404 and response.content == bad_link
    Participant.objects.filter(pk=waiting.pk).update(revoked_at=timezone.now())
    assert Client().get(f"/r/{tokens.return_token(waiting.public_id)}/").status_code == 404


def test_guessing_return_links_is_limited_but_a_valid_link_still_works() -> None:
    poll = scheduled_poll(t2_opens=in_days(3))
    client = Client()
    participant, location = finish_t1(client, poll, arm="control")
    post_page(client, location, {})
    shared = Client(REMOTE_ADDR="10.0.0.9")
    codes = [shared.get(f"/r/guess-{n}/").status_code for n in range(FAILED_TOKEN_LIMIT + 3)]
    assert codes[:FAILED_TOKEN_LIMIT] == [404] * FAILED_TOKEN_LIMIT
    assert set(codes[FAILED_TOKEN_LIMIT:]) == {429}
    # Failures on /i/ and /r/ share one counter: no twice the guesses by switching.
    assert shared.get("/i/guess/").status_code == 429
    token = tokens.return_token(participant.public_id)
    assert shared.get(f"/r/{token}/")["Location"] == f"/p/{poll.slug}/wait/"


def test_return_tokens_never_reach_the_request_log(caplog: pytest.LogCaptureFixture) -> None:
    secret = "ReturnSecretToken"
    with caplog.at_level(logging.INFO):
        assert Client().get(f"/r/{secret}/").status_code == 404
    lines = [record.getMessage() for record in caplog.records]
    assert "Not Found: /r/<token>/" in lines
    assert not [line for line in lines if secret in line]


def test_only_the_control_arm_after_t2_may_read_the_positions() -> None:
    poll = scheduled_poll()
    client = Client()
    _, location = finish_t1(client, poll, arm="control")
    # Before its T2 the control arm must not read the briefing: it would contaminate T2.
    assert client.get(f"/p/{poll.slug}/positions/")["Location"] == location
    assert Client().get(f"/p/{poll.slug}/positions/")["Location"] == f"/p/{poll.slug}/"


def test_the_monitor_counts_a_waiting_participant_as_past_t1_and_the_deliberation() -> None:
    from surveys.admin.monitor import poll_monitor

    poll = scheduled_poll(t2_opens=in_days(3))
    control = Client()
    _, location = finish_t1(control, poll, arm="control")
    post_page(control, location, {})
    treatment = Client()
    _, location = finish_t1(treatment, poll, arm="treatment")
    location = post_page(treatment, location, {})
    for _ in range(3):
        location = post_page(treatment, location, {})
    post_page(treatment, location, {})
    assert set(Participant.objects.values_list("step", flat=True)) == {Step.WAIT}
    counts = {row.key: {c.arm: c.count for c in row.cells} for row in poll_monitor(poll).stages}
    assert counts["t1_done"]["all"] == 2
    assert counts["briefed"]["treatment"] == 1 and counts["deliberated"]["treatment"] == 1


def seed_page_answers(spec: Any, wave: int, page: int, arm: str, order: list[str]) -> dict:
    """A valid answer to every question of one page of the seed poll."""
    section = spec.pages(wave, arm)[page]
    data: dict[str, Any] = {"wave": str(wave)}
    for q in spec.page_questions(wave, section.key, order, arm):
        if q.kind == "rating":
            data[f"q-{q.key}"] = str(q.scale_min)
        elif q.kind == "ranking":
            data.update({f"q-{q.key}.{key}": str(rank) for rank, key in enumerate(order, 1)})
        elif q.kind in ("single", "multiple", "knowledge"):
            data[f"q-{q.key}"] = q.choices[0][0]
        elif q.kind == "number":
            data[f"q-{q.key}"] = str(int(q.number_min or 0))
        else:
            data[f"q-{q.key}"] = "A view."
    return data


@pytest.mark.parametrize("arm", ["control", "treatment"])
def test_the_seed_poll_without_a_schedule_runs_in_one_sitting_for_both_arms(arm: str) -> None:
    seed = Path(__file__).resolve().parents[2] / "seeds" / "west-putin-exit.yaml"
    poll, _ = save_poll(data=load_definition(seed), source=str(seed))
    assert not schedule.Schedule.of(poll).over_time
    spec = build_spec(poll)
    client = Client()
    participant = start(client, poll)
    Participant.objects.filter(pk=participant.pk).update(arm=arm, group=1)
    participant.refresh_from_db()
    order = participant.option_order
    location = f"/p/{poll.slug}/t1/1/"
    for page in range(len(spec.pages(1))):
        location = post_page(client, location, seed_page_answers(spec, 1, page, arm, order))
    while not location.startswith(f"/p/{poll.slug}/t2/"):
        assert "/wait/" not in location
        data = {}
        if location.endswith("/deliberation/"):
            data = {f"r-{order[0]}.stance": "for", f"r-{order[0]}.text": "A reason."}
        location = post_page(client, location, data)
    pages = spec.pages(2, arm)
    for page in range(len(pages)):
        location = post_page(client, location, seed_page_answers(spec, 2, page, arm, order))
    assert location == f"/p/{poll.slug}/done/"
    participant.refresh_from_db()
    assert participant.completed_at is not None and participant.return_token_hash is None
    asked = set(
        Answer.objects.filter(participant=participant, wave=2).values_list(
            "question__key", flat=True
        )
    )
    # Whether the briefing was balanced is asked of those who read it; the other evaluation
    # item (do opponents have good reasons?) of both arms, as the control arm's baseline.
    assert ("eval_balanced" in asked) == (arm == "treatment")
    assert "eval_good_reasons" in asked


def test_the_admin_shows_the_schedule_as_labelled_date_and_time_fields() -> None:
    from tests.surveys.admin_fixtures import client_for, staff

    poll = scheduled_poll(t2_opens="2026-12-08T09:30:00Z")
    client = client_for(staff("organiser", polls=(poll,)))
    url = f"/admin/surveys/poll/{poll.pk}/change/"
    page = client.get(url).content.decode()
    assert 'type="datetime-local"' in page and "Schedule" in page
    assert 'for="id_t2_opens"' in page and 'value="2026-12-08T09:30"' in page
