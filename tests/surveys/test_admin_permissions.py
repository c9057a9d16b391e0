"""Per-poll roles: an organiser of one poll cannot see or change another through any admin page
or action; researchers read results only; contacts stay with the poll's own organisers."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from surveys.models import ModerationDecision, Participant, Poll, Reason
from tests.surveys.admin_fixtures import client_for, form_fields, poll_with_activity, staff

pytestmark = pytest.mark.django_db
POLL_PAGES = ["change", "checklist", "invitations", "monitor", "export", "clone", "history"]


@pytest.fixture
def polls() -> tuple[Poll, Poll]:
    return poll_with_activity("alpha"), poll_with_activity("beta")


@pytest.fixture
def outsider(polls: tuple[Poll, Poll]) -> Client:
    """The organiser of 'beta' only."""
    return client_for(staff("bob", polls=(polls[1],)))


def test_poll_list_shows_only_the_users_own_polls(outsider: Client) -> None:
    page = outsider.get(reverse("admin:surveys_poll_changelist")).content.decode()
    assert "beta" in page
    assert "alpha" not in page


@pytest.mark.parametrize("name", POLL_PAGES)
def test_every_page_of_another_poll_is_not_found(
    outsider: Client, polls: tuple[Poll, Poll], name: str
) -> None:
    response = outsider.get(reverse(f"admin:surveys_poll_{name}", args=[polls[0].pk]))
    # The change view redirects to the admin index for a missing object; tools give 404.
    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response.url == reverse("admin:index")
    assert b"alpha" not in response.content


@pytest.mark.parametrize("transition", ["open", "close", "reopen"])
def test_lifecycle_of_another_poll_cannot_be_changed(
    outsider: Client, polls: tuple[Poll, Poll], transition: str
) -> None:
    url = reverse("admin:surveys_poll_lifecycle", args=[polls[0].pk, transition])
    assert outsider.get(url).status_code == 404
    assert outsider.post(url).status_code == 404
    polls[0].refresh_from_db()
    assert polls[0].status == Poll.Status.OPEN


def test_posting_invitations_or_clone_for_another_poll_stores_nothing(
    outsider: Client, polls: tuple[Poll, Poll]
) -> None:
    before = Participant.objects.count()
    invite = reverse("admin:surveys_poll_invitations", args=[polls[0].pk])
    assert outsider.post(invite, {"count": 5}).status_code == 404
    clone = reverse("admin:surveys_poll_clone", args=[polls[0].pk])
    assert outsider.post(clone, {"slug": "stolen"}).status_code == 404
    assert Participant.objects.count() == before
    assert not Poll.objects.filter(slug="stolen").exists()


def poll_snapshot(poll: Poll) -> tuple:
    """Everything an edit of the poll's change form could touch."""
    poll.refresh_from_db()
    return (
        poll.slug,
        poll.title,
        poll.question,
        list(poll.organisers.values_list("username", flat=True)),
        list(poll.options.values_list("key", "text")),
        list(poll.questions.values_list("key", "text")),
    )


def hijack(payload: dict[str, list[str]]) -> dict[str, list[str]]:
    return {**payload, "slug": ["hijacked"], "title_en": ["Hijacked"], "_save": ["Save"]}


def test_editing_another_poll_by_post_changes_nothing(
    outsider: Client, polls: tuple[Poll, Poll]
) -> None:
    alpha = polls[0]
    url = reverse("admin:surveys_poll_change", args=[alpha.pk])
    # The complete form, inlines and management forms included, as alpha's organiser sees it.
    organiser = client_for(staff("olga", polls=(alpha,)))
    payload = hijack(form_fields(organiser.get(url).content.decode(), "poll_form"))
    assert "options-TOTAL_FORMS" in payload and "questions-0-key" in payload
    before = poll_snapshot(alpha)

    response = outsider.post(url, payload)

    # Not found for someone who cannot see the poll; never a save or the form again.
    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response.url in (reverse("admin:index"), f"/admin/surveys/poll/{alpha.pk}/results/")
    assert poll_snapshot(alpha) == before
    assert not LogEntry.objects.filter(object_id=str(alpha.pk)).exists()
    # The same payload is valid: its own organiser's POST saves it.
    assert organiser.post(url, payload).status_code == 302
    assert Poll.objects.get(pk=alpha.pk).slug == "hijacked"


