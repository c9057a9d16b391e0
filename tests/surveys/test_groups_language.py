"""Small groups are formed within a language, and each reason carries the language it was
written in, so a reader is never handed reasons in another language unlabelled."""
# ruff: noqa: RUF001 - the reasons and expected texts are Ukrainian.

import random
from importlib import import_module

import pytest
from django.apps import apps as current_apps
from django.core.cache import cache
from django.test import Client

from surveys.definition.spec import build_spec
from surveys.journey import actions
from surveys.models import Participant, Poll, Reason
from tests.factories import make_poll
from tests.surveys.test_journey import T1_PAGES, answer_wave, start

pytestmark = pytest.mark.django_db
Arm = Participant.Arm


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    cache.clear()


def assign(poll: Poll, language: str) -> Participant:
    """A participant reading ``language`` who reaches the end of T1 (all in the treatment arm)."""
    participant = Participant.objects.create(poll=poll, language=language)
    actions.assign_condition(participant=participant, spec=build_spec(poll), rng=random.Random(1))
    participant.save()
    return participant


def test_groups_fill_within_each_language_and_numbers_stay_unique_in_the_arm() -> None:
    poll = make_poll(design={"control_share": 0.0, "group_size": 2})
    order = ["en", "uk", "en", "uk", "uk", "en", "uk"]
    people = [assign(poll, language) for language in order]
    groups = [(p.language, p.group, p.group_language) for p in people]
    assert groups == [
        ("en", 1, "en"),
        ("uk", 2, "uk"),
        ("en", 1, "en"),
        ("uk", 2, "uk"),
        ("uk", 3, "uk"),
        ("en", 4, "en"),
        ("uk", 3, "uk"),
    ]
    for group in {p.group for p in people}:
        members = Participant.objects.filter(poll=poll, arm=Arm.TREATMENT, group=group)
        assert members.count() <= 2
        assert len(set(members.values_list("group_language", flat=True))) == 1


def test_a_member_who_switches_language_later_does_not_open_their_group_to_the_other() -> None:
    poll = make_poll(design={"control_share": 0.0, "group_size": 3})
    first = assign(poll, "en")
    Participant.objects.filter(pk=first.pk).update(language="uk")  # the switch, after T1
    newcomer = assign(poll, "uk")
    assert newcomer.group != first.group
    assert assign(poll, "en").group == first.group


def test_one_language_fills_groups_in_order_of_arrival_as_before() -> None:
    poll = make_poll(design={"control_share": 0.0, "group_size": 3})
    assert [assign(poll, "en").group for _ in range(7)] == [1, 1, 1, 2, 2, 2, 3]


def test_a_reason_stores_the_language_it_was_written_in() -> None:
    poll = make_poll(design={"control_share": 0.0})
    client = Client()
    participant = start(client, poll, lang="uk")
    answer_wave(client, poll.slug, "t1", T1_PAGES)
    for page in (1, 2, 3):
        client.post(f"/p/{poll.slug}/briefing/{page}/", {})
    client.post(
        f"/p/{poll.slug}/deliberation/",
        {"r-exit.stance": "for", "r-exit.text": "Менше загиблих."},
    )
    reason = Reason.objects.get(participant=participant)
    assert reason.language == "uk"


def test_a_reason_in_another_language_than_the_readers_is_labelled() -> None:
    poll = make_poll(design={"control_share": 0.0, "group_size": 4})
    option = poll.options.get(key="exit")
    english = assign(poll, "en")
    Reason.objects.create(
        poll=poll,
        participant=english,
        option=option,
        stance="for",
        text="Fewer deaths.",
        language="en",
    )
    ukrainian = assign(poll, "uk")
    Reason.objects.create(
        poll=poll,
        participant=ukrainian,
        option=option,
        stance="against",
        text="Це винагорода агресору.",
        language="uk",
    )
    # Both read in the same group (formed across languages before groups had one).
    Participant.objects.filter(pk=ukrainian.pk).update(group=english.group)
    reader = Client()
    reader_row = start(reader, poll, lang="uk")
    Participant.objects.filter(pk=reader_row.pk).update(
        arm=Arm.TREATMENT, group=english.group, step="deliberation"
    )
    page = reader.get(f"/p/{poll.slug}/deliberation/").content.decode()
    assert '<span class="reason-text" lang="en">Fewer deaths.</span>' in page
    assert "(Мова: англійська)" in page
    # The reader's own language is not labelled.
    assert '<span class="reason-text">Це винагорода агресору.</span>' in page
    assert page.count("Мова:") == 1


def test_the_migration_gives_old_reasons_their_authors_language() -> None:
    poll = make_poll(design={"control_share": 0.0})
    author = assign(poll, "uk")
    reason = Reason.objects.create(
        poll=poll, participant=author, option=poll.options.first(), stance="for", text="Так."
    )
    Participant.objects.filter(pk=author.pk).update(group_language="")
    assert Reason.objects.get(pk=reason.pk).language == "en"  # the column's default
    migration = import_module("surveys.migrations.0005_consent_reminders_withdrawal_languages")
    migration.languages_from_participants(current_apps, None)
    assert Reason.objects.get(pk=reason.pk).language == "uk"
    assert Participant.objects.get(pk=author.pk).group_language == "uk"
