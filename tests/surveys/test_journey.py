"""The participant journey through the test client: steps, arms, resume, paradata, queries."""

import re
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from surveys.models import Answer, Participant, Poll, Reason
from tests.factories import make_poll, texts

pytestmark = pytest.mark.django_db

T1_PAGES: list[dict[str, Any]] = [
    {"q-rate_exit": "3", "q-rate_aid": "dk", "q-rate_escalate": "8"},
    {"q-rank.exit": "2", "q-rank.aid": "1", "q-rank.escalate": "3"},
    {"q-k_capital": "lviv"},
    {"q-leaning": "left"},
]
T2_PAGES: list[dict[str, Any]] = [
    {"q-rate_exit": "7", "q-rate_aid": "5", "q-rate_escalate": "8"},
    {"q-rank.exit": "1", "q-rank.aid": "2", "q-rank.escalate": "3"},
    {"q-k_capital": "kyiv"},
    {"q-balanced": "9"},
]


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    cache.clear()


def start(client: Client, poll: Poll, **params: str) -> Participant:
    url = reverse("surveys:entry", args=[poll.slug])
    page = client.get(url, params)
    assert page.status_code == 200
    entry = page.context["entry"]
    response = client.post(url, {"entry": entry, "consent": "yes"})
    assert response.status_code == 302
    assert response["Location"] == f"/p/{poll.slug}/t1/1/"
    return Participant.objects.get(entry_key=entry.split(":")[0])


def post_page(client: Client, url: str, data: dict[str, Any], wave: int | None = None) -> str:
    payload = dict(data)
    if wave is not None:
        payload["wave"] = str(wave)
    response = client.post(url, payload)
    assert response.status_code == 302, response.content.decode()[:3000]
    return response["Location"]


def answer_wave(client: Client, slug: str, step: str, pages: list[dict[str, Any]]) -> str:
    location = f"/p/{slug}/{step}/1/"
    for page in pages:
        assert client.get(location).status_code == 200
        location = post_page(client, location, page, wave=1 if step == "t1" else 2)
    return location


def through_to_t2(client: Client, poll: Poll, participant: Participant) -> str:
    """T1, then the briefing and reasons (treatment) or the page on what happens next
    (control): returns the first page of T2."""
    location = answer_wave(client, poll.slug, "t1", T1_PAGES)
    participant.refresh_from_db()
    if participant.arm == Participant.Arm.TREATMENT:
        for page in range(1, 4):
            assert location == f"/p/{poll.slug}/briefing/{page}/"
            assert client.get(location).status_code == 200
            location = post_page(client, location, {})
        assert location == f"/p/{poll.slug}/deliberation/"
        location = post_page(
            client, location, {"r-exit.stance": "for", "r-exit.text": "Fewer deaths."}
        )
    else:
        # The control arm is told what happens next (and why the questions come again).
        assert location == f"/p/{poll.slug}/next/"
        assert client.get(location).status_code == 200
        location = post_page(client, location, {})
    assert location == f"/p/{poll.slug}/t2/1/"
    return location


def through_briefing(client: Client, poll: Poll) -> str:
    """T1 answered and the three briefing pages read (treatment arm): returns the deliberation."""
    answer_wave(client, poll.slug, "t1", T1_PAGES)
    for page in (1, 2, 3):
        post_page(client, f"/p/{poll.slug}/briefing/{page}/", {})
    return f"/p/{poll.slug}/deliberation/"


def walk(client: Client, poll: Poll, participant: Participant) -> None:
    """From T1 to the finish, whichever arm the participant is assigned."""
    through_to_t2(client, poll, participant)
    location = answer_wave(client, poll.slug, "t2", T2_PAGES)
    assert location == f"/p/{poll.slug}/done/"


def stored(participant: Participant) -> dict[tuple[str, int], tuple[Any, float | None, bool]]:
    return {
        (a.question.key, a.wave): (a.value, a.number, a.missing == "dont_know")
        for a in Answer.objects.filter(participant=participant).select_related("question")
    }


