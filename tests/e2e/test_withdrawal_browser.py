"""Withdrawal through the return link in Chromium: a participant on a phone in English with
JavaScript and one on a desktop in Ukrainian without it open their link, (one of them asks for
the reminder,) follow "withdraw", confirm, and are gone; their link then says they withdrew.
axe-core checks the welcome page's consent facts, the see-you page with its reminder form, the
confirmation and the withdrawn pages in both languages."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from playwright.sync_api import expect

from surveys.definition.files import save_poll, validate
from surveys.journey import tokens
from surveys.models import Answer, Participant, Poll, ReminderAddress, Withdrawal
from tests.e2e.test_schedule_browser import DESKTOP, PHONE, TimedJourney
from tests.surveys.test_schedule import definition, finish_t1, in_days

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CONSENT = {
    "run_by": {"en": "The Civic Lab, Kyiv", "uk": "Громадська лабораторія, Київ"},
    "contact_email": "team@example.org",
    "duration_minutes": 20,
}


def waiting_participant(poll: Poll, language: str) -> tuple[Participant, str]:
    """Someone who finished T1 earlier (in ``language``) and waits: (participant, link)."""
    client = Client()
    participant, location = finish_t1(client, poll, arm="control")
    client.post(location, {})
    client.get(f"/p/{poll.slug}/wait/", {"lang": language})
    participant.refresh_from_db()
    assert participant.step == Participant.Step.WAIT
    return participant, f"/r/{tokens.return_token(participant.public_id)}/"


def on_phone_then_desktop(browser: Any, axe_script: Path, name: str) -> Iterator[TimedJourney]:
    """A fresh journey on a phone with scripts, then on a desktop without; each browser context
    is closed once the loop body has checked its page."""
    for viewport, scripts in ((PHONE, True), (DESKTOP, False)):
        context = browser.new_context(viewport=viewport, java_script_enabled=scripts)
        yield TimedJourney(
            context.new_page(),
            axe_script,
            f"{name}-{viewport['width']}",
            scripts=scripts,
            viewport=viewport,
        )
        context.close()


def withdraw_through_the_link(
    journey: TimedJourney, live_server: Any, poll: Poll, *, language: str, remind: bool
) -> None:
    participant, link = waiting_participant(poll, language)
    slug = poll.slug
    journey.page.goto(f"{live_server.url}{link}")
    assert journey.at(f"/p/{slug}/wait/"), journey.page.url
    assert journey.page.locator("html").get_attribute("lang") == language
    journey.check_both_languages("wait")
    if remind:
        journey.page.fill("#reminder-email", "me@example.org")
        journey.page.locator("form.reminder button.primary").click()
        journey.page.wait_for_load_state()
        expect(journey.page.locator("p.notice[role=status]")).to_be_visible()
        journey.check(f"wait-reminder-{language}")
        assert ReminderAddress.objects.filter(participant=participant).exists()
    journey.page.locator("p.withdraw-link a").click()
    journey.page.wait_for_load_state()
    assert journey.at(f"/p/{slug}/withdraw/"), journey.page.url
    journey.check_both_languages("withdraw")
    assert Participant.objects.filter(pk=participant.pk).exists()  # looking changes nothing
    journey.page.locator("form.withdraw button.primary").click()
    journey.page.wait_for_load_state()
    assert journey.at(f"/p/{slug}/withdrawn/"), journey.page.url
    assert journey.page.locator("html").get_attribute("lang") == language
    journey.check_both_languages("withdrawn")
    assert not Participant.objects.filter(pk=participant.pk).exists()
    assert not Answer.objects.filter(participant_id=participant.pk).exists()
    assert not ReminderAddress.objects.exists()
    # The link still answers, politely: it says they withdrew.
    response = journey.page.goto(f"{live_server.url}{link}?lang={language}")
    assert response is not None and response.status == 410
    assert journey.page.locator("h1").inner_text() in (
        "You have withdrawn",
        "Ви відмовилися від участі",
    )
    journey.check(f"link-after-{language}")


def test_participants_withdraw_through_their_return_link_on_a_phone_and_a_desktop(
    browser: Any, live_server: Any, axe_script: Path
) -> None:
    data = definition(t2_opens=in_days(3))
    data["consent"] = CONSENT
    poll, _ = save_poll(data=validate(data, "<test>"), source="<test>")

    # A newcomer reads who runs the poll, how long it takes and how to withdraw.
    phone = browser.new_context(locale="en-GB", viewport=PHONE)
    newcomer = TimedJourney(
        phone.new_page(), axe_script, "withdraw-welcome", scripts=True, viewport=PHONE
    )
    newcomer.page.goto(f"{live_server.url}/p/{poll.slug}/")
    facts = newcomer.page.locator("section.before-you-start")
    expect(facts).to_contain_text("The Civic Lab, Kyiv")
    expect(facts).to_contain_text("About 20 minutes in all, in two sittings")
    expect(facts.locator('a[href="mailto:team@example.org"]').first).to_be_visible()
    newcomer.check_both_languages("welcome")
    phone.close()

    phone = browser.new_context(locale="en-GB", viewport=PHONE)
    on_phone = TimedJourney(
        phone.new_page(), axe_script, "withdraw-phone", scripts=True, viewport=PHONE
    )
    withdraw_through_the_link(on_phone, live_server, poll, language="en", remind=True)
    phone.close()

    desktop = browser.new_context(locale="uk-UA", viewport=DESKTOP, java_script_enabled=False)
    on_desktop = TimedJourney(
        desktop.new_page(), axe_script, "withdraw-desktop", scripts=False, viewport=DESKTOP
    )
    withdraw_through_the_link(on_desktop, live_server, poll, language="uk", remind=False)
    desktop.close()

    assert Withdrawal.objects.filter(poll=poll).count() == 2
    assert not Participant.objects.filter(poll=poll).exists()


def test_the_closed_page_and_a_reason_in_another_language_pass_axe_on_both_widths(
    browser: Any, live_server: Any, axe_script: Path
) -> None:
    from surveys.journey.invitations import create_invitations
    from surveys.models import Reason

    data = definition(t2_opens=in_days(3))
    poll, _ = save_poll(data=validate(data, "<test>"), source="<test>")
    # A reader in Ukrainian at the deliberation, in a group with a reason written in English.
    (invitation,) = create_invitations(poll=poll, count=1)
    reader = Participant.objects.get(token_hash=tokens.hash_token(invitation.token))
    author = Participant.objects.create(poll=poll, arm="treatment", group=1, language="en")
    Reason.objects.create(
        poll=poll,
        participant=author,
        option=poll.options.get(key="exit"),
        stance="for",
        text="Fewer deaths.",
        language="en",
    )
    Participant.objects.filter(pk=reader.pk).update(
        arm="treatment", group=1, language="uk", step="deliberation", consented_at=author.created_at
    )
    for journey in on_phone_then_desktop(browser, axe_script, "withdraw-label"):
        journey.page.goto(f"{live_server.url}/i/{invitation.token}/?lang=uk")
        assert journey.at(f"/p/{poll.slug}/deliberation/"), journey.page.url
        expect(journey.page.locator(".reason-language")).to_have_text("(Мова: англійська)")
        expect(journey.page.locator('.reason-text[lang="en"]')).to_have_text("Fewer deaths.")
        journey.check_both_languages("deliberation")

    # A waiting participant's return link once the poll has closed: the closed page, which
    # still offers withdrawal.
    _, link = waiting_participant(poll, "en")
    Poll.objects.filter(pk=poll.pk).update(status=Poll.Status.CLOSED)
    for journey in on_phone_then_desktop(browser, axe_script, "withdraw-closed"):
        journey.page.goto(f"{live_server.url}{link}")
        expect(journey.page.locator(f'a[href="/p/{poll.slug}/withdraw/"]')).to_be_visible()
        journey.check_both_languages("closed")