def test_editing_another_polls_participant_by_post_changes_nothing(
    outsider: Client, polls: tuple[Poll, Poll]
) -> None:
    alice = polls[0].participants.get(label="Alice")
    url = reverse("admin:surveys_participant_change", args=[alice.pk])
    organiser = client_for(staff("olga", polls=(polls[0],)))
    payload = form_fields(organiser.get(url).content.decode(), "participant_form")
    payload.update(label=["Hijacked"], contact=["thief@example.org"], _save=["Save"])

    response = outsider.post(url, payload)

    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response.url == reverse("admin:index")
    alice.refresh_from_db()
    assert (alice.label, alice.contact) == ("Alice", "alice@example.org")
    assert organiser.post(url, payload).status_code == 302
    alice.refresh_from_db()
    assert (alice.label, alice.contact) == ("Hijacked", "thief@example.org")


def test_close_action_ignores_polls_the_user_does_not_organise(
    outsider: Client, polls: tuple[Poll, Poll]
) -> None:
    outsider.post(
        reverse("admin:surveys_poll_changelist"),
        {"action": "close_polls", "_selected_action": [p.pk for p in polls]},
    )
    statuses = dict(Poll.objects.values_list("slug", "status"))
    assert statuses == {"alpha": "open", "beta": "closed"}


def test_participants_reasons_and_log_of_another_poll_are_invisible(
    outsider: Client, polls: tuple[Poll, Poll]
) -> None:
    alpha = polls[0]
    people = outsider.get(reverse("admin:surveys_participant_changelist")).content.decode()
    assert "Alice" in people  # beta's Alice
    assert "alpha" not in people
    participant = alpha.participants.first()
    reason = alpha.reasons.get()
    for url in [
        reverse("admin:surveys_participant_change", args=[participant.pk]),
        reverse("admin:surveys_reason_change", args=[reason.pk]),
    ]:
        response = outsider.get(url)
        assert response.status_code in (302, 404)
        assert response.status_code == 404 or response.url == reverse("admin:index")
    queue = outsider.get(reverse("admin:surveys_reason_changelist")).content.decode()
    assert "in alpha" not in queue and "in beta" in queue
    # The poll filter offers the user's polls only.
    filtered = outsider.get(reverse("admin:surveys_reason_changelist") + "?poll__id__exact=")
    assert "alpha" not in filtered.content.decode()


def test_moderation_of_another_polls_reason_changes_nothing(
    outsider: Client, polls: tuple[Poll, Poll]
) -> None:
    reason = polls[0].reasons.get()
    url = reverse("admin:surveys_reason_moderate", args=[reason.pk, "hide"])
    assert outsider.post(url).status_code == 404
    outsider.post(
        reverse("admin:surveys_reason_changelist"),
        {"action": "hide", "_selected_action": list(Reason.objects.values_list("pk", flat=True))},
    )
    reason.refresh_from_db()
    assert reason.state == Reason.State.REPORTED
    assert not ModerationDecision.objects.filter(reason=reason).exists()
    assert ModerationDecision.objects.filter(reason__poll=polls[1]).count() == 1


def test_revoke_action_ignores_invitations_of_another_poll(
    outsider: Client, polls: tuple[Poll, Poll]
) -> None:
    everyone = list(Participant.objects.values_list("pk", flat=True))
    outsider.post(
        reverse("admin:surveys_participant_changelist"),
        {"action": "revoke", "_selected_action": everyone},
    )
    assert not polls[0].participants.filter(revoked_at__isnull=False).exists()
    assert polls[1].participants.filter(revoked_at__isnull=False).count() == 2


def test_autocomplete_never_returns_another_polls_options(
    outsider: Client, polls: tuple[Poll, Poll]
) -> None:
    response = outsider.get(
        reverse("admin:autocomplete"),
        {"app_label": "surveys", "model_name": "question", "field_name": "option", "term": ""},
    )
    assert response.status_code == 200
    found = {int(row["id"]) for row in response.json()["results"]}
    assert found == set(polls[1].options.values_list("pk", flat=True))
    options = outsider.get(reverse("admin:surveys_option_changelist")).content.decode()
    assert f"/{polls[0].options.first().pk}/change/" not in options