EXPECTED = {
    ("rate_exit", 1): (3, 3.0, False),
    ("rate_aid", 1): (None, None, True),
    ("rate_escalate", 1): (8, 8.0, False),
    ("rank", 1): (["aid", "exit", "escalate"], None, False),
    ("k_capital", 1): ("lviv", 2.0, False),
    ("leaning", 1): ("left", 1.0, False),
    ("rate_exit", 2): (7, 7.0, False),
    ("rate_aid", 2): (5, 5.0, False),
    ("rate_escalate", 2): (8, 8.0, False),
    ("rank", 2): (["exit", "aid", "escalate"], None, False),
    ("k_capital", 2): ("kyiv", 1.0, False),
    ("balanced", 2): (9, 9.0, False),
}


def walked(control_share: float) -> tuple[Client, Poll, Participant]:
    """A new participant of a new poll taken from the welcome page to the finish."""
    poll = make_poll(design={"control_share": control_share, "group_size": 4})
    client = Client()
    participant = start(client, poll)
    walk(client, poll, participant)
    participant.refresh_from_db()
    return client, poll, participant


def test_treatment_journey_stores_exactly_the_answers_given_and_shows_the_movement() -> None:
    client, poll, participant = walked(control_share=0.0)
    assert participant.arm == "treatment"
    assert participant.position_order == ["A", "B"]
    assert participant.group == 1
    assert participant.completed_at and participant.briefed_at and participant.consented_at
    assert set(participant.step_times) == {"welcome", "t1", "briefing", "deliberation", "t2"}
    assert set(participant.position_seconds) == {"A", "B"}
    assert "too_fast" in participant.flags
    assert stored(participant) == EXPECTED
    reason = Reason.objects.get(participant=participant)
    assert (reason.option.key, reason.stance, reason.text) == ("exit", "for", "Fewer deaths.")
    finish = client.get(f"/p/{poll.slug}/done/").content.decode()
    assert "from 3 to 7" in finish
    assert "from don&#x27;t know to 5" in finish or "from don't know to 5" in finish


def test_control_journey_skips_briefing_and_deliberation() -> None:
    _, _, participant = walked(control_share=0.99)
    assert participant.arm == "control"
    assert participant.briefed_at is None
    assert stored(participant) == EXPECTED


def test_a_participant_resumes_at_the_current_step_with_earlier_answers_kept() -> None:
    poll = make_poll(design={"control_share": 0.0, "group_size": 4})
    client = Client()
    start(client, poll)
    post_page(client, f"/p/{poll.slug}/t1/1/", T1_PAGES[0], wave=1)
    cookies = client.cookies
    later = Client()  # the browser was closed: only its persistent cookies are left
    later.cookies = cookies
    assert later.get(f"/p/{poll.slug}/")["Location"] == f"/p/{poll.slug}/t1/2/"
    back = later.get(f"/p/{poll.slug}/t1/1/").content.decode()
    assert 'name="q-rate_exit" value="3" checked' in back
    assert 'name="q-rate_aid" value="dk" checked' in back


def test_going_back_and_changing_an_answer_keeps_one_answer_per_item() -> None:
    poll = make_poll(design={"control_share": 0.0, "group_size": 4})
    client = Client()
    participant = start(client, poll)
    post_page(client, f"/p/{poll.slug}/t1/1/", T1_PAGES[0], wave=1)
    post_page(client, f"/p/{poll.slug}/t1/2/", T1_PAGES[1], wave=1)
    changed = {**T1_PAGES[0], "q-rate_exit": "6"}
    assert post_page(client, f"/p/{poll.slug}/t1/1/", changed, wave=1) == f"/p/{poll.slug}/t1/2/"
    participant.refresh_from_db()
    assert (participant.step, participant.page) == ("t1", 2)
    assert stored(participant)[("rate_exit", 1)] == (6, 6.0, False)
    assert Answer.objects.filter(participant=participant).count() == 4


