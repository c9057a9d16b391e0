"""The whole journey in Chromium: both arms, both position orders, both languages, a resume
after closing the browser, no JavaScript, keyboard use, and axe-core on every page."""

import os
from pathlib import Path
from typing import Any

import pytest

from surveys.models import Participant, Poll
from tests.e2e.conftest import axe_violations, watch
from tests.factories import make_poll
from tests.surveys.test_journey import EXPECTED, T1_PAGES, T2_PAGES, stored

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("JOURNEY_SCREENSHOTS")


class Journey:
    def __init__(self, page: Any, axe: Path, name: str, *, scripts: bool = True) -> None:
        self.axe, self.name, self.checked = axe, name, 0
        self.scripts = scripts  # without JavaScript, axe runs in a twin page (see below)
        self.twin_url = ""
        self.use(page)

    def use(self, page: Any) -> None:
        self.page = page
        self.csp = watch(page, self.axe if self.scripts else None)

    def axe_without_scripts(self) -> list[dict[str, Any]]:
        """axe on the page as served with JavaScript off: a twin page with the same cookies
        loads the same URL with the site's own scripts refused, and axe runs there."""
        context = self.page.context
        twin_context = context.browser.new_context(storage_state=context.storage_state())
        twin = twin_context.new_page()
        twin.route("**/static/**/*.js", lambda route: route.abort())
        refused = watch(twin, self.axe)
        # A page that answered a POST (a report sent with the reasons form) is checked at the
        # step's own address, which draws the same page.
        twin.goto(self.twin_url or self.page.url)
        violations = axe_violations(twin)
        twin_context.close()
        return violations + [{"csp": message} for message in refused]

    def check(self, label: str) -> None:
        """axe-core finds no violation and the CSP refused nothing; screenshots at 360 px and
        desktop width on request."""
        violations = axe_violations(self.page) if self.scripts else self.axe_without_scripts()
        assert violations == [], f"{self.name} {label} {self.page.url}: {violations}"
        assert self.csp == [], f"{self.name} {label}: {self.csp}"
        self.checked += 1
        if SHOTS:
            for width, height in ((360, 740), (1280, 900)):
                self.page.set_viewport_size({"width": width, "height": height})
                path = Path(SHOTS) / f"{self.name}-{self.checked:02d}-{label}-{width}.png"
                self.page.screenshot(path=str(path), full_page=True)
            self.page.set_viewport_size({"width": 1280, "height": 900})

    def answer(self, data: dict[str, str]) -> None:
        ranks = {n: v for n, v in data.items() if self.page.locator(f'select[name="{n}"]').count()}
        if ranks and self.scripts:
            self.rank(ranks)
        for name, value in data.items():
            if name not in ranks:
                self.page.check(f'input[name="{name}"][value="{value}"]')
            elif not self.scripts:
                self.page.locator(f'select[name="{name}"]').select_option(value)

    def rank(self, ranks: dict[str, str]) -> None:
        """Order a ranking as a participant with JavaScript does: the list's "up" buttons (its
        selects are hidden and follow the list)."""
        for position, name in enumerate(sorted(ranks, key=lambda n: int(ranks[n]))):
            row = self.page.locator(f'.rank-row:has(select[name="{name}"])')
            while row.evaluate("r => [...r.parentNode.children].indexOf(r)") > position:
                row.locator("button.up").click()
        if self.page.locator(".rank-tools button.secondary").is_visible():
            self.page.locator(".rank-tools button.secondary").click()  # "Keep this order"
        for name, value in ranks.items():
            assert self.page.input_value(f'select[name="{name}"]') == value

    def submit(self) -> None:
        self.page.locator("button.primary").click()
        self.page.wait_for_load_state()

    def at(self, path: str) -> bool:
        return self.page.url.split("?")[0].endswith(path)


def answer_wave(journey: Journey, slug: str, step: str, pages: list[dict[str, str]]) -> None:
    for number, data in enumerate(pages, 1):
        assert journey.at(f"/p/{slug}/{step}/{number}/"), journey.page.url
        journey.check(f"{step}-{number}")
        journey.answer(data)
        journey.submit()


def briefing_and_deliberation(journey: Journey, slug: str, first_position: str) -> None:
    assert journey.at(f"/p/{slug}/briefing/1/")
    assert journey.page.locator("h1").inner_text().startswith(f"Position {first_position}")
    for number in (1, 2, 3):
        journey.check(f"briefing-{number}")
        journey.submit()
    assert journey.at(f"/p/{slug}/deliberation/")
    journey.check("deliberation")
    journey.page.check('input[name="r-exit.stance"][value="for"]')
    journey.page.fill("#r-exit-text", "Fewer deaths.")
    journey.submit()


def past_next_page(journey: Journey, slug: str) -> None:
    """The control arm is told what happens next before its T2."""
    assert journey.at(f"/p/{slug}/next/"), journey.page.url
    journey.check("next")
    journey.submit()


def welcome(journey: Journey, url: str) -> None:
    journey.page.goto(url)
    journey.check("welcome")
    journey.page.check("#consent")
    journey.submit()


@pytest.fixture
def poll() -> Poll:
    poll = make_poll(design={"control_share": 0.0, "group_size": 4})
    # Like the seed poll, the positions head their arguments with "###" under the page's h1,
    # which axe's heading-order rule reports unless the levels are moved up.
    for position in poll.positions.all():
        position.body = {
            language: f"{text}\n\n### Key arguments\n\n- One.\n\n#### In detail\n\nMore."
            for language, text in position.body.items()
        }
        position.save(update_fields=["body"])
    return poll


def participant_of(poll: Poll, language: str) -> Participant:
    return Participant.objects.filter(poll=poll, language=language).latest("id")


