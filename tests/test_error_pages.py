"""Error pages with DEBUG off: friendly, in the visitor's language, with a way back; the
research API answers JSON whatever goes wrong."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.factories import make_poll

pytestmark = pytest.mark.django_db
UK = {"HTTP_ACCEPT_LANGUAGE": "uk"}


@pytest.fixture(autouse=True)
def production(settings: Any) -> None:
    settings.DEBUG = False


@pytest.fixture
def client() -> Client:
    client = Client()
    client.raise_request_exception = False  # what a visitor gets, not the test's traceback
    return client


def test_unknown_page_is_a_ukrainian_404_with_a_way_back(client: Client) -> None:
    response = client.get("/no-such-page/", HTTP_REFERER="http://testserver/p/x/", **UK)
    page = response.content.decode()
    assert response.status_code == 404
    assert '<html lang="uk">' in page
    assert "Сторінку не знайдено" in page and "Not Found" not in page
    assert 'href="http://testserver/p/x/"' in page and "Назад до попередньої сторінки" in page
    assert 'href="/"' in page


def test_english_browser_gets_the_english_404_and_no_foreign_back_link(client: Client) -> None:
    response = client.get("/no-such-page/", HTTP_REFERER="https://evil.example/phish")
    page = response.content.decode()
    assert response.status_code == 404
    assert "Page not found" in page and '<html lang="en">' in page
    assert "evil.example" not in page


def test_forged_host_header_gets_the_friendly_400(client: Client) -> None:
    response = client.get("/p/x/", HTTP_HOST="evil.example", HTTP_REFERER="http://evil.example/")
    page = response.content.decode()
    assert response.status_code == 400
    assert "Something is wrong with this request" in page and "evil.example" not in page


def test_permission_denied_is_a_ukrainian_403(client: Client) -> None:
    staff = User.objects.create_user("nobody", password="x", is_staff=True)
    client.force_login(staff)
    response = client.get(reverse("admin:surveys_poll_changelist"), **UK)
    assert response.status_code == 403
    assert "Доступ заборонено" in response.content.decode()


def test_expired_form_is_a_ukrainian_page_that_sends_the_participant_back() -> None:
    poll = make_poll()
    client = Client(enforce_csrf_checks=True)
    url = reverse("surveys:entry", args=[poll.slug])
    response = client.post(url, {"consent": "on"}, **UK)
    page = response.content.decode()
    assert response.status_code == 403
    assert "Спробуйте ще раз" in page and "CSRF" not in page
    assert f'href="{url}"' in page
    assert not poll.participants.exists()


def test_server_error_is_a_self_contained_ukrainian_500(client: Client, monkeypatch: Any) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr("surveys.journey.views.render", broken)
    response = client.get("/", **UK)
    page = response.content.decode()
    assert response.status_code == 500
    assert '<html lang="uk">' in page
    assert "Щось пішло не так з нашого боку" in page and "Server Error" not in page
    assert "database went away" not in page
    assert 'href="/"' in page and "site.css" in page


def test_api_unknown_url_answers_json_404(client: Client) -> None:
    response = client.get("/api/v1/no-such-endpoint/", **UK)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_api_server_error_answers_json_500(client: Client, monkeypatch: Any) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("drf_spectacular.views.SpectacularAPIView.get", broken)
    response = client.get(reverse("api-schema"))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "A server error occurred."}
    assert b"secret internals" not in response.content


def test_api_without_credentials_answers_json(client: Client) -> None:
    response = client.get(reverse("api:poll-list"))
    assert response.status_code in (401, 403)
    assert response["Content-Type"] == "application/json"
