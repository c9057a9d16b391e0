"""Nothing typed is lost, in Chromium, on a phone (360 px) and a desktop (1280 px), in English
and Ukrainian, with and without JavaScript: reporting a reason, switching language mid-page,
and browser Back to a step that has closed. The ranking list is used by keyboard and pointer."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from django.test import Client

from surveys.models import Answer, Poll, Reason
from tests.e2e.test_journey_browser import Journey
from tests.factories import make_poll
from tests.surveys.test_journey import T1_PAGES, post_page, start, through_briefing

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("JOURNEY_SCREENSHOTS")
GRID = [
    pytest.param(language, width, scripts, id=f"{language}-{width}-{'js' if scripts else 'nojs'}")
    for language in ("en", "uk")
    for width in (360, 1280)
    for scripts in (True, False)
]
TYPED = "Aid keeps them fighting — half typed, not sent"
OTHER = "Не забувати про ціну"  # noqa: RUF001


@pytest.fixture
def poll() -> Poll:
    return make_poll(design={"control_share": 0.0, "group_size": 4})


def to_deliberation(poll: Poll, language: str) -> Client:
    client = Client()
    start(client, poll, lang=language)
    through_briefing(client, poll)
    return client


def browser_page(
    browser: Any, live_server: Any, axe: Path, client: Client, name: str, width: int, scripts: bool
) -> Journey:
    """A Chromium page holding the cookies of ``client`` (the participant it walked)."""
    context = browser.new_context(
        viewport={"width": width, "height": 800}, java_script_enabled=scripts
    )
    host = urlparse(live_server.url).hostname
    context.add_cookies(
        [
            {"name": k, "value": m.value, "domain": host, "path": "/"}
            for k, m in client.cookies.items()
        ]
    )
    return Journey(context.new_page(), axe, name, scripts=scripts)


@pytest.fixture
def grid_page(
    browser: Any, live_server: Any, axe_script: Path, language: str, width: int, scripts: bool
) -> Callable[[Client, str], Journey]:
    """For the GRID case under test: opens a page holding a participant's cookies, its
    screenshots and axe report named after the check and the case."""

    def open_page(client: Client, check: str) -> Journey:
        name = f"{check}-{language}-{width}-{'js' if scripts else 'nojs'}"
        return browser_page(browser, live_server, axe_script, client, name, width, scripts)

    return open_page


def shot(journey: Journey, label: str) -> None:
    if SHOTS:
        path = Path(SHOTS) / f"{journey.name}-{label}.png"
        journey.page.screenshot(path=str(path), full_page=True)


def type_drafts(journey: Journey) -> None:
    journey.page.fill("#r-aid-text", TYPED)
    journey.page.check('input[name="r-aid.stance"][value="against"]')
    journey.page.fill("#r-escalate-text", OTHER)


def assert_drafts_kept(journey: Journey) -> None:
    assert journey.page.input_value("#r-aid-text") == TYPED
    assert journey.page.is_checked('input[name="r-aid.stance"][value="against"]')
    assert journey.page.input_value("#r-escalate-text") == OTHER


@pytest.mark.parametrize(("language", "width", "scripts"), GRID)
def test_reporting_a_reason_keeps_the_reasons_being_typed(
    live_server: Any,
    poll: Poll,
    language: str,
    scripts: bool,
    grid_page: Callable[[Client, str], Journey],
) -> None:
    author = to_deliberation(poll, language)  # small groups form within a language
    post_page(
        author,
        f"/p/{poll.slug}/deliberation/",
        {"r-exit.stance": "for", "r-exit.text": "Abusive words."},
    )
    reader = to_deliberation(poll, language)
    journey = grid_page(reader, "report")
    url = f"{live_server.url}/p/{poll.slug}/deliberation/"
    journey.page.goto(url)
    type_drafts(journey)
    journey.page.locator("button.report").click()
    journey.page.wait_for_load_state()
    reported = (
        "You reported this reason." if language == "en" else "Ви поскаржилися на цей аргумент."
    )
    journey.page.locator(".reported", has_text=reported).wait_for()
    assert_drafts_kept(journey)
    if scripts:
        # No reload: the live region says it, and focus stays on the page.
        assert journey.page.url == url
        assert journey.page.locator("#report-status").inner_text() != ""
    journey.twin_url = url
    journey.check("reported")
    shot(journey, "reported")
    reason = Reason.objects.get()
    assert (reason.state, reason.report_count) == ("reported", 1)
    # Nothing typed was saved by the report; it is saved by the participant's own submit.
    assert Reason.objects.count() == 1
    journey.page.check('input[name="r-escalate.stance"][value="for"]')
    journey.page.locator("button.primary").click()
    journey.page.wait_for_load_state()
    assert journey.at(f"/p/{poll.slug}/t2/1/"), journey.page.url
    assert set(Reason.objects.values_list("text", flat=True)) == {"Abusive words.", TYPED, OTHER}
    journey.page.context.close()


@pytest.mark.parametrize(("language", "width", "scripts"), GRID)
def test_switching_language_keeps_unsaved_answers_and_typed_reasons(
    live_server: Any,
    poll: Poll,
    language: str,
    grid_page: Callable[[Client, str], Journey],
) -> None:
    other = "uk" if language == "en" else "en"
    label = {"en": "English", "uk": "Українська"}[other]
    client = Client()
    start(client, poll, lang=language)
    journey = grid_page(client, "switch")
    journey.page.goto(f"{live_server.url}/p/{poll.slug}/t1/1/")
    journey.page.check('input[name="q-rate_exit"][value="3"]')
    journey.page.check('input[name="q-rate_aid"][value="dk"]')
    journey.page.locator(".languages button", has_text=label).click()
    journey.page.wait_for_load_state()
    assert journey.page.locator("html").get_attribute("lang") == other
    assert journey.page.is_checked('input[name="q-rate_exit"][value="3"]')
    assert journey.page.is_checked('input[name="q-rate_aid"][value="dk"]')
    assert journey.page.locator("#error-summary").count() == 0
    assert not Answer.objects.exists()
    journey.check("switched")
    shot(journey, "t1-switched")
    # The same on the reasons page.
    walker = to_deliberation(make_poll(slug="second-poll", design={"control_share": 0.0}), language)
    journey.page.context.add_cookies(
        [
            {"name": k, "value": m.value, "domain": urlparse(live_server.url).hostname, "path": "/"}
            for k, m in walker.cookies.items()
        ]
    )
    journey.page.goto(f"{live_server.url}/p/second-poll/deliberation/?lang={language}")
    type_drafts(journey)
    journey.page.locator(".languages button", has_text=label).click()
    journey.page.wait_for_load_state()
    assert journey.page.locator("html").get_attribute("lang") == other
    assert_drafts_kept(journey)
    assert not Reason.objects.exists()
    shot(journey, "deliberation-switched")
    journey.page.context.close()


@pytest.mark.parametrize(("language", "width", "scripts"), GRID)
def test_back_to_a_closed_step_says_so_and_shows_no_live_form(
    live_server: Any,
    poll: Poll,
    language: str,
    grid_page: Callable[[Client, str], Journey],
) -> None:
    client = to_deliberation(poll, language)
    journey = grid_page(client, "closed")
    journey.page.goto(f"{live_server.url}/p/{poll.slug}/deliberation/")
    journey.page.fill("#r-exit-text", "Saved once.")
    journey.page.check('input[name="r-exit.stance"][value="for"]')
    journey.page.locator("button.primary").click()
    journey.page.wait_for_load_state()
    assert journey.at(f"/p/{poll.slug}/t2/1/")
    journey.page.go_back()
    journey.page.wait_for_load_state()
    # Back refetched the page: the closed deliberation sends the participant on to T2, which
    # says the step is closed; no reasons form is there to type into.
    assert journey.at(f"/p/{poll.slug}/t2/1/"), journey.page.url
    notice = journey.page.locator("p.notice[role=status]")
    assert notice.count() == 1
    closed = "is closed" if language == "en" else "закрито"
    assert closed in notice.inner_text()
    assert journey.page.locator("#reasons-form").count() == 0
    journey.check("closed")
    shot(journey, "closed")
    assert list(Reason.objects.values_list("text", flat=True)) == ["Saved once."]
    journey.page.context.close()


def ranking_page(
    browser: Any, live_server: Any, axe: Path, poll: Poll, language: str, width: int
) -> Journey:
    client = Client()
    start(client, poll, lang=language)
    post_page(client, f"/p/{poll.slug}/t1/1/", T1_PAGES[0], wave=1)
    journey = browser_page(
        browser, live_server, axe, client, f"ranking-{language}-{width}", width, True
    )
    journey.page.goto(f"{live_server.url}/p/{poll.slug}/t1/2/")
    return journey


def names(journey: Journey) -> list[str]:
    return [text.strip() for text in journey.page.locator(".rank-name").all_inner_texts()]


@pytest.mark.parametrize(("language", "width"), [("en", 360), ("uk", 1280)])
def test_the_ranking_list_is_reordered_by_keyboard_and_announced(
    browser: Any, live_server: Any, axe_script: Path, poll: Poll, language: str, width: int
) -> None:
    journey = ranking_page(browser, live_server, axe_script, poll, language, width)
    page = journey.page
    assert page.locator(".q-ranking select").first.is_hidden()
    journey.check("ranking")
    shot(journey, "ranking-start")
    start_order = names(journey)
    # Move the last option to the top with the keyboard: Tab to its "up" button, then Enter.
    last = page.locator(".rank-row").last.locator("button.up")
    last.focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    assert names(journey) == [start_order[2], start_order[0], start_order[1]]
    # Focus stays on the moved option's button; at the top, "up" is disabled, so "down" has it.
    assert page.evaluate("document.activeElement.classList.contains('down')")
    live = page.locator(".q-ranking [aria-live]")
    assert start_order[2] in live.inner_text() and "1" in live.inner_text()
    journey.check("ranking-moved")
    shot(journey, "ranking-moved")
    page.locator("button.primary").click()
    page.wait_for_load_state()
    ranking = Answer.objects.get(question__key="rank", wave=1).value
    keys = {
        f"Option {k}" + (" (uk)" if language == "uk" else ""): k
        for k in ("exit", "aid", "escalate")
    }
    assert ranking == [keys[start_order[2]], keys[start_order[0]], keys[start_order[1]]]
    page.context.close()


@pytest.mark.parametrize(("language", "width"), [("en", 1280), ("uk", 360)])
def test_the_ranking_list_is_reordered_by_dragging(
    browser: Any, live_server: Any, axe_script: Path, poll: Poll, language: str, width: int
) -> None:
    journey = ranking_page(browser, live_server, axe_script, poll, language, width)
    page = journey.page
    start_order = names(journey)
    handle = page.locator(".rank-row").first.locator(".rank-handle").bounding_box()
    target = page.locator(".rank-row").last.bounding_box()
    assert handle is not None and target is not None
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(handle["x"] + 5, target["y"] + target["height"] * 0.9, steps=8)
    page.mouse.up()
    dragged = [start_order[1], start_order[2], start_order[0]]
    assert names(journey) == dragged
    assert start_order[0] in page.locator(".q-ranking [aria-live]").inner_text()
    numbers = page.locator(".rank-number").all_inner_texts()
    assert numbers == ["1", "2", "3"]
    journey.check("ranking-dragged")
    page.locator("button.primary").click()
    page.wait_for_load_state()
    suffix = " (uk)" if language == "uk" else ""
    keys = {f"Option {k}{suffix}": k for k in ("exit", "aid", "escalate")}
    assert Answer.objects.get(question__key="rank").value == [keys[n] for n in dragged]
    page.context.close()


def test_without_javascript_a_repeated_rank_is_refused_never_moved(
    browser: Any, live_server: Any, axe_script: Path, poll: Poll
) -> None:
    client = Client()
    start(client, poll, lang="uk")
    post_page(client, f"/p/{poll.slug}/t1/1/", T1_PAGES[0], wave=1)
    journey = browser_page(browser, live_server, axe_script, client, "ranking-nojs", 360, False)
    page = journey.page
    page.goto(f"{live_server.url}/p/{poll.slug}/t1/2/")
    page.select_option('select[name="q-rank.exit"]', "1")
    page.select_option('select[name="q-rank.aid"]', "1")
    # Picking rank 1 again took nothing from the other row.
    assert page.input_value('select[name="q-rank.exit"]') == "1"
    page.select_option('select[name="q-rank.escalate"]', "2")
    page.locator("button.primary").click()
    page.wait_for_load_state()
    assert page.locator("#error-summary").count() == 1
    assert page.input_value('select[name="q-rank.exit"]') == "1"
    assert page.input_value('select[name="q-rank.aid"]') == "1"
    assert not Answer.objects.filter(question__key="rank").exists()
    journey.check("ranking-error")
    shot(journey, "ranking-error")
    page.context.close()
