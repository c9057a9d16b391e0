"""The public results page: aggregates of the latest released snapshot only, once the organiser
publishes; withheld cells stay withheld; nothing about any one participant reaches the HTML."""
# ruff: noqa: RUF001 - the expected texts are Ukrainian.

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from results.compute.recompute import recompute_poll
from results.models import ResultSnapshot
from results.simulate import add_simulated_participants
from surveys.models import Participant, Poll, Reason
from tests.factories import make_poll

pytestmark = pytest.mark.django_db


def computed(*, n: int, k: int = 5, control_share: float = 0.5, public: bool = True) -> Poll:
    poll = make_poll(
        design={"control_share": control_share, "group_size": 4, "min_subgroup_size": k}
    )
    add_simulated_participants(poll=poll, n=n, seed=7)
    recompute_poll(poll.pk)
    Poll.objects.filter(pk=poll.pk).update(results_public=public)
    poll.refresh_from_db()
    return poll


def whole_sample(snapshot: ResultSnapshot) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (row["item"], row["arm"]): row
        for row in snapshot.payload["items"]
        if not row["subgroup"] and not row["weighted"]
    }


def table_rows(page: str, option_key: str) -> dict[str, tuple[str, str]]:
    """The option's table rows by their group label: (the count under the label, the cells)."""
    section = re.search(
        rf'<section class="option-result" aria-labelledby="option-{option_key}">(.*?)</section>',
        page,
        re.S,
    )
    assert section, f"no section for {option_key}"
    rows = re.findall(
        r'<tr>\s*<th scope="row">([^<]*?)(?: <span class="count">(.*?)</span>)?</th>(.*?)</tr>',
        section.group(1),
        re.S,
    )
    return {label: (count, cells) for label, count, cells in rows}


def one_decimal(value: float, separator: str = ".") -> str:
    """As the page rounds: half away from zero, from the number's shortest decimal form."""
    rounded = Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return str(rounded).replace(".", separator)


