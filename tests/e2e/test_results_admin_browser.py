"""The organiser's pages in a real Chromium, with axe on each: the landing page and its next
step, results with treatment beside control by default, moderation cards worked with the
keyboard, invitation counts that follow the download, the monitor's funnel."""

from typing import Any

import pytest

from results.compute.recompute import recompute_poll
from results.simulate import add_simulated_participants
from surveys.models import Participant, Poll, Reason
from tests.e2e.conftest import axe_violations, watch
from tests.surveys.admin_fixtures import poll_with_activity, staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TIMEOUT = 60_000


def signed_in(browser: Any, base: str, axe_script: Any, language: str = "en") -> tuple:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    refused = watch(page, axe_script)
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", "x")
    page.click('input[type="submit"]')
    page.wait_for_selector(".landing")
    return context, page, refused


def assert_accessible(page: Any, refused: list[str]) -> None:
    assert axe_violations(page) == []
    assert refused == []


@pytest.mark.parametrize("language", ["en", "uk"])
def test_results_open_with_treatment_beside_control_and_the_difference_first(
    browser: Any, live_server: Any, computed: Poll, axe_script: Any, language: str
) -> None:
    staff("olga", polls=(computed,))
    context, page, refused = signed_in(browser, live_server.url, axe_script, language)
    assert page.locator("html").get_attribute("lang") == language
    page.goto(f"{live_server.url}/admin/surveys/poll/{computed.pk}/results/")
    for chart in ("chart-did", "chart-distributions-treatment", "chart-distributions-control"):
        page.wait_for_function(f"() => window.Chart && Chart.getChart('{chart}')")
    assert page.locator("select[name=arm]").input_value() == "compare"
    # The difference in differences is the first chart, before the distributions.
    cards = page.locator("section.chart-card canvas").evaluate_all("ns => ns.map(n => n.id)")
    assert cards[0] == "chart-did"
    # Treatment and control stand side by side: same height on the page, control to the right.
    treatment = page.locator("#chart-distributions-treatment").bounding_box()
    control = page.locator("#chart-distributions-control").bounding_box()
    assert abs(treatment["y"] - control["y"]) < 2 and control["x"] > treatment["x"] + 300
    # Every chart has a table of its numbers right under it.
    for canvas in page.locator("section.chart-card canvas").all():
        follows = canvas.evaluate(
            "n => !!n.closest('.chart-box').parentElement.querySelector('.chart-box ~ table, "
            ".chart-box ~ details table')"
        )
        assert follows, canvas.get_attribute("id")
    assert page.locator("#completions-since").inner_text()
    assert_accessible(page, refused)
    # The pooled view is one choice away and draws one panel.
    page.select_option("select[name=arm]", "all")
    page.locator(".results-controls button").click()
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-distributions-all')")
    assert page.locator("#chart-distributions-treatment").count() == 0
    context.close()


def test_moderation_cards_are_worked_with_the_keyboard(
    browser: Any, live_server: Any, axe_script: Any
) -> None:
    poll = poll_with_activity("alpha")
    first = poll.reasons.get()
    other = Reason.objects.create(
        poll=poll,
        participant=poll.participants.exclude(pk=first.participant_id).first(),
        option=first.option,
        stance="against",
        text="A second reason, visible and unreported.",
    )
    staff("olga", polls=(poll,))
    context, page, refused = signed_in(browser, live_server.url, axe_script)
    page.goto(f"{live_server.url}/admin/surveys/reason/")
    card = page.locator(f"#reason-{first.pk}")
    assert first.text in card.inner_text()
    assert_accessible(page, refused)
    # Tab from the card reaches its checkbox, then its Hide button; Enter presses it.
    card.focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className")
    assert "moderate-hide" in focused
    page.keyboard.press("Enter")
    page.wait_for_selector(".messagelist")
    assert "Hid 1 reason." in page.locator(".messagelist").inner_text()
    first.refresh_from_db()
    assert first.state == Reason.State.HIDDEN
    # The page came back at the next card, which holds the focus.
    assert page.evaluate("document.activeElement.id") == f"reason-{other.pk}"
    assert_accessible(page, refused)
    context.close()


def test_landing_monitor_and_invitation_counts(
    browser: Any, live_server: Any, axe_script: Any
) -> None:
    poll = poll_with_activity("alpha")
    Poll.objects.filter(pk=poll.pk).update(status=Poll.Status.OPEN)
    add_simulated_participants(poll=poll, n=6, seed=2)
    recompute_poll(poll.pk)
    staff("olga", polls=(poll,))
    context, page, refused = signed_in(browser, live_server.url, axe_script)
    row = page.locator("tr[data-poll=alpha]")
    assert "Moderate 1 reported reason" in row.inner_text()
    assert_accessible(page, refused)

    page.goto(f"{live_server.url}/admin/surveys/poll/{poll.pk}/monitor/")
    bars = page.locator(".funnel-bars li")
    assert bars.first.get_attribute("data-stage") == "started"
    widths = [
        bar.evaluate("n => n.querySelector('.bar').getBoundingClientRect().width")
        for bar in bars.all()
    ]
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]
    assert "finished faster" in page.locator(".flag-list").inner_text()
    assert_accessible(page, refused)

    page.goto(f"{live_server.url}/admin/surveys/poll/{poll.pk}/invitations/")
    invited = poll.participants.invited().count()
    assert page.locator("#invitation-counts dd").first.inner_text() == str(invited)
    page.fill("#id_count", "3")
    with page.expect_download() as download:
        page.locator(".invitation-form [type=submit]").click()
    assert download.value.suggested_filename.endswith(".csv")
    page.wait_for_function(
        f"() => document.querySelector('#invitation-counts dd').textContent.trim() === "
        f"'{invited + 3}'"
    )
    assert Participant.objects.filter(poll=poll).invited().count() == invited + 3
    assert page.locator("#invitation-refresh").inner_text()
    assert_accessible(page, refused)
    context.close()
