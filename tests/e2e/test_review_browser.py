"""What a review of the poll over time found in Chromium, walked as participants would."""

from pathlib import Path
from typing import Any

import pytest

from surveys.models import Poll, Reason
from tests.e2e.test_input_kept_browser import browser_page, to_deliberation
from tests.e2e.test_journey_browser import Journey
from tests.factories import make_poll
from tests.surveys.test_journey import post_page
from tests.surveys.test_schedule import in_days, scheduled_poll

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def poll() -> Poll:
    return make_poll(design={"control_share": 0.0, "group_size": 4})


@pytest.mark.parametrize(("language", "width"), [("en", 360), ("uk", 1280)])
def test_a_keyboard_user_who_reports_a_reason_keeps_their_place(
    browser: Any, live_server: Any, axe_script: Path, poll: Poll, language: str, width: int
) -> None:
    """The report button is replaced by "You reported this reason": focus must land on that
    note, not fall back to the top of the page, so the next Tab goes on from the reason."""
    for words in ("First abusive words.", "Second abusive words."):
        author = to_deliberation(poll, language)
        post_page(
            author, f"/p/{poll.slug}/deliberation/", {"r-exit.stance": "for", "r-exit.text": words}
        )
    reader = to_deliberation(poll, language)
    journey = browser_page(
        browser, live_server, axe_script, reader, f"keyboard-report-{language}", width, True
    )
    page = journey.page
    page.goto(f"{live_server.url}/p/{poll.slug}/deliberation/")
    page.locator("button.report").first.focus()
    page.keyboard.press("Enter")
    page.locator(".reasons .reported").wait_for()
    assert page.evaluate("document.activeElement.classList.contains('reported')")
    # The note stands on the line the button had, under its reason.
    assert page.evaluate("getComputedStyle(document.querySelector('.reported')).display") == (
        "block"
    )
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('report')")
    assert Reason.objects.filter(report_count=1).count() == 1
    journey.check("keyboard-reported")
    page.context.close()


@pytest.mark.parametrize(("language", "width"), [("uk", 360), ("en", 1280)])
def test_the_not_yet_open_page_switches_language_and_passes_axe(
    browser: Any, live_server: Any, axe_script: Path, language: str, width: int
) -> None:
    poll = scheduled_poll(t1_opens=in_days(10), t2_opens=in_days(20))
    context = browser.new_context(viewport={"width": width, "height": 800})
    journey = Journey(context.new_page(), axe_script, f"not-yet-{language}-{width}")
    journey.page.goto(f"{live_server.url}/p/{poll.slug}/?lang={language}")
    other = "en" if language == "uk" else "uk"
    journey.check("not-yet")
    journey.page.locator(f'nav.languages a[hreflang="{other}"]').click()
    journey.page.wait_for_load_state()
    heading = journey.page.locator("h1").inner_text()
    assert heading == (
        "This poll has not opened yet" if other == "en" else "Це опитування ще не відкрито"
    )
    journey.check("not-yet-switched")
    context.close()


@pytest.mark.parametrize(("language", "width"), [("en", 360), ("uk", 1280)])
def test_a_report_the_server_did_not_record_is_never_confirmed(
    browser: Any, live_server: Any, axe_script: Path, poll: Poll, language: str, width: int
) -> None:
    """A moderator hid the reason while the page was open: the report records nothing, so the
    page must not say "You reported this reason"; it comes back (drafts kept) without it."""
    author = to_deliberation(poll, language)
    post_page(
        author, f"/p/{poll.slug}/deliberation/", {"r-exit.stance": "for", "r-exit.text": "Gone."}
    )
    reader = to_deliberation(poll, language)
    journey = browser_page(
        browser, live_server, axe_script, reader, f"hidden-report-{language}", width, True
    )
    page = journey.page
    page.goto(f"{live_server.url}/p/{poll.slug}/deliberation/")
    page.fill("#r-aid-text", "Typed before the report")
    Reason.objects.update(state=Reason.State.HIDDEN)
    with page.expect_navigation():
        page.locator("button.report").click()
    assert page.locator(".reasons .reported").count() == 0
    assert page.locator("#report-status").inner_text() == ""
    shown = page.locator("main").inner_text()
    assert "Gone." not in shown
    thanks = "moderator" if language == "en" else "модератор"
    assert thanks not in shown.lower(), shown[:300]
    assert page.input_value("#r-aid-text") == "Typed before the report"
    assert not Reason.objects.filter(report_count__gt=0).exists()
    page.context.close()