def whole(value: float) -> str:
    return str(Decimal(repr(value)).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def test_a_poll_not_yet_published_gets_a_polite_page_without_any_figure() -> None:
    poll = computed(n=40, public=False)
    assert ResultSnapshot.objects.released_for(poll) is not None
    for language, words in (("en", "not published yet"), ("uk", "ще не опубліковано")):
        response = Client().get(f"/p/{poll.slug}/results/?lang={language}")
        assert response.status_code == 404
        page = response.content.decode()
        assert words in page
        assert "<table" not in page and "<svg" not in page
        assert f'<html lang="{language}">' in page


def test_a_draft_poll_has_no_results_page() -> None:
    poll = computed(n=40)
    Poll.objects.filter(pk=poll.pk).update(status=Poll.Status.DRAFT)
    response = Client().get(f"/p/{poll.slug}/results/")
    assert response.status_code == 404
    assert "Results of the poll" not in response.content.decode()
    assert Client().get("/p/no-such-poll/results/").status_code == 404


def test_published_results_show_each_groups_averages_from_the_released_snapshot() -> None:
    poll = computed(n=40)
    snapshot = ResultSnapshot.objects.released_for(poll)
    rows = whole_sample(snapshot)
    client = Client()
    response = client.get(f"/p/{poll.slug}/results/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "from 40 people who answered both questionnaires" in page
    for option in ("exit", "aid", "escalate"):
        shown = table_rows(page, option)
        assert list(shown) == ["Everyone", "Discussed", "Did not discuss"]
        for arm, label in (
            ("all", "Everyone"),
            ("treatment", "Discussed"),
            ("control", "Did not discuss"),
        ):
            row = rows[(f"rate_{option}", arm)]
            count, cells = shown[label]
            assert count == f"{row['n_pairs']} people"
            first, second = one_decimal(row["mean_t1"]), one_decimal(row["mean_t2"])
            assert f"from {first} to {second}" in cells
            support = f"{whole(row['pct_support_t1'])}% → {whole(row['pct_support_t2'])}%"
            assert support in cells
    assert page.count('<svg class="dotplot" role="img"') == 3

    # Ukrainian, chosen with the switch: decimal commas, the choice remembered in the cookie.
    response = client.get(f"/p/{poll.slug}/results/?lang=uk")
    page = response.content.decode()
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "uk"
    assert "Результати опитування" in page and "Обговорювали" in page
    row = rows[("rate_exit", "all")]
    first, second = one_decimal(row["mean_t1"], ","), one_decimal(row["mean_t2"], ",")
    count, cells = table_rows(page, "exit")["Усі"]
    assert f"з {first} до {second}" in cells and count.endswith(("особа", "особи", "осіб"))
    assert f'href="/p/{poll.slug}/results/?lang=en"' in page
    assert client.get(f"/p/{poll.slug}/results/").content.decode().count("Обговорювали") >= 3


def test_groups_smaller_than_k_are_withheld_never_shown() -> None:
    # 12 participants split at random between the arms, k = 7: at least one arm is under k,
    # and the other is withheld with it (it would give the small one by subtraction).
    poll = computed(n=12, k=7)
    snapshot = ResultSnapshot.objects.released_for(poll)
    rows = whole_sample(snapshot)
    assert ("rate_exit", "treatment") not in rows and ("rate_exit", "control") not in rows
    page = Client().get(f"/p/{poll.slug}/results/").content.decode()
    for option in ("exit", "aid", "escalate"):
        shown = table_rows(page, option)
        for label in ("Discussed", "Did not discuss"):
            count, cells = shown[label]
            assert count == "" and "withheld (too few people)" in cells
            assert 'class="num"' not in cells
        assert "withheld" not in shown["Everyone"][1]
    # The plots draw only the groups that are shown.
    assert "Did not discuss</text>" not in page and "Everyone</text>" in page
    assert "fewer than 7 people" in page


def test_a_snapshot_held_back_by_the_release_rule_is_never_shown() -> None:
    poll = computed(n=40)
    released = ResultSnapshot.objects.released_for(poll)
    add_simulated_participants(poll=poll, n=2, seed=8)
    recompute_poll(poll.pk)
    latest = ResultSnapshot.objects.latest_for(poll)
    assert latest.pk != released.pk and latest.released_at is None
    assert ResultSnapshot.objects.released_for(poll).pk == released.pk
    page = Client().get(f"/p/{poll.slug}/results/").content.decode()
    assert "from 40 people" in page and "from 42 people" not in page
    held_back = whole_sample(latest)[("rate_exit", "all")]
    shown = whole_sample(released)[("rate_exit", "all")]
    cells = table_rows(page, "exit")["Everyone"][1]
    assert f"from {one_decimal(shown['mean_t1'])} to {one_decimal(shown['mean_t2'])}" in cells
    if (held_back["mean_t1"], held_back["mean_t2"]) != (shown["mean_t1"], shown["mean_t2"]):
        held = f"from {one_decimal(held_back['mean_t1'])} to {one_decimal(held_back['mean_t2'])}"
        assert held not in cells


def test_the_page_carries_no_participant_level_value() -> None:
    poll = computed(n=40)
    participants = list(Participant.objects.filter(poll=poll).order_by("pk")[:3])
    option = poll.options.get(key="exit")
    for number, participant in enumerate(participants):
        Reason.objects.create(
            poll=poll,
            participant=participant,
            option=option,
            stance="for",
            text=f"A private reason number {number}",
        )
    page = Client().get(f"/p/{poll.slug}/results/").content.decode()
    for participant in Participant.objects.filter(poll=poll):
        assert participant.public_id not in page
    assert "private reason" not in page
    # Every count on the page is of at least k people: no figure describes one person.
    counts = [int(n) for n in re.findall(r'<span class="count">(\d+) people</span>', page)]
    assert len(counts) == 9 and min(counts) >= poll.min_subgroup_size
    for column in ("subgroup_value", "public_id", "value", "dont_know"):
        assert column not in page


def test_before_the_first_release_the_published_page_says_results_are_not_ready() -> None:
    # Four participants, k = 5: the release rule holds back the first snapshot.
    poll = computed(n=4, k=5)
    assert ResultSnapshot.objects.latest_for(poll) is not None
    assert ResultSnapshot.objects.released_for(poll) is None
    response = Client().get(f"/p/{poll.slug}/results/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "The results are not ready yet" in page and "at least 5 people" in page
    assert "<table" not in page and "<svg" not in page


def test_a_poll_without_a_control_arm_shows_everyone_only() -> None:
    poll = computed(n=20, control_share=0.0)
    page = Client().get(f"/p/{poll.slug}/results/").content.decode()
    assert list(table_rows(page, "exit")) == ["Everyone"]
    assert "Did not discuss" not in page and "chosen at random" not in page


def test_option_texts_are_escaped_in_the_tables_and_the_plots() -> None:
    poll = computed(n=20)
    option = poll.options.get(key="exit")
    option.text = {"en": '<img src=x onerror="alert(1)"> Exit', "uk": "Вихід"}
    option.save(update_fields=["text"])
    poll.save()  # a new version of the poll: its definition is read again
    page = Client().get(f"/p/{poll.slug}/results/").content.decode()
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; Exit" in page


def test_the_page_reads_the_poll_and_one_table_of_the_snapshot_whatever_its_size(
    django_assert_max_num_queries: Any,
) -> None:
    poll = computed(n=40)
    client = Client()
    assert client.get(f"/p/{poll.slug}/results/").status_code == 200  # builds the poll's spec
    with django_assert_max_num_queries(3) as queries:
        assert client.get(f"/p/{poll.slug}/results/").status_code == 200
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    # Never the participants' contribution digests, nor the whole payload.
    assert '"contributions"' not in sql
    reads = re.findall(r'"results_resultsnapshot"\."payload"( -> \'\w+\')?', sql)
    assert reads == [" -> 'items'"]


def test_closing_the_poll_publishes_its_results() -> None:
    poll = computed(n=40, public=False)
    Poll.objects.filter(pk=poll.pk).update(status=Poll.Status.CLOSED)
    response = Client().get(f"/p/{poll.slug}/results/?lang=uk")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Опитування ще триває" not in page  # closed: the figures are final
    assert list(table_rows(page, "aid")) == ["Усі", "Обговорювали", "Без обговорення"]
    assert "<script" not in page  # the page needs no JavaScript