def test_inline_choices_offer_only_the_polls_own_sections_and_options(
    polls: tuple[Poll, Poll],
) -> None:
    superuser = User.objects.create_superuser("root", password="x")
    page = client_for(superuser).get(reverse("admin:surveys_poll_change", args=[polls[1].pk]))
    form = page.context["inline_admin_formsets"][-1].formset.forms[0]
    assert set(form.fields["option"].queryset) == set(polls[1].options.all())
    assert set(form.fields["section"].queryset) == set(polls[1].sections.all())


def test_definition_import_cannot_overwrite_another_users_poll(
    outsider: Client, polls: tuple[Poll, Poll]
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from surveys.definition.files import dump_yaml

    text = dump_yaml(Poll.objects.get(pk=polls[0].pk)).replace("Option exit", "Option overwritten")
    upload = SimpleUploadedFile("alpha.yaml", text.encode(), content_type="application/yaml")
    response = outsider.post(reverse("admin:surveys_poll_import"), {"file": upload})
    assert "belongs to a poll you do not organise" in response.content.decode()
    assert not polls[0].options.filter(text__en="Option overwritten").exists()


def test_staff_on_no_poll_see_no_poll_and_cannot_create_without_permission(
    polls: tuple[Poll, Poll],
) -> None:
    client = client_for(staff("nobody", can_add=False))
    index = client.get(reverse("admin:index")).content.decode()
    assert "Polls" not in index
    assert client.get(reverse("admin:surveys_poll_changelist")).status_code == 403
    assert client.get(reverse("admin:surveys_poll_import")).status_code == 403
    assert client.get(reverse("admin:surveys_poll_add")).status_code == 403


def test_contacts_are_shown_to_the_polls_organisers_only(polls: tuple[Poll, Poll]) -> None:
    alpha = polls[0]
    organiser = client_for(staff("olga", polls=(alpha,)))
    superuser = client_for(User.objects.create_superuser("root", password="x"))
    listing = reverse("admin:surveys_participant_changelist") + f"?poll__id__exact={alpha.pk}"
    assert "alice@example.org" in organiser.get(listing).content.decode()
    assert "alice@example.org" not in superuser.get(listing).content.decode()
    alice = alpha.participants.get(label="Alice")
    change = reverse("admin:surveys_participant_change", args=[alice.pk])
    assert "alice@example.org" not in superuser.get(change).content.decode()


def test_researcher_with_a_grant_is_sent_to_results_and_can_change_nothing(
    polls: tuple[Poll, Poll],
) -> None:
    from results.models import Grant

    researcher = staff("rita", can_add=False)
    Grant.objects.create(user=researcher, poll=polls[0])
    client = client_for(researcher)
    listing = client.get(reverse("admin:surveys_poll_changelist")).content.decode()
    assert "alpha" in listing and "beta" not in listing
    change = client.get(reverse("admin:surveys_poll_change", args=[polls[0].pk]))
    assert change.status_code == 302
    assert change.url == reverse("admin:surveys_poll_results", args=[polls[0].pk])
    for name in ["checklist", "invitations", "monitor", "export", "clone"]:
        url = reverse(f"admin:surveys_poll_{name}", args=[polls[0].pk])
        assert client.get(url).status_code == 404, name
    assert client.get(reverse("admin:surveys_participant_changelist")).status_code == 403
    assert client.get(reverse("admin:surveys_reason_changelist")).status_code == 403


def test_a_poll_id_that_is_not_a_number_is_not_found(polls: tuple[Poll, Poll]) -> None:
    client = client_for(staff("olga", polls=polls))
    client.raise_request_exception = False
    for page in ("change", "history"):
        response = client.get(f"/admin/surveys/poll/abc/{page}/")
        assert response.status_code == 404, page


def test_a_researcher_is_sent_from_a_polls_edit_history_to_its_results(
    polls: tuple[Poll, Poll],
) -> None:
    """Who edited the poll, when and how is the organisers' record; a granted researcher reads
    the results only."""
    from results.models import Grant

    poll = polls[0]
    organiser = staff("olga", polls=(poll,))
    LogEntry.objects.log_actions(
        user_id=organiser.pk, queryset=[poll], action_flag=2, change_message="secret change"
    )
    history = reverse("admin:surveys_poll_history", args=[poll.pk])
    assert "secret change" in client_for(organiser).get(history).content.decode()
    researcher = staff("rita", can_add=False)
    Grant.objects.create(user=researcher, poll=poll)
    response = client_for(researcher).get(history)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:surveys_poll_results", args=[poll.pk])