def test_an_invitation_link_starts_the_journey_and_bad_links_get_the_same_404() -> None:
    from django.utils import timezone

    from surveys.journey.tokens import hash_token

    poll = make_poll(design={"access": "invitation", "control_share": 0.0})
    Participant.objects.create(poll=poll, token_hash=hash_token("good-token"), label="a")
    Participant.objects.create(
        poll=poll, token_hash=hash_token("revoked"), revoked_at=timezone.now()
    )
    Participant.objects.create(
        poll=poll, token_hash=hash_token("used"), completed_at=timezone.now()
    )
    client = Client()
    assert client.get(f"/p/{poll.slug}/").status_code == 403
    pages = [client.get(f"/i/{token}/") for token in ("unknown", "revoked", "used")]
    assert {page.status_code for page in pages} == {404}
    assert len({page.content for page in pages}) == 1
    response = client.get("/i/good-token/")
    assert response["Location"] == f"/p/{poll.slug}/"
    welcome = client.get(f"/p/{poll.slug}/")
    assert welcome.status_code == 200
    response = client.post(
        f"/p/{poll.slug}/", {"entry": welcome.context["entry"], "consent": "yes"}
    )
    assert response["Location"] == f"/p/{poll.slug}/t1/1/"
    assert Participant.objects.filter(consented_at__isnull=False, label="a").count() == 1
    assert Participant.objects.count() == 3


def test_failed_token_attempts_are_rate_limited_per_client() -> None:
    from surveys.journey.access import FAILED_TOKEN_LIMIT

    make_poll(design={"access": "invitation"})
    client = Client(REMOTE_ADDR="10.0.0.7")
    for attempt in range(FAILED_TOKEN_LIMIT):
        assert client.get(f"/i/guess-{attempt}/").status_code == 404
    assert client.get("/i/guess-again/").status_code == 429
    assert Client(REMOTE_ADDR="10.0.0.8").get("/i/guess-again/").status_code == 404


@pytest.mark.parametrize(("status", "code"), [("draft", 404), ("closed", 410)])
def test_draft_and_closed_polls_get_a_clear_page_and_store_nothing(status: str, code: int) -> None:
    poll = make_poll(status=status)
    client = Client()
    assert client.get(f"/p/{poll.slug}/").status_code == code
    assert client.post(f"/p/{poll.slug}/", {"consent": "yes"}).status_code == code
    assert Participant.objects.count() == 0


def test_a_repeated_consent_creates_one_participant() -> None:
    poll = make_poll()
    url = f"/p/{poll.slug}/"
    entry = Client().get(url).context["entry"]
    first = Client().post(url, {"entry": entry, "consent": "yes"})
    second = Client().post(url, {"entry": entry, "consent": "yes"})
    assert first["Location"] == second["Location"]
    assert Participant.objects.count() == 1


def test_consent_is_required() -> None:
    poll = make_poll()
    client = Client()
    entry = client.get(f"/p/{poll.slug}/").context["entry"]
    html = client.post(f"/p/{poll.slug}/", {"entry": entry}).content.decode()
    assert "Tick the box to say you agree to take part." in html
    assert Participant.objects.count() == 0


def test_language_comes_from_the_link_is_recorded_and_sticks() -> None:
    poll = make_poll()
    client = Client()
    participant = start(client, poll, lang="uk")
    assert participant.language == "uk"
    page = client.get(f"/p/{poll.slug}/t1/1/").content.decode()
    assert '<html lang="uk">' in page
    assert "How much do you support exit? (uk)" in page
    client.get(f"/p/{poll.slug}/t1/1/", {"lang": "en"})
    participant.refresh_from_db()
    assert participant.language == "en"


def test_the_browser_preference_picks_the_language_of_a_new_participant() -> None:
    poll = make_poll()
    page = Client().get(f"/p/{poll.slug}/", HTTP_ACCEPT_LANGUAGE="uk,en;q=0.5")
    assert '<html lang="uk">' in page.content.decode()


