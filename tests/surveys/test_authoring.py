"""Clone a poll, and import or export its definition file from the admin."""

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from surveys.admin.authoring import clone_poll, import_definition
from surveys.definition.files import DefinitionError, dump_poll, dump_yaml
from surveys.models import Answer, Poll
from tests.factories import make_poll
from tests.surveys.admin_fixtures import client_for, poll_with_activity, staff

pytestmark = pytest.mark.django_db


def definition_without_slug(poll: Poll) -> dict:
    data = dump_poll(Poll.objects.get(pk=poll.pk))
    data.pop("slug")
    data.pop("status")
    return data


def test_a_clone_copies_the_definition_as_a_draft_without_participants() -> None:
    poll = poll_with_activity("alpha")
    user = staff("olga", polls=(poll,))
    copy = clone_poll(poll=poll, slug="alpha-2", by=user)
    assert copy.status == Poll.Status.DRAFT
    assert definition_without_slug(copy) == definition_without_slug(poll)
    assert not copy.participants.exists() and not copy.reasons.exists()
    assert set(copy.organisers.all()) == {user}


def test_a_clone_cannot_take_an_existing_slug() -> None:
    poll = make_poll()
    with pytest.raises(DefinitionError, match="exists"):
        clone_poll(poll=poll, slug=poll.slug, by=staff("olga"))


def test_a_poll_with_answers_is_locked_and_says_to_clone() -> None:
    poll = poll_with_activity("alpha")
    participant = poll.participants.get(step="done")
    Answer.objects.create(
        poll=poll,
        participant=participant,
        question=poll.questions.first(),
        wave=1,
        value=5,
        number=5,
    )
    client = client_for(staff("olga", polls=(poll,)))
    page = client.get(reverse("admin:surveys_poll_change", args=[poll.pk]))
    text = page.content.decode()
    assert "questions are locked" in text and "clone the poll" in text
    assert not page.context["inline_admin_formsets"][0].has_change_permission


def test_import_creates_a_draft_organised_by_the_importer() -> None:
    user = staff("olga")
    text = dump_yaml(Poll.objects.get(pk=make_poll(slug="source").pk)).replace(
        "slug: source", "slug: imported"
    )
    poll, created = import_definition(text=text, source="file.yaml", by=user)
    assert created and poll.slug == "imported" and poll.status == Poll.Status.DRAFT
    assert list(poll.organisers.all()) == [user]


def test_a_bad_file_is_refused_with_its_problems_and_changes_nothing() -> None:
    client = client_for(staff("olga"))
    upload = SimpleUploadedFile("bad.yaml", b"format: 1\nslug: Not A Slug\n")
    response = client.post(reverse("admin:surveys_poll_import"), {"file": upload})
    text = response.content.decode()
    assert "nothing changed" in text and "slug" in text
    assert not Poll.objects.exists()


def test_export_then_import_round_trips_through_the_admin() -> None:
    poll = make_poll(slug="round")
    user = staff("olga", polls=(poll,))
    client = client_for(user)
    exported = client.get(reverse("admin:surveys_poll_export", args=[poll.pk]))
    assert exported["Content-Disposition"] == 'attachment; filename="round.yaml"'
    data = yaml.safe_load(exported.content)
    data["slug"] = "round-trip"
    upload = SimpleUploadedFile("round.yaml", yaml.safe_dump(data, allow_unicode=True).encode())
    response = client.post(reverse("admin:surveys_poll_import"), {"file": upload})
    copy = Poll.objects.get(slug="round-trip")
    assert response.status_code == 302 and response.url.endswith(f"/{copy.pk}/change/")
    assert definition_without_slug(copy) == definition_without_slug(poll)


def test_the_clone_page_creates_the_copy_and_opens_it() -> None:
    poll = make_poll()
    client = client_for(staff("olga", polls=(poll,)))
    response = client.post(reverse("admin:surveys_poll_clone", args=[poll.pk]), {"slug": "copy"})
    copy = Poll.objects.get(slug="copy")
    assert response.url == reverse("admin:surveys_poll_change", args=[copy.pk])
