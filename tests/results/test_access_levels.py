"""Grant levels: aggregates only by default, microdata on request; importing needs microdata,
in the write function and in the database."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from results.access import grant_access, has_microdata, may_import, revoke_grant
from results.models import Grant
from tests.results.api_fixtures import bearer

pytestmark = pytest.mark.django_db


def test_import_needs_microdata_in_the_write_function_and_in_the_database(poll, django_user_model):
    user = django_user_model.objects.create_user("ana")
    with pytest.raises(ValidationError, match="microdata"):
        grant_access(user=user, poll=poll, level="aggregates", can_import=True)
    assert not Grant.objects.exists()
    with pytest.raises(IntegrityError), transaction.atomic():
        Grant.objects.create(user=user, poll=poll, level="aggregates", can_import=True)


def test_changing_a_grant_changes_what_it_reaches_at_once(poll, django_user_model):
    from results.access import issue_api_token

    user = django_user_model.objects.create_user("ana")
    client = bearer(issue_api_token(user=user, name="t").secret)
    answers = reverse("api:poll-answers", kwargs={"slug": poll.slug})
    grant = grant_access(user=user, poll=poll)
    assert not has_microdata(user, poll) and client.get(answers).status_code == 403
    grant_access(user=user, poll=poll, level="microdata", can_import=True)
    assert has_microdata(user, poll) and may_import(user, poll)
    assert client.get(answers).status_code == 200
    revoke_grant(grant=grant)
    assert client.get(answers).status_code == 404


def test_superusers_reach_microdata_without_a_grant(poll, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="x-unused")
    assert has_microdata(admin, poll) and may_import(admin, poll)


def test_unknown_level_is_refused(poll, django_user_model):
    user = django_user_model.objects.create_user("ana")
    with pytest.raises(ValidationError, match="level"):
        grant_access(user=user, poll=poll, level="everything")
    assert not Grant.objects.exists()


def test_polls_readable_by_a_user_are_those_organised_and_those_granted(poll, django_user_model):
    from surveys.models import Poll

    organiser = django_user_model.objects.create_user("org", is_staff=True)
    researcher = django_user_model.objects.create_user("res")
    stranger = django_user_model.objects.create_user("nobody", is_staff=True)
    poll.organisers.add(organiser)
    grant_access(user=researcher, poll=poll)
    grant_access(user=organiser, poll=poll)  # organiser and researcher: still one row
    assert list(Poll.objects.readable_by(organiser)) == [poll]
    assert list(Poll.objects.readable_by(researcher)) == [poll]
    assert not Poll.objects.readable_by(stranger).exists()
    researcher.is_active = False
    assert not Poll.objects.readable_by(researcher).exists()
    # Organising is an admin role: researchers who are not staff organise nothing.
    assert not Poll.objects.organised_by(researcher).exists()
    assert list(Poll.objects.organised_by(organiser)) == [poll]


def test_an_organiser_reads_their_polls_aggregates_through_the_api_but_not_its_microdata(
    poll, snapshot, django_user_model
):
    from results.access import issue_api_token

    organiser = django_user_model.objects.create_user("org", is_staff=True)
    poll.organisers.add(organiser)
    client = bearer(issue_api_token(user=organiser, name="t").secret)

    def url(name: str) -> str:
        return reverse(name, kwargs={"slug": poll.slug})

    listed = client.get(reverse("api:poll-list")).json()["results"]
    assert [row["slug"] for row in listed] == [poll.slug]
    assert client.get(url("api:results-items")).status_code == 200
    assert client.get(url("api:poll-answers")).status_code == 403
    assert client.get(url("api:poll-participants")).status_code == 403
