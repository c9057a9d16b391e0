"""A poll over time in Chromium: a control participant on a phone with JavaScript and a
treatment participant on a desktop without it finish T1, are told what happens next, wait,
cannot reach T2, and come back through their return link once T2 opens; every new page is
checked by axe-core in English and Ukrainian."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from surveys.definition.files import save_poll, validate
from surveys.journey import tokens
from surveys.models import Answer, Participant, Poll
from tests.e2e.test_journey_browser import SHOTS, Journey, answer_wave
from tests.surveys.test_journey import T1_PAGES
from tests.surveys.test_schedule import CONTROL_T2, TREATMENT_T2, definition

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


class TimedJourney(Journey):
    """A journey that keeps its own viewport (a phone stays a phone between screenshots)."""

    def __init__(self, page: Any, axe: Path, name: str, *, scripts: bool, viewport: Any) -> None:
        super().__init__(page, axe, name, scripts=scripts)
        self.viewport = viewport

    def use(self, page: Any) -> None:
        super().use(page)
        if hasattr(self, "viewport"):
            page.set_viewport_size(self.viewport)

    def check(self, label: str) -> None:
        super().check(label)
        if SHOTS:
            self.page.set_viewport_size(self.viewport)

    def check_both_languages(self, label: str) -> None:
        """axe (and screenshots) on this page in its language, then in the other one."""
        url = self.page.url.split("?")[0]
        own = self.page.locator("html").get_attribute("lang")
        other = "uk" if own == "en" else "en"
        self.check(f"{label}-{own}")
        self.page.goto(f"{url}?lang={other}")
        assert self.page.locator("html").get_attribute("lang") == other
        self.check(f"{label}-{other}")
        self.page.goto(f"{url}?lang={own}")


def deliberate(journey: Journey, slug: str) -> None:
    for number in (1, 2, 3):
        assert journey.at(f"/p/{slug}/briefing/{number}/"), journey.page.url
        journey.submit()
    assert journey.at(f"/p/{slug}/deliberation/")
    journey.page.check('input[name="r-exit.stance"][value="for"]')
    journey.page.fill("#r-exit-text", "Fewer deaths.")
    journey.submit()


def to_the_wait(journey: TimedJourney, live_server: Any, poll: Poll, *, arm: str) -> Participant:
    """Consent, the arm fixed (assignment is random), T1, the page on what happens next."""
    slug = poll.slug
    journey.page.check("#consent")
    journey.submit()
    participant = Participant.objects.filter(poll=poll).latest("id")
    Participant.objects.filter(pk=participant.pk).update(arm=arm, group=1)
    answer_wave(journey, slug, "t1", T1_PAGES)
    assert journey.at(f"/p/{slug}/next/"), journey.page.url
    journey.check_both_languages(f"next-{arm}")
    journey.submit()
    if arm == "treatment":
        deliberate(journey, slug)
    assert journey.at(f"/p/{slug}/wait/"), journey.page.url
    journey.check_both_languages(f"wait-{arm}")
    # T2 by URL before it opens: the wait again, never the questionnaire.
    for path in ("t2/1/", "t2/2/", "done/"):
        journey.page.goto(f"{live_server.url}/p/{slug}/{path}")
        assert journey.at(f"/p/{slug}/wait/"), journey.page.url
    participant.refresh_from_db()
    return participant


def return_link_on_page(journey: Journey) -> str:
    field = journey.page.locator("#return-url")
    assert field.get_attribute("readonly") is not None
    return field.input_value()


def calendar_event(journey: Journey) -> Any:
    with journey.page.expect_download() as download:
        journey.page.click('a[href$="return.ics"]')
    calendar = icalendar.Calendar.from_ical(Path(download.value.path()).read_bytes())
    (event,) = calendar.walk("VEVENT")
    return event


def test_a_control_and_a_treatment_participant_wait_and_come_back_through_their_link(
    browser: Any, live_server: Any, axe_script: Path
) -> None:
    opens = timezone.now().replace(microsecond=0) + timedelta(days=3)
    poll, _ = save_poll(
        data=validate(definition(t2_opens=opens.isoformat()), "<test>"), source="<test>"
    )
    slug = poll.slug

    # Control: English, a phone, JavaScript on (the copy button works).
    phone = browser.new_context(locale="en-GB", viewport=PHONE)
    phone.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    control = TimedJourney(
        phone.new_page(), axe_script, "sched-control", scripts=True, viewport=PHONE
    )
    control.page.goto(f"{live_server.url}/p/{slug}/")
    control_participant = to_the_wait(control, live_server, poll, arm="control")
    control.page.goto(f"{live_server.url}/p/{slug}/wait/")
    control_link = return_link_on_page(control)
    assert (
        control_link == f"{live_server.url}/r/{tokens.return_token(control_participant.public_id)}/"
    )
    copy = control.page.locator("button.copy-button")
    assert copy.is_visible()
    copy.click()
    # The status is set when the clipboard's promise settles: wait for it, do not race it.
    expect(control.page.locator(".copy-status")).to_have_text("Copied")
    assert control.page.evaluate("navigator.clipboard.readText()") == control_link
    event = calendar_event(control)
    assert event.decoded("DTSTART") == opens and str(event["URL"]) == control_link

    # Treatment: Ukrainian, a desktop, JavaScript off (the link is in a field to select).
    desktop = browser.new_context(locale="uk-UA", viewport=DESKTOP, java_script_enabled=False)
    treatment = TimedJourney(
        desktop.new_page(), axe_script, "sched-treatment", scripts=False, viewport=DESKTOP
    )
    treatment.page.goto(f"{live_server.url}/p/{slug}/?lang=uk")
    assert treatment.page.locator("html").get_attribute("lang") == "uk"
    treatment_participant = to_the_wait(treatment, live_server, poll, arm="treatment")
    treatment.page.goto(f"{live_server.url}/p/{slug}/wait/")
    assert "До зустрічі" in treatment.page.locator("h1").inner_text()
    assert not treatment.page.locator("button.copy-button").is_visible()
    treatment_link = return_link_on_page(treatment)
    assert calendar_event(treatment).decoded("DTSTART") == opens
    phone.close()
    desktop.close()

    # Before the opening, the link shows the date again.
    early = browser.new_context(viewport=PHONE)
    page = early.new_page()
    page.goto(control_link)
    assert page.url.endswith(f"/p/{slug}/wait/")
    early.close()

    # The opening: both come back from a fresh browser, through the link alone.
    poll.t2_opens = timezone.now() - timedelta(minutes=1)
    poll.save()
    phone = browser.new_context(locale="en-GB", viewport=PHONE)
    control.use(phone.new_page())
    control.page.goto(control_link)
    answer_wave(control, slug, "t2", CONTROL_T2)
    assert control.at(f"/p/{slug}/done/")
    control.check_both_languages("done-control")
    control.page.click(f'a[href="/p/{slug}/positions/"]')
    assert control.at(f"/p/{slug}/positions/")
    control.check_both_languages("positions")
    phone.close()

    desktop = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    treatment.use(desktop.new_page())
    treatment.page.goto(treatment_link)
    assert treatment.page.locator("html").get_attribute("lang") == "uk"
    answer_wave(treatment, slug, "t2", TREATMENT_T2)
    assert treatment.at(f"/p/{slug}/done/")
    assert treatment.page.locator(f'a[href="/p/{slug}/positions/"]').count() == 0
    desktop.close()

    for participant, keys in ((control_participant, 5), (treatment_participant, 6)):
        participant.refresh_from_db()
        assert participant.completed_at is not None
        assert Answer.objects.filter(participant=participant, wave=2).count() == keys


def test_the_not_yet_open_and_no_longer_open_pages_pass_axe_in_both_languages(
    browser: Any, live_server: Any, axe_script: Path
) -> None:
    data = definition(t1_opens=(timezone.now() + timedelta(days=1)).isoformat())
    poll, _ = save_poll(data=validate(data, "<test>"), source="<test>")
    for viewport in (PHONE, DESKTOP):
        context = browser.new_context(viewport=viewport)
        journey = TimedJourney(
            context.new_page(),
            axe_script,
            f"sched-not-yet-{viewport['width']}",
            scripts=True,
            viewport=viewport,
        )
        for language in ("en", "uk"):
            journey.page.goto(f"{live_server.url}/p/{poll.slug}/?lang={language}")
            assert journey.page.locator("html").get_attribute("lang") == language
            journey.check(f"not-yet-{language}")
        context.close()
    Poll.objects.filter(pk=poll.pk).update(
        t1_opens=None, t1_closes=timezone.now() - timedelta(minutes=1)
    )
    context = browser.new_context(viewport=PHONE)
    journey = TimedJourney(
        context.new_page(), axe_script, "sched-closed", scripts=True, viewport=PHONE
    )
    for language in ("en", "uk"):
        journey.page.goto(f"{live_server.url}/p/{poll.slug}/?lang={language}")
        journey.check(f"t1-closed-{language}")
    context.close()
