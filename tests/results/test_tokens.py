"""Researcher API tokens: random, stored hashed, shown once, revocable, expiring."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from results.access import issue_api_token, revoke_api_token
from results.models import ApiToken, Grant
from surveys.journey.tokens import hash_token
from tests.results.api_fixtures import bearer

pytestmark = pytest.mark.django_db


def test_createapitoken_grants_the_poll_and_prints_a_working_token(poll, django_user_model):
    user = django_user_model.objects.create_user("ana")
    out = StringIO()
    call_command("createapitoken", "ana", "--poll", poll.slug, stdout=out, stderr=StringIO())
    secret = out.getvalue().strip()
    assert secret.startswith("dlb_") and len(secret) > 40
    assert Grant.objects.filter(user=user, poll=poll).exists()
    token = ApiToken.objects.get(user=user)
    assert token.token_hash == hash_token(secret)
    assert secret not in {token.name, token.prefix, token.token_hash}
    response = bearer(secret).get(reverse("api:poll-detail", kwargs={"slug": poll.slug}))
    assert response.status_code == 200


def test_createapitoken_refuses_an_unknown_poll(django_user_model):
    django_user_model.objects.create_user("ana")
    with pytest.raises(CommandError, match="No poll 'nope'"):
        call_command("createapitoken", "ana", "--poll", "nope", stdout=StringIO())


def test_revoked_and_expired_tokens_are_refused_like_unknown_ones(poll, django_user_model):
    user = django_user_model.objects.create_user("ana")
    revoked = issue_api_token(user=user, name="old")
    revoke_api_token(token=revoked.token)
    expired = issue_api_token(user=user, name="expired")
    ApiToken.objects.filter(pk=expired.token.pk).update(expires_at=timezone.now() - timedelta(1))
    url = reverse("api:poll-list")
    bodies = set()
    for secret in (revoked.secret, expired.secret, "dlb_unknown"):
        response = bearer(secret).get(url)
        assert response.status_code == 401
        bodies.add(response.content)
    assert len(bodies) == 1


def test_token_use_is_recorded_without_a_write_per_request(poll, django_user_model):
    user = django_user_model.objects.create_user("ana")
    issued = issue_api_token(user=user, name="t")
    client = bearer(issued.secret)
    client.get(reverse("api:poll-list"))
    first = ApiToken.objects.get(pk=issued.token.pk).last_used_at
    client.get(reverse("api:poll-list"))
    assert first is not None
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at == first


def test_staff_researcher_sees_only_their_own_tokens_in_the_admin(client, django_user_model):
    mine = django_user_model.objects.create_user("me", password="pw-for-tests-1", is_staff=True)
    other = django_user_model.objects.create_user("other", is_staff=True)
    issue_api_token(user=mine, name="my laptop")
    issue_api_token(user=other, name="their server")
    client.force_login(mine)
    page = client.get(reverse("admin:results_apitoken_changelist"))
    assert page.status_code == 200
    assert b"my laptop" in page.content and b"their server" not in page.content


def test_token_lifetime_is_bounded_to_a_year_unless_a_setting_allows_more(poll, settings):
    from django.contrib.auth import get_user_model
    from django.core.exceptions import ValidationError

    user = get_user_model().objects.create_user("ana")
    with pytest.raises(ValidationError, match="365 days"):
        issue_api_token(user=user, name="forever", days=3650)
    assert not ApiToken.objects.exists()
    settings.API_TOKEN_MAX_DAYS = 4000
    assert issue_api_token(user=user, name="long", days=3650).token.expires_at > timezone.now()


def test_createapitoken_refuses_a_lifetime_past_the_bound_and_stores_nothing(
    poll, django_user_model
):
    django_user_model.objects.create_user("ana")
    with pytest.raises(CommandError, match="365 days"):
        call_command(
            "createapitoken", "ana", "--poll", poll.slug, "--days", "5000", stdout=StringIO()
        )
    assert not ApiToken.objects.exists() and not Grant.objects.exists()


def test_createapitoken_gives_aggregates_unless_told_and_import_needs_microdata(
    poll, django_user_model
):
    user = django_user_model.objects.create_user("ana")
    with pytest.raises(CommandError, match="microdata"):
        call_command(
            "createapitoken", "ana", "--poll", poll.slug, "--allow-import", stdout=StringIO()
        )
    assert not ApiToken.objects.exists() and not Grant.objects.exists()
    call_command("createapitoken", "ana", "--poll", poll.slug, stdout=StringIO(), stderr=StringIO())
    assert Grant.objects.get(user=user).level == "aggregates"
    call_command(
        "createapitoken",
        "ana",
        "--poll",
        poll.slug,
        "--level",
        "microdata",
        "--allow-import",
        stdout=StringIO(),
        stderr=StringIO(),
    )
    grant = Grant.objects.get(user=user)
    assert grant.level == "microdata" and grant.can_import
