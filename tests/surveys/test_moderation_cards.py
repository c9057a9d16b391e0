"""The moderation queue as cards: each reason in full with its context, buttons that post, and
confirmations that are sentences with their plural."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import translation

from surveys.admin.moderation import moderated_message
from surveys.models import Reason
from tests.surveys.admin_fixtures import client_for, poll_with_activity, staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def reason() -> Reason:
    return poll_with_activity("alpha").reasons.get()


def messages_of(client: Client, response: object) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]  # type: ignore[attr-defined]


def test_a_card_shows_the_whole_reason_with_its_option_stance_group_and_reports(
    reason: Reason,
) -> None:
    long_text = "Because " + "the talks must include the victims' families, " * 12 + "END."
    Reason.objects.filter(pk=reason.pk).update(text=long_text, report_count=4)
    reason.participant.group = 3
    reason.participant.save(update_fields=["group"])
    client = client_for(staff("olga", polls=(reason.poll,)))
    response = client.get(reverse("admin:surveys_reason_changelist"))
    page = response.content.decode()
    (card,) = response.context["cards"]
    assert len(long_text) > 500 and "END." in page  # in full, never cut at 240 characters
    assert card["group"] == 3 and card["stance"] == reason.get_stance_display()
    assert card["option"] and card["option"][:20] in page
    assert "<dt>Reports</dt><dd>4</dd>" in page
    # A reported reason offers both decisions, each a submit button naming its target.
    assert [action for action, _label, _url in card["buttons"]] == ["hide", "restore"]
    assert 'formaction="' + reverse("admin:surveys_reason_moderate", args=[reason.pk, "hide"])
    assert ">Hide<" in page and ">Keep<" in page


def test_a_decision_comes_back_to_the_next_card_with_a_plural_aware_message(
    reason: Reason,
) -> None:
    client = client_for(staff("olga", polls=(reason.poll,)))
    url = reverse("admin:surveys_reason_moderate", args=[reason.pk, "hide"])
    listing = "http://testserver" + reverse("admin:surveys_reason_changelist")
    response = client.post(url, {"next": "reason-77"}, HTTP_REFERER=listing)
    assert response["Location"] == listing + "#reason-77"
    assert messages_of(client, response) == ["Hid 1 reason."]
    reason.refresh_from_db()
    assert reason.state == Reason.State.HIDDEN
    # Anything but a card's id is dropped rather than written into the redirect.
    again = client.post(
        reverse("admin:surveys_reason_moderate", args=[reason.pk, "restore"]),
        {"next": "x\r\nSet-Cookie: a=b"},
        HTTP_REFERER=listing,
    )
    assert again["Location"] == listing


def test_the_bulk_actions_confirm_in_sentences() -> None:
    assert moderated_message("hide", 1) == "Hid 1 reason."
    assert moderated_message("hide", 3) == "Hid 3 reasons."
    assert moderated_message("restore", 2) == "Kept 2 reasons: they stay visible."
    with translation.override("uk"):
        # Ukrainian has three plural forms: 1, 2-4, 5+ (the catalogue's Plural-Forms).
        forms = [moderated_message("hide", n) for n in (1, 2, 5)]
    assert forms == [
        "Приховано 1 обґрунтування.",
        "Приховано 2 обґрунтування.",
        "Приховано 5 обґрунтувань.",
    ]


def test_an_empty_queue_says_so_instead_of_failing() -> None:
    # An organiser with no reasons to review (and a poll with none) gets the empty list.
    poll = poll_with_activity("quiet")
    poll.reasons.all().delete()
    client = client_for(staff("olga", polls=(poll,)))
    response = client.get(reverse("admin:surveys_reason_changelist"))
    assert response.status_code == 200
    assert response.context["cards"] == []
