"""The results page as an organiser reads it: the freshness line clears once a recompute has
seen every completion (also one that finds nothing new), and options carry their short labels."""

import pytest
from django.urls import reverse

from results.compute.recompute import recompute_poll
from results.models import ResultSnapshot
from results.simulate import add_simulated_participants
from surveys.models import Answer, Poll
from tests.surveys.admin_fixtures import client_for, staff

pytestmark = pytest.mark.django_db


def results_page(poll: Poll) -> str:
    organiser = poll.organisers.first() or staff("olga", polls=(poll,))
    return (
        client_for(organiser)
        .get(reverse("admin:surveys_poll_results", args=[poll.pk]))
        .content.decode()
    )


def test_the_freshness_line_counts_new_completions_and_clears_after_a_recompute(
    computed: Poll,
) -> None:
    assert "Up to date: no completion since." in results_page(computed)
    add_simulated_participants(poll=computed, n=1, seed=21)
    assert "1 completion since then: recompute to include it." in results_page(computed)
    recompute_poll(computed.pk)
    assert "Up to date: no completion since." in results_page(computed)


def test_a_recompute_that_finds_nothing_new_still_marks_the_results_current(
    computed: Poll,
) -> None:
    snapshot = ResultSnapshot.objects.latest_for(computed)
    answer = Answer.objects.filter(poll=computed).order_by("pk").first()
    answer.save()  # saved again, same value: newer data, same results
    again = recompute_poll(computed.pk)
    assert again.pk == snapshot.pk and ResultSnapshot.objects.filter(poll=computed).count() == 1
    page = results_page(computed)
    assert "Up to date: no completion since." in page
    again.refresh_from_db()
    assert again.checked_at > snapshot.checked_at


def test_charts_and_tables_name_options_by_their_short_label(computed: Poll) -> None:
    option = computed.options.order_by("axis").first()
    option.short_label = {"en": "Talks now"}
    option.save(update_fields=["short_label"])
    question = computed.questions.get(option=option, kind="rating")
    client = client_for(staff("olga", polls=(computed,)))
    response = client.get(reverse("admin:surveys_poll_results", args=[computed.pk]))
    charts = response.context["charts"]
    labels = {row["item"]: row["label"] for row in charts["panels"][0]["distributions"]}
    assert labels[question.key] == "Talks now"
    assert {row["label"] for row in charts["did"] if row["item"] == question.key} == {"Talks now"}
    assert '<th scope="row">Talks now</th>' in response.content.decode()