def test_reasons_of_the_group_are_readable_and_can_be_reported() -> None:
    poll = make_poll(design={"control_share": 0.0, "group_size": 4})
    first_client, second_client = Client(), Client()
    first = start(first_client, poll)
    walk(first_client, poll, first)
    start(second_client, poll)
    answer_wave(second_client, poll.slug, "t1", T1_PAGES)
    for page in (1, 2, 3):
        post_page(second_client, f"/p/{poll.slug}/briefing/{page}/", {})
    html = second_client.get(f"/p/{poll.slug}/deliberation/").content.decode()
    assert "Fewer deaths." in html
    reason = Reason.objects.get()
    response = second_client.post(f"/p/{poll.slug}/reasons/{reason.id}/report/")
    assert response.status_code == 302
    second_client.post(f"/p/{poll.slug}/reasons/{reason.id}/report/")
    reason.refresh_from_db()
    assert (reason.state, reason.report_count) == ("reported", 1)
    Reason.objects.filter(pk=reason.pk).update(state="hidden")
    assert (
        "Fewer deaths." not in second_client.get(f"/p/{poll.slug}/deliberation/").content.decode()
    )


def test_straightlining_is_flagged() -> None:
    poll = make_poll(design={"control_share": 0.0})
    client = Client()
    participant = start(client, poll)
    pages = [{"q-rate_exit": "5", "q-rate_aid": "5", "q-rate_escalate": "5"}, *T1_PAGES[1:]]
    answer_wave(client, poll.slug, "t1", pages)
    participant.refresh_from_db()
    assert participant.flags == ["straightlining_t1"]


def test_arms_follow_the_control_share_and_orders_and_groups_fill_in_turn() -> None:
    poll = make_poll(design={"control_share": 0.5, "group_size": 2})
    participants = []
    for _ in range(8):
        client = Client()
        participant = start(client, poll)
        answer_wave(client, poll.slug, "t1", T1_PAGES)
        participant.refresh_from_db()
        participants.append(participant)
    arms = [p.arm for p in participants]
    assert arms.count("control") == 4
    for pair in range(0, 8, 2):  # never more than one participant away from the share
        assert sorted(arms[pair : pair + 2]) == ["control", "treatment"]
    treated = [p for p in participants if p.arm == "treatment"]
    assert [p.position_order for p in treated] == [["A", "B"], ["B", "A"]] * 2
    assert [p.group for p in treated] == [1, 1, 2, 2]
    assert all(sorted(p.option_order) == ["aid", "escalate", "exit"] for p in participants)


@pytest.mark.parametrize("language", ["en", "uk"])
def test_render_step_previews_every_step_for_an_unsaved_participant_without_queries_or_writes(
    rf: Any, django_assert_num_queries: Any, language: str
) -> None:
    from surveys.definition.spec import poll_spec
    from surveys.journey.views import render_step

    poll = make_poll()
    poll_spec(poll)  # the definition is cached as in a running server
    participant = Participant(
        poll=poll,
        arm="treatment",
        position_order=["B", "A"],
        option_order=["escalate", "exit", "aid"],
        language=language,
    )
    request = rf.get("/admin/preview/")
    places = [("welcome", 0), ("t1", 0), ("t1", 1), ("briefing", 0), ("briefing", 2)]
    places += [("deliberation", 0), ("t2", 3), ("done", 0)]
    with django_assert_num_queries(0):
        pages = [
            render_step(request, poll=poll, participant=participant, step=s, page=p, preview=True)
            for s, p in places
        ]
    assert all(page.status_code == 200 for page in pages)
    assert "Position B" in pages[3].content.decode()
    assert pages[1].content.decode().count("disabled") >= 1
    ranking = pages[2].content.decode()
    assert ranking.index("q-rank-escalate") < ranking.index("q-rank-exit")
    assert Participant.objects.count() == 0


def error_summary(html: str) -> str:
    return html.split('id="error-summary"', 1)[1].split("</div>", 1)[0]


def first_question(html: str) -> str:
    """The id of the page's first question (the option order is the participant's own)."""
    found = re.search(r'<input type="radio" id="(q-\w+)"', html)
    assert found is not None
    return found.group(1)


