"""Real concurrency against PostgreSQL, and completion with the broker down."""

import threading
import time
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from surveys.models import Answer, Participant
from tests.factories import make_poll
from tests.surveys.test_journey import T1_PAGES, T2_PAGES, answer_wave, post_page, start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    cache.clear()


def test_twenty_concurrent_identical_submissions_store_one_answer_set() -> None:
    poll = make_poll(design={"control_share": 0.0})
    client = Client()
    participant = start(client, poll)
    url = f"/p/{poll.slug}/t1/1/"
    data = {**T1_PAGES[0], "wave": "1"}
    barrier = threading.Barrier(20)
    locations: list[str] = []
    failures: list[BaseException] = []

    def submit() -> None:
        try:
            own = Client()
            own.cookies = client.cookies
            barrier.wait()
            response = own.post(url, data)
            locations.append(f"{response.status_code} {response.get('Location')}")
        except BaseException as error:
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert set(locations) == {f"302 /p/{poll.slug}/t1/2/"}
    assert Answer.objects.filter(participant=participant).count() == 3
    participant.refresh_from_db()
    assert (participant.step, participant.page) == ("t1", 1)


def test_concurrent_last_pages_of_t1_assign_once() -> None:
    poll = make_poll(design={"control_share": 0.0, "group_size": 2})
    clients = [Client() for _ in range(6)]
    participants = [start(c, poll) for c in clients]
    for c in clients:
        for page, data in enumerate(T1_PAGES[:-1], 1):
            post_page(c, f"/p/{poll.slug}/t1/{page}/", data, wave=1)
    barrier = threading.Barrier(6)

    def finish(c: Client) -> None:
        try:
            barrier.wait()
            c.post(f"/p/{poll.slug}/t1/4/", {**T1_PAGES[-1], "wave": "1"})
        finally:
            connection.close()

    threads = [threading.Thread(target=finish, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    groups = sorted(
        Participant.objects.filter(pk__in=[p.pk for p in participants]).values_list(
            "group", flat=True
        )
    )
    assert groups == [1, 1, 2, 2, 3, 3]


@pytest.fixture
def broker_down() -> Iterator[None]:
    from deliberate.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url="redis://127.0.0.1:1/0", task_always_eager=False)
    app._pool = None
    try:
        yield
    finally:
        app.conf.update(saved)
        app._pool = None


def test_the_finish_page_is_shown_and_completion_stored_when_the_broker_is_down(
    broker_down: None,
) -> None:
    poll = make_poll(design={"control_share": 0.99})
    client = Client()
    participant = start(client, poll)
    answer_wave(client, poll.slug, "t1", T1_PAGES)
    client.post(f"/p/{poll.slug}/next/")  # the control arm's page on what happens next
    started = time.monotonic()
    location = answer_wave(client, poll.slug, "t2", T2_PAGES)
    assert time.monotonic() - started < 15
    assert location == f"/p/{poll.slug}/done/"
    assert client.get(location).status_code == 200
    participant.refresh_from_db()
    assert participant.completed_at is not None
    assert Answer.objects.filter(participant=participant, wave=2).count() == 6
