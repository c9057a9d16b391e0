"""Every organiser page renders for the poll's organiser and says what it should."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from surveys.admin import pages as admin_pages
from surveys.definition.yaml_reader import MAX_FILE_BYTES
from surveys.models import Poll
from tests.surveys.admin_fixtures import client_for, poll_with_activity, staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def poll() -> Poll:
    return poll_with_activity("alpha")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("change", "Sections (pages of the questionnaires)"),
        ("checklist", "At least two positions"),
        ("invitations", "New personal links"),
        ("monitor", "Funnel"),
        ("clone", "Slug of the copy"),
    ],
)
def test_each_poll_page_renders_for_its_organiser(poll: Poll, name: str, expected: str) -> None:
    client = client_for(staff("olga", polls=(poll,)))
    response = client.get(reverse(f"admin:surveys_poll_{name}", args=[poll.pk]))
    assert response.status_code == 200
    assert expected in response.content.decode()


def test_poll_list_and_import_page_render(poll: Poll) -> None:
    client = client_for(staff("olga", polls=(poll,)))
    listing = client.get(reverse("admin:surveys_poll_changelist")).content.decode()
    assert "alpha" in listing and "Import definition" in listing
    assert client.get(reverse("admin:surveys_poll_import")).status_code == 200


def test_an_oversized_definition_file_is_refused_by_its_size_before_it_is_read(
    poll: Poll, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(staff("olga", polls=(poll,)))
    upload = SimpleUploadedFile("big.yaml", b"slug: x\n" + b"#" * (MAX_FILE_BYTES + 1))
    parsed = []
    monkeypatch.setattr(admin_pages, "import_definition", lambda **kwargs: parsed.append(kwargs))
    response = client.post(reverse("admin:surveys_poll_import"), {"file": upload})
    assert response.status_code == 200
    assert f"the limit is {MAX_FILE_BYTES:,}" in response.content.decode()
    assert not parsed
    assert list(Poll.objects.values_list("slug", flat=True)) == ["alpha"]


def test_moderation_queue_and_participants_render_with_hostile_text_escaped(poll: Poll) -> None:
    client = client_for(staff("olga", polls=(poll,)))
    queue = client.get(reverse("admin:surveys_reason_changelist")).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in queue
    assert "<script>alert(1)" not in queue
    people = client.get(reverse("admin:surveys_participant_changelist")).content.decode()
    assert "alice@example.org" in people and "in progress" in people


def test_add_page_asks_for_the_poll_only_and_creator_becomes_organiser() -> None:
    user = staff("olga")
    client = client_for(user)
    page = client.get(reverse("admin:surveys_poll_add")).content.decode()
    assert "Save the poll first" in page and "positions-group" not in page
    response = client.post(
        reverse("admin:surveys_poll_add"),
        {
            "slug": "fresh",
            "languages": ["en", "uk"],
            "title_en": "A fresh poll",
            "title_uk": "",
            "question_en": "What now?",
            "question_uk": "",
            "intro_en": "",
            "intro_uk": "",
            "control_share": "0.3",
            "group_size": "8",
            "min_subgroup_size": "5",
            "counterbalance_positions": "on",
            "randomise_option_order": "on",
            "access": "invitation",
            "min_seconds": "300",
            "deliberation": "async",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    poll = Poll.objects.get(slug="fresh")
    assert poll.title == {"en": "A fresh poll"}
    assert poll.languages == ["en", "uk"]
    assert poll.status == Poll.Status.DRAFT
    assert list(poll.organisers.all()) == [user]


def test_poll_without_english_title_is_refused_and_nothing_stored() -> None:
    client = client_for(staff("olga"))
    response = client.post(
        reverse("admin:surveys_poll_add"),
        {
            "slug": "x",
            "languages": ["en"],
            "title_en": "",
            "title_uk": "Тільки",
            "question_en": "?",
        },
    )
    assert response.status_code == 200
    assert "The English text is required." in response.content.decode()
    assert not Poll.objects.exists()


def _change_form(client, poll: Poll) -> tuple[str, dict[str, list[str]]]:
    from tests.surveys.admin_fixtures import form_fields

    url = reverse("admin:surveys_poll_change", args=[poll.pk])
    return url, form_fields(client.get(url).content.decode(), "poll_form")


def _question_prefix(payload: dict[str, list[str]], key: str) -> str:
    return next(
        name.removesuffix("-key")
        for name, values in payload.items()
        if name.startswith("questions-") and name.endswith("-key") and values == [key]
    )


def test_organiser_limits_a_t2_question_to_the_treatment_arm(poll: Poll) -> None:
    client = client_for(staff("olga", polls=(poll,)))
    url, payload = _change_form(client, poll)
    prefix = _question_prefix(payload, "balanced")  # asked at T2 only
    assert f"{prefix}-arms" not in payload  # nothing ticked: everyone is asked
    payload[f"{prefix}-arms"] = ["treatment"]
    response = client.post(url, payload)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert poll.questions.get(key="balanced").arms == ["treatment"]
    _, again = _change_form(client, poll)
    assert again[f"{prefix}-arms"] == ["treatment"]  # shown ticked on the next visit


def test_arms_of_a_question_asked_at_both_waves_are_refused(poll: Poll) -> None:
    client = client_for(staff("olga", polls=(poll,)))
    url, payload = _change_form(client, poll)
    prefix = _question_prefix(payload, "rate_exit")
    payload[f"{prefix}-arms"] = ["control"]
    response = client.post(url, payload)
    assert response.status_code == 200
    assert "Only a question asked at T2 alone can be limited to arms." in response.content.decode()
    assert poll.questions.get(key="rate_exit").arms == []
