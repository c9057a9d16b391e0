"""The organiser's whole day in Chromium: build a small poll from scratch in the admin, pass the
readiness check, open it, generate invitations, watch participants complete it on the monitor,
and see the results charts after a recompute."""

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from surveys.models import Poll
from tests.e2e.conftest import axe_violations, watch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TIMEOUT = 60_000  # the shared CI machine can be slow to serve the first page


@pytest.fixture
def organiser() -> User:
    user = User.objects.create_user("olga", password="olga-pass-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="add_poll"))
    return user


class Checks:
    """axe-core (WCAG A/AA and best practices) and the CSP on every admin page the test sees."""

    def __init__(self, page: Any, axe: Path) -> None:
        self.page, self.csp = page, watch(page, axe)

    def __call__(self, label: str) -> None:
        violations = axe_violations(self.page)
        assert violations == [], f"{label} {self.page.url}: {violations}"
        assert self.csp == [], f"{label}: {self.csp}"


def fill_inline(page: Any, prefix: str, index: int, values: dict[str, str]) -> None:
    for name, value in values.items():
        field = page.locator(f'[name="{prefix}-{index}-{name}"]')
        if field.evaluate("node => node.tagName") == "SELECT":
            field.focus()  # a link to another list offers the keys typed there on entering
            field.select_option(value)  # by value (a key) or by label
        else:
            field.fill(value)


def add_rows(page: Any, prefix: str, rows: list[dict[str, str]]) -> None:
    """Open the list on the poll's outline page and add a row per ``rows``."""
    group = page.locator(f"#{prefix}-group")
    details = group.locator("details.outline-list")
    if details.count() and not details.evaluate("node => node.open"):
        details.locator("summary").first.click()
    for values in rows:
        index = int(page.locator(f'[name="{prefix}-TOTAL_FORMS"]').input_value())
        group.locator(".add-row a").click()
        fill_inline(page, prefix, index, values)


def save_and_continue(page: Any, check: Checks) -> None:
    page.locator('input[name="_continue"]').click()
    page.wait_for_load_state()
    assert page.locator(".errornote").count() == 0, page.locator(".errorlist").all_inner_texts()
    check("saved poll")


def build_poll(page: Any, base: str, check: Checks) -> None:
    page.goto(f"{base}/admin/surveys/poll/add/")
    check("add poll")
    page.fill('[name="slug"]', "town-hall")
    page.fill('[name="title_en"]', "Town hall")
    page.fill('[name="question_en"]', "What should the town do?")
    page.locator("fieldset.design summary").click()  # the design settings open and close
    page.fill('[name="control_share"]', "0")
    page.select_option('[name="access"]', "invitation")
    save_and_continue(page, check)
    add_rows(page, "sections", [{"key": "policy", "title_en": "Policies"}])
    add_rows(
        page,
        "positions",
        [
            {
                "key": key,
                "title_en": f"Position {key}",
                "summary_en": "In short.",
                "body_en": "The case.",
                "sources-0-title-en": "A source",
            }
            for key in ("A", "B")
        ],
    )
    add_rows(
        page,
        "options",
        [
            {"key": key, "axis": str(axis), "text_en": f"Option {key}"}
            for axis, key in enumerate(["parks", "roads", "trams"], 1)
        ],
    )
    save_and_continue(page, check)
    questions = [
        {
            "key": f"rate_{key}",
            "kind": "rating scale",
            "section": "policy",
            "waves": "T1 and T2 (paired)",
            "option": key,
            "scale_min": "0",
            "scale_max": "10",
            "text_en": f"Do you support {key}?",
        }
        for key in ("parks", "roads", "trams")
    ]
    questions.append(
        {
            "key": "rank",
            "kind": "ranking of the options",
            "section": "policy",
            "waves": "T1 and T2 (paired)",
            "text_en": "Rank the options",
        }
    )
    add_rows(page, "questions", questions)
    save_and_continue(page, check)


def complete_as_participant(browser: Any, link: str) -> None:
    """Answer every page with the first choices offered, the way a hurried participant might."""
    context = browser.new_context()
    page = context.new_page()
    csp = watch(page)
    page.set_default_timeout(TIMEOUT)
    page.goto(link)
    for _ in range(30):
        if page.url.rstrip("/").endswith("/done"):
            break
        if page.locator("#consent").count():
            page.check("#consent")
        names = set(
            page.locator('input[type="radio"]').evaluate_all("nodes => nodes.map(n => n.name)")
        )
        for index, name in enumerate(sorted(names)):
            radios = page.locator(f'input[type="radio"][name="{name}"]')
            radios.nth(min(index + 2, radios.count() - 1)).check()
        # A ranking is a reorderable list over hidden selects: a hurried participant keeps the
        # order it shows.
        keep = page.locator(".rank-tools button.secondary")
        if keep.count() and keep.is_visible():
            keep.click()
        selects = page.locator("select:visible")
        for index in range(selects.count()):
            values = [
                v
                for v in selects.nth(index)
                .locator("option")
                .evaluate_all("nodes => nodes.map(n => n.value)")
                if v
            ]
            selects.nth(index).select_option(values[index % len(values)])
        for area in page.locator("textarea").all():
            area.fill("Because it helps most people.")
        page.locator("button.primary").click()
        page.wait_for_load_state()
    assert page.url.rstrip("/").endswith("/done"), page.url
    assert csp == []
    context.close()


def funnel_count(page: Any, stage: str) -> str:
    """The count on a bar of the monitor's funnel (all arms)."""
    return page.locator(f'.funnel-bars li[data-stage="{stage}"] strong').inner_text().strip()


def test_an_organiser_builds_opens_invites_monitors_and_reads_results(
    browser: Any, live_server: Any, organiser: User, axe_script: Path
) -> None:
    base = live_server.url
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    check = Checks(page, axe_script)
    page.set_default_timeout(TIMEOUT)
    page.set_default_navigation_timeout(TIMEOUT)
    page.goto(f"{base}/admin/login/")
    check("login")
    page.fill("#id_username", "olga")
    page.fill("#id_password", "olga-pass-123")
    page.click('input[type="submit"]')
    page.wait_for_url(f"{base}/admin/")
    check("index")

    build_poll(page, base, check)
    poll = Poll.objects.get(slug="town-hall")
    assert poll.organisers.get() == organiser and poll.questions.count() == 4

    page.locator(".poll-tabs a", has_text="Readiness").click()
    # Ready, with a warning: the poll has no control group.
    heading = page.locator("#checklist-heading").inner_text()
    assert heading.startswith("Ready to open"), page.locator(".check-fail").all_inner_texts()
    assert page.locator("#check-control.check-warn").count() == 1
    check("readiness")
    page.locator("a.button", has_text="Open the poll").click()
    check("confirm opening")
    page.locator('input[type="submit"][value="Yes, open the poll"]').click()
    assert page.locator(".poll-status").inner_text().lower() == "open"
    check("opened")

    page.locator(".poll-tabs a", has_text="Invitations").click()
    check("invitations")
    page.fill('[name="count"]', "2")
    with page.expect_download() as download:
        page.locator('input[type="submit"]').click()
    text = download.value.path().read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 2 and all("/i/" in row["link"] for row in rows)

    page.goto(f"{base}/admin/surveys/poll/{poll.pk}/monitor/")
    assert page.locator(".funnel-note").get_attribute("data-invited") == "2"
    assert funnel_count(page, "completed") == "0"
    check("monitor")
    for row in rows:
        complete_as_participant(browser, row["link"])
    # The monitor refreshes itself: no reload here.
    page.wait_for_function(
        """() => document.querySelector('.funnel-bars li[data-stage="completed"] strong')
              .innerText.trim() === "2" """,
        timeout=TIMEOUT,
    )

    page.goto(f"{base}/admin/surveys/poll/{poll.pk}/results/")
    page.locator("#recompute button").click()
    page.wait_for_selector("#chart-forest", timeout=TIMEOUT)
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-forest')")
    assert page.locator('canvas[id^="chart-distributions"]').first.is_visible()
    assert "2 people" in page.locator(".results-meta").inner_text()
    check("results")
    page.goto(f"{base}/admin/surveys/poll/{poll.pk}/preview/")
    check("preview")
    page.goto(f"{base}/admin/surveys/participant/")
    check("participants")
    page.goto(f"{base}/admin/surveys/reason/")
    check("moderation queue")
    context.close()
