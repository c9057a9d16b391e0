"""``createapitoken`` creates the researcher's user when there is none (issue 14: it needed an
existing user), and says so."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from results.models import ApiToken, Grant

pytestmark = pytest.mark.django_db


def test_createapitoken_creates_a_missing_user_and_says_so(poll) -> None:
    out, err = StringIO(), StringIO()
    call_command("createapitoken", "nadia", "--poll", poll.slug, stdout=out, stderr=err)
    user = get_user_model().objects.get(username="nadia")
    assert "Created the user 'nadia' (no password: the token is how they sign in" in err.getvalue()
    assert not user.has_usable_password()
    assert Grant.objects.filter(user=user, poll=poll).exists()
    assert ApiToken.objects.filter(user=user).count() == 1
    assert out.getvalue().strip().startswith("dlb_")
    # A second token for the same user does not create anything else, and says nothing of it.
    err = StringIO()
    call_command("createapitoken", "nadia", "--poll", poll.slug, stdout=StringIO(), stderr=err)
    assert "Created the user" not in err.getvalue()
    assert get_user_model().objects.filter(username="nadia").count() == 1


def test_createapitoken_with_a_bad_option_creates_no_user(poll) -> None:
    with pytest.raises(CommandError, match="between an hour and 365 days"):
        call_command(
            "createapitoken", "olek", "--poll", poll.slug, "--days", "5000", stdout=StringIO()
        )
    assert not get_user_model().objects.filter(username="olek").exists()
    with pytest.raises(CommandError, match="username 'no way!': Enter a valid username"):
        call_command("createapitoken", "no way!", "--poll", poll.slug, stdout=StringIO())
