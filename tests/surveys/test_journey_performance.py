"""Constant queries per page whatever the poll size, and markup cached once for everyone."""

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from surveys.journey import pages
from surveys.models import Participant
from tests.factories import make_poll, small_definition, texts
from tests.surveys.test_journey import T1_PAGES, answer_wave, post_page, start

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    cache.clear()
    pages.FRAGMENTS.clear()
    pages.FRAMES.clear()


def poll_with(options: int) -> Any:
    """The small poll with ``options`` options (and a rating of each)."""
    base = small_definition(slug=f"poll-{options}")
    extra = [
        {"key": f"opt{i}", "text": texts(f"Option {i}"), "position": "A", "axis": 10 + i}
        for i in range(options - 3)
    ]
    ratings = [
        {**base["questions"][0], "key": f"rate_opt{i}", "option": f"opt{i}"}
        for i in range(options - 3)
    ]
    return make_poll(
        slug=f"poll-{options}",
        options=base["options"] + extra,
        questions=base["questions"][:3] + ratings + base["questions"][3:],
        design={"control_share": 0.0, "group_size": 4},
    )


def policy_page(poll: Any) -> dict[str, str]:
    return {f"q-rate_{o.key}": "4" for o in poll.options.all()}


def ranking_page(poll: Any) -> dict[str, str]:
    return {f"q-rank.{o.key}": str(i) for i, o in enumerate(poll.options.all(), 1)}


def measure(django_assert_num_queries: Callable[..., Any], options: int) -> None:
    poll = poll_with(options)
    client = Client()
    start(client, poll)
    client.get(f"/p/{poll.slug}/t1/1/")  # builds the definition and markup caches
    with django_assert_num_queries(1):  # participant, poll and the wave's answers together
        assert client.get(f"/p/{poll.slug}/t1/1/").status_code == 200
    policy, ranking = policy_page(poll), ranking_page(poll)
    # participant; then in the transaction (a savepoint in tests): lock, upsert, update
    with django_assert_num_queries(6):
        post_page(client, f"/p/{poll.slug}/t1/1/", policy, wave=1)
    with django_assert_num_queries(1):
        assert client.get(f"/p/{poll.slug}/t1/2/").status_code == 200
    post_page(client, f"/p/{poll.slug}/t1/2/", ranking, wave=1)
    post_page(client, f"/p/{poll.slug}/t1/3/", T1_PAGES[2], wave=1)
    # the last T1 page also flags straight-lining and assigns the arm under a poll lock
    with django_assert_num_queries(9):
        post_page(client, f"/p/{poll.slug}/t1/4/", T1_PAGES[3], wave=1)
    with django_assert_num_queries(1):
        assert client.get(f"/p/{poll.slug}/briefing/1/").status_code == 200
    for page in (1, 2, 3):
        post_page(client, f"/p/{poll.slug}/briefing/{page}/", {})
    with django_assert_num_queries(3):  # participant, group's reasons, own reports
        assert client.get(f"/p/{poll.slug}/deliberation/").status_code == 200


@pytest.mark.parametrize("options", [3, 12])
def test_queries_per_page_do_not_grow_with_the_poll(
    django_assert_num_queries: Callable[..., Any], options: int
) -> None:
    measure(django_assert_num_queries, options)


def test_the_questionnaire_markup_is_rendered_once_for_everyone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from surveys.definition import markup

    poll = make_poll(design={"control_share": 0.0})
    renders: list[str] = []
    real = markup.render_to_string

    def counting(template: str, context: dict[str, Any]) -> str:
        renders.append(template)
        return real(template, context)

    monkeypatch.setattr(markup, "render_to_string", counting)
    pages = []
    for _ in range(3):
        client = Client()
        start(client, poll)
        pages.append(client.get(f"/p/{poll.slug}/t1/1/").content.decode())
    assert renders.count("surveys/questions/question.html") == 3  # the page's three ratings
    assert Participant.objects.count() == 3
    assert len({page.count('type="radio"') for page in pages}) == 1


def test_a_cached_page_frame_is_the_page_the_template_would_render() -> None:
    """The frame cached for everyone, filled for one participant, is byte for byte the page
    the admin preview renders from the template for the same participant and answers."""
    poll = make_poll(design={"control_share": 0.0})
    client = Client()
    participant = start(client, poll)
    post_page(client, f"/p/{poll.slug}/t1/1/", T1_PAGES[0], wave=1)
    client.get(f"/p/{poll.slug}/t1/1/")  # builds the frame
    framed = client.get(f"/p/{poll.slug}/t1/1/")
    participant.refresh_from_db()
    request = framed.wsgi_request
    rendered = pages.render_step(
        request, poll=poll, participant=participant, step="t1", page=0, extra={"fresh": True}
    )
    token = 'name="csrfmiddlewaretoken" value="'

    def without_token(html: str) -> str:
        head, tail = html.split(token, 1)
        return head + tail.split('"', 1)[1]

    assert len(pages.FRAMES.items) == 1
    assert ' value="3" checked' in framed.content.decode()
    assert "\x1e" not in framed.content.decode()
    assert without_token(framed.content.decode()) == without_token(rendered.content.decode())


def test_the_cached_markup_is_rebuilt_after_the_poll_changes() -> None:
    poll = make_poll(design={"control_share": 0.0})
    client = Client()
    start(client, poll)
    assert "How much do you support exit?" in client.get(f"/p/{poll.slug}/t1/1/").content.decode()
    question = poll.questions.get(key="rate_exit")
    question.text = {"en": "Support for an exit?"}
    question.save()
    assert "Support for an exit?" in client.get(f"/p/{poll.slug}/t1/1/").content.decode()


def test_a_rejected_post_costs_one_query(django_assert_num_queries: Callable[..., Any]) -> None:
    poll = make_poll(design={"control_share": 0.0})
    client = Client()
    start(client, poll)
    client.get(f"/p/{poll.slug}/t1/1/")
    with django_assert_num_queries(1):
        response = client.post(f"/p/{poll.slug}/t1/1/", {"wave": "1", "q-rate_exit": "77"})
    assert response.status_code == 200
    answer_wave  # noqa: B018 - imported for symmetry with the journey helpers