def test_treatment_journeys_in_english_and_ukrainian_in_both_position_orders(
    browser: Any, live_server: Any, axe_script: Path, poll: Poll
) -> None:
    slug = poll.slug
    # English, chosen by the browser's preference; keyboard on the first question; errors first.
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    journey = Journey(context.new_page(), axe_script, "treatment-en")
    welcome(journey, f"{live_server.url}/p/{slug}/")
    journey.submit()  # nothing answered: messages next to each field, linked from a summary
    summary = journey.page.locator("#error-summary")
    assert summary.is_visible()
    assert journey.page.evaluate("document.activeElement.id") == "error-summary"
    # One count for the page, linked to its first question (the option order is random).
    first = journey.page.locator("fieldset.question input").first.get_attribute("id")
    assert summary.locator(f'a[href="#{first}"]').inner_text() == "3 questions need an answer."
    journey.check("t1-errors")
    journey.page.focus("#q-rate_exit")
    for _ in range(3):
        journey.page.keyboard.press("ArrowRight")
    assert journey.page.locator("#q-rate_exit-3").is_checked()
    journey.answer({k: v for k, v in T1_PAGES[0].items() if k != "q-rate_exit"})
    journey.submit()
    answer_wave_from(journey, slug, 2)
    briefing_and_deliberation(journey, slug, "A")
    answer_wave(journey, slug, "t2", T2_PAGES)
    assert journey.at(f"/p/{slug}/done/")
    assert "from 3 to 7" in journey.page.content()
    journey.check("done")
    context.close()

    # Ukrainian, chosen by the link.
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    journey = Journey(context.new_page(), axe_script, "treatment-uk")
    welcome(journey, f"{live_server.url}/p/{slug}/?lang=uk")
    assert journey.page.locator("html").get_attribute("lang") == "uk"
    answer_wave(journey, slug, "t1", T1_PAGES)
    assert journey.page.locator("h1").inner_text().startswith("Position B (uk)")
    briefing_and_deliberation_uk(journey, slug)
    answer_wave(journey, slug, "t2", T2_PAGES)
    assert "з 3 до 7" in journey.page.content()
    journey.check("done")
    context.close()

    english, ukrainian = participant_of(poll, "en"), participant_of(poll, "uk")
    assert (english.arm, english.position_order) == ("treatment", ["A", "B"])
    assert (ukrainian.arm, ukrainian.position_order) == ("treatment", ["B", "A"])
    assert stored(english) == EXPECTED
    assert stored(ukrainian) == EXPECTED
    assert english.reasons.get().text == "Fewer deaths."
    assert (english.group_language, ukrainian.group_language) == ("en", "uk")
    assert english.group != ukrainian.group


def answer_wave_from(journey: Journey, slug: str, first: int) -> None:
    for number in range(first, len(T1_PAGES) + 1):
        assert journey.at(f"/p/{slug}/t1/{number}/"), journey.page.url
        journey.check(f"t1-{number}")
        journey.answer(T1_PAGES[number - 1])
        journey.submit()


def briefing_and_deliberation_uk(journey: Journey, slug: str) -> None:
    for number in (1, 2, 3):
        assert journey.at(f"/p/{slug}/briefing/{number}/")
        journey.check(f"briefing-{number}")
        journey.submit()
    journey.check("deliberation")
    # Small groups form within a language: the English participant's reason is in another group.
    assert "Fewer deaths." not in journey.page.content()
    journey.page.check('input[name="r-exit.stance"][value="against"]')
    journey.page.fill("#r-exit-text", "Impunity.")
    journey.submit()


def test_control_journeys_resume_after_closing_the_browser_and_work_without_javascript(
    browser: Any, live_server: Any, axe_script: Path, poll: Poll
) -> None:
    Poll.objects.filter(pk=poll.pk).update(control_share=0.99)
    slug = poll.slug
    # Ukrainian through the switcher, with JavaScript off; the browser closes after page 2.
    context = browser.new_context(locale="en-GB", java_script_enabled=False)
    journey = Journey(context.new_page(), axe_script, "control-uk", scripts=False)
    journey.page.goto(f"{live_server.url}/p/{slug}/")
    journey.page.click("text=Українська")
    journey.check("welcome")
    journey.page.check("#consent")
    journey.submit()
    answer_wave(journey, slug, "t1", T1_PAGES[:2])
    saved = context.storage_state()
    context.close()
    context = browser.new_context(storage_state=saved, java_script_enabled=False)
    journey.use(context.new_page())
    journey.page.goto(f"{live_server.url}/p/{slug}/")
    assert journey.at(f"/p/{slug}/t1/3/")
    journey.page.goto(f"{live_server.url}/p/{slug}/t1/1/")
    assert journey.page.locator('input[name="q-rate_exit"][value="3"]').is_checked()
    journey.page.goto(f"{live_server.url}/p/{slug}/t1/3/")
    answer_wave_from(journey, slug, 3)
    past_next_page(journey, slug)
    answer_wave(journey, slug, "t2", T2_PAGES)
    assert journey.at(f"/p/{slug}/done/")
    journey.check("done")
    context.close()
    # English with JavaScript on.
    context = browser.new_context(locale="en-US")
    journey = Journey(context.new_page(), axe_script, "control-en")
    welcome(journey, f"{live_server.url}/p/{slug}/")
    answer_wave(journey, slug, "t1", T1_PAGES)
    past_next_page(journey, slug)
    answer_wave(journey, slug, "t2", T2_PAGES)
    journey.check("done")
    context.close()
    for language in ("uk", "en"):
        participant = participant_of(poll, language)
        assert participant.arm == "control"
        assert participant.completed_at is not None
        assert stored(participant) == EXPECTED
