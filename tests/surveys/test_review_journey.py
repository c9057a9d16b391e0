"""What a review of the poll over time found, walked as participants and attackers would."""

import re

import pytest
from django.test import Client

from surveys.definition.files import save_poll, validate
from surveys.journey import tokens
from surveys.models import Poll, Reason, ReasonReport, ReminderAddress
from tests.e2e.test_input_kept_browser import to_deliberation
from tests.factories import make_poll, small_definition
from tests.surveys.test_finish_page import movements
from tests.surveys.test_journey import post_page, start, walk
from tests.surveys.test_reminders import ask_for_reminder, waiting
from tests.surveys.test_schedule import definition, in_days, scheduled_poll

pytestmark = pytest.mark.django_db


def test_a_huge_refused_address_is_not_reflected_back_in_full() -> None:
    """An attacker's megabyte in the reminder field: refused, and the page shows at most the
    field's own 254 characters to correct, not the whole input."""
    poll = scheduled_poll(t2_opens=in_days(3))
    client, _participant = waiting(poll)
    response = ask_for_reminder(client, poll, "<b>" + "x" * 100_000)
    assert response.status_code == 400
    page = response.content.decode()
    value = re.search(r'name="email" value="([^"]*)"', page)
    assert value is not None
    assert value.group(1) == "&lt;b&gt;" + "x" * 251
    assert "x" * 300 not in page and "<b>x" not in page
    assert not ReminderAddress.objects.exists()


def test_the_finish_page_adds_no_colon_after_an_option_that_ends_a_sentence() -> None:
    """Option texts that are sentences ("... Russian troops.") read "troops.", not
    "troops.:"; a text without a final stop keeps its colon."""
    definition = small_definition(design={"control_share": 0.0, "group_size": 4})
    definition["options"][0]["text"] = {"en": "Offer an exit.", "uk": "Запропонувати вихід."}
    poll, _ = save_poll(data=validate(definition, "<test>"), source="<test>")
    client = Client()
    participant = start(client, poll, lang="en")
    walk(client, poll, participant)
    page = client.get(f"/p/{poll.slug}/done/").content.decode()
    said = movements(page)
    assert said[0].startswith("Offer an exit. from 3 to 7"), said[0]
    assert ".:" not in page
    assert said[1].startswith("Option aid: from don't know to 5"), said[1]


def test_the_not_yet_open_page_offers_the_language_switch() -> None:
    """A visitor who arrives before T1 opens, in the wrong language, can switch and read the
    date in theirs (the page had no switch)."""
    poll = scheduled_poll(t1_opens=in_days(10), t2_opens=in_days(20))
    client = Client()
    ukrainian = client.get(f"/p/{poll.slug}/", {"lang": "uk"})
    assert ukrainian.status_code == 403
    page = ukrainian.content.decode()
    assert "Це опитування ще не відкрито" in page
    assert f'<a href="/p/{poll.slug}/?lang=en" lang="en" hreflang="en">English</a>' in page
    assert '<span lang="uk" aria-current="true">' in page
    english = client.get(f"/p/{poll.slug}/", {"lang": "en"})
    assert "This poll has not opened yet" in english.content.decode()


def test_the_home_page_lists_only_polls_that_take_participants_now() -> None:
    """ "Polls you can join" led to "not opened yet" and "no longer takes new participants"
    pages: a poll is listed while its T1 is open, not before nor after."""
    now_open = scheduled_poll(t1_opens=in_days(-1), t1_closes=in_days(5), t2_opens=in_days(7))
    for slug, fields in (
        ("later-poll", {"t1_opens": in_days(10), "t2_opens": in_days(20)}),
        ("past-poll", {"t1_opens": in_days(-10), "t1_closes": in_days(-1), "t2_opens": in_days(7)}),
    ):
        data = definition(**fields)
        data["slug"] = slug
        save_poll(data=validate(data, "<test>"), source="<test>")
    page = Client().get("/", {"lang": "en"}).content.decode()
    assert f'href="/p/{now_open.slug}/' in page
    assert 'href="/p/later-poll/' not in page
    assert 'href="/p/past-poll/' not in page
    assert Client().get("/p/later-poll/").status_code == 403
    assert Client().get("/p/past-poll/").status_code == 410


def test_after_the_close_the_return_link_leads_to_the_published_results() -> None:
    """The finish page promises results "after the poll closes": a participant who comes back
    through their link then finds them from the closed page, in their language; a poll that
    is only taken back to draft links no results."""
    poll = scheduled_poll(t2_opens=in_days(3))
    _client, participant = waiting(poll, lang="uk")
    link = f"/r/{tokens.return_token(participant.public_id)}/"
    Poll.objects.filter(pk=poll.pk).update(status=Poll.Status.DRAFT)
    back = Client()
    drafted = back.get(back.get(link)["Location"])
    assert f"/p/{poll.slug}/results/" not in drafted.content.decode()
    Poll.objects.filter(pk=poll.pk).update(status=Poll.Status.CLOSED)
    closed = back.get(back.get(link)["Location"])
    assert closed.status_code == 410
    page = closed.content.decode()
    results = f"/p/{poll.slug}/results/?lang=uk"
    assert f'<a href="{results}">Переглянути результати опитування</a>' in page
    # The link keeps the page's language, which a new device's browser may not share.
    assert "Результати опитування" in back.get(results, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    stranger = Client().get(f"/p/{poll.slug}/", {"lang": "en"}).content.decode()
    assert f'<a href="/p/{poll.slug}/results/?lang=en">See the results of the poll</a>' in stranger


def test_a_report_of_a_hidden_reason_is_not_thanked_without_javascript() -> None:
    """The moderator hid the reason before the report arrived: nothing is recorded, and the
    page the participant comes back to says no "thank you" for it."""
    poll = make_poll(design={"control_share": 0.0, "group_size": 4})
    author = to_deliberation(poll, "en")
    post_page(
        author, f"/p/{poll.slug}/deliberation/", {"r-exit.stance": "for", "r-exit.text": "Gone."}
    )
    reason = Reason.objects.get()
    Reason.objects.update(state=Reason.State.HIDDEN)
    reader = to_deliberation(poll, "en")
    url = f"/p/{poll.slug}/reasons/{reason.pk}/report/"
    alone = reader.post(url)
    assert alone.status_code == 302 and "reported" not in alone["Location"]
    typing = reader.post(url, {"r-aid.text": "Half typed"})
    page = typing.content.decode()
    assert "Half typed" in page and "A moderator will look" not in page
    assert not ReasonReport.objects.exists()


def test_the_closed_page_names_the_poll_and_switches_language_but_a_draft_stays_unnamed() -> None:
    poll = make_poll()
    title_en = poll.title["en"]
    Poll.objects.filter(pk=poll.pk).update(status=Poll.Status.CLOSED)
    page = Client().get(f"/p/{poll.slug}/", {"lang": "en"}).content.decode()
    assert f'<p class="poll-title">{title_en}</p>' in page
    assert f'<a href="/p/{poll.slug}/?lang=uk" lang="uk" hreflang="uk">Українська</a>' in page
    switched = Client().get(f"/p/{poll.slug}/", {"lang": "uk"}).content.decode()
    assert "<h1>Це опитування закрито</h1>" in switched
    assert f'<p class="poll-title">{poll.title["uk"]}</p>' in switched
    Poll.objects.filter(pk=poll.pk).update(status=Poll.Status.DRAFT)
    draft = Client().get(f"/p/{poll.slug}/", {"lang": "en"}).content.decode()
    assert title_en not in draft and 'class="languages"' not in draft