def test_the_error_summary_counts_unanswered_questions_and_marks_each_in_place() -> None:
    poll = make_poll(design={"control_share": 0.0})
    client = Client()
    start(client, poll)
    response = client.post(f"/p/{poll.slug}/t1/1/", {"wave": "1"})
    html = response.content.decode()
    summary = error_summary(html)
    # One line for the whole page, linked to the first question; no question texts in red.
    assert f'<a href="#{first_question(html)}">3 questions need an answer.</a>' in summary
    assert summary.count("<li>") == 1
    assert "How much do you support" not in summary
    for key in ("rate_exit", "rate_aid", "rate_escalate"):
        assert f'<p class="field-error" id="q-{key}-error">' in html
        assert f'aria-describedby="q-{key}-error"' in html
    assert html.count('class="question q-rating has-error"') == 3
    # Focus goes to the summary without JavaScript too (journey.js does it again, harmlessly).
    assert re.search(r'<div class="error-summary"[^>]*\bautofocus\b[^>]*>', html)
    assert Answer.objects.count() == 0


def test_missing_and_wrong_answers_are_counted_apart_and_singular_is_singular() -> None:
    poll = make_poll(design={"control_share": 0.0})
    client = Client()
    start(client, poll)
    html = client.post(
        f"/p/{poll.slug}/t1/1/", {"wave": "1", "q-rate_exit": "11", "q-rate_aid": "3"}
    ).content.decode()
    summary = error_summary(html)
    assert '<a href="#q-rate_escalate">1 question needs an answer.</a>' in summary
    assert '<a href="#q-rate_exit">1 answer needs to be corrected.</a>' in summary
    assert "“11” is not on the scale" in html
    assert Answer.objects.count() == 0


def test_the_ukrainian_summary_uses_the_right_plural_form() -> None:
    poll = make_poll(design={"control_share": 0.0})
    client = Client()
    start(client, poll, lang="uk")
    html = client.post(f"/p/{poll.slug}/t1/1/", {"wave": "1"}).content.decode()
    assert (
        f'<a href="#{first_question(html)}">3 запитання потребують відповіді.</a>'
        in error_summary(html)
    )


def at_deliberation_of(poll: Poll) -> tuple[Client, str]:
    client = Client()
    start(client, poll)
    return client, through_briefing(client, poll)


def test_the_first_to_deliberate_read_the_briefings_arguments_beside_no_reasons() -> None:
    options: list[dict[str, Any]] = [
        {"key": key, "text": texts(f"Option {key}"), "position": position, "axis": axis}
        for axis, (key, position) in enumerate([("exit", "A"), ("aid", "A"), ("escalate", "B")], 1)
    ]
    for option in options[:2]:
        option["arguments_for"] = texts(f"It helps with {option['key']}.")
        option["arguments_against"] = texts(f"It costs {option['key']}.")
    poll = make_poll(design={"control_share": 0.0, "group_size": 4}, options=options)
    Poll.objects.filter(pk=poll.pk).update(deliberation_closes=None)
    client, url = at_deliberation_of(poll)
    html = client.get(url).content.decode()
    # Beside each option the briefing's arguments, open while the group has given no reason;
    # an option the briefing gave no arguments for has none to show.
    assert html.count('<details class="briefing-arguments" open>') == 2
    assert "It helps with exit." in html and "It costs aid." in html
    assert "Arguments for and against, from the briefing" in html
    assert "No reasons from your group yet." in html
    assert "Reasons arrive over time" not in html


def test_with_a_window_the_first_to_deliberate_get_the_date_and_a_return_link() -> None:
    from datetime import timedelta

    from django.utils import timezone

    poll = make_poll(design={"control_share": 0.0, "group_size": 4})
    closes = timezone.now() + timedelta(days=3)
    Poll.objects.filter(pk=poll.pk).update(deliberation_closes=closes)
    client, url = at_deliberation_of(poll)
    html = client.get(url).content.decode()
    assert "Reasons arrive over time" in html
    assert "briefing-arguments" not in html
    link = re.search(r'id="return-url" class="copy-source" readonly value="([^"]+)"', html)
    assert link is not None
    # The link brings the participant back to the deliberation from another device.
    elsewhere = Client()
    response = elsewhere.get(link.group(1).replace("http://testserver", ""))
    assert response["Location"] == url
    assert "Reasons arrive over time" in elsewhere.get(url).content.decode()
