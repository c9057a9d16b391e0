"""Results and preview in the admin: charts from the latest snapshot, recompute with progress,
and participant pages previewed without writing anything."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from results.admin.charts import chart_data, p_text
from results.compute.recompute import recompute_poll
from results.models import Grant, ResultSnapshot
from results.simulate import add_simulated_participants
from surveys.models import Answer, Participant, Poll
from tests.factories import make_poll
from tests.surveys.admin_fixtures import client_for, staff

pytestmark = pytest.mark.django_db


def test_the_results_page_draws_every_chart_from_the_latest_snapshot(computed: Poll) -> None:
    client = client_for(staff("olga", polls=(computed,)))
    response = client.get(reverse("admin:surveys_poll_results", args=[computed.pk]))
    page = response.content.decode()
    assert "Results include every completion up to" in page
    assert "Up to date: no completion since." in page
    assert "chart.umd.min.js" in page and "cdn" not in page.lower()
    data = json.loads(json.dumps(response.context["charts"]))  # what json_script hands the page
    items = {row["item"] for row in data["distributions"]}
    assert items == {"rate_exit", "rate_aid", "rate_escalate"}
    assert {row["arm"] for row in data["forest"]} == {"treatment", "control"}
    assert [panel["arm"] for panel in data["panels"]] == ["treatment", "control"]
    assert data["panels"][0]["opinion_groups"] and data["single_peakedness"]
    for id_ in [
        "chart-did",
        "chart-distributions-treatment",
        "chart-distributions-control",
        "chart-forest",
        "chart-groups-treatment-t1",
        "chart-peaks",
    ]:
        assert f'id="{id_}"' in page


def test_completions_after_the_snapshot_are_counted(computed: Poll) -> None:
    add_simulated_participants(poll=computed, n=2, seed=9)
    client = client_for(staff("olga", polls=(computed,)))
    response = client.get(reverse("admin:surveys_poll_results", args=[computed.pk]))
    assert response.context["completions_since"] == 2


def test_the_subgroup_selector_filters_the_rows(computed: Poll) -> None:
    snapshot = computed.snapshots.latest("computed_at")
    labels = {"rate_exit": "Exit"}
    whole = chart_data(snapshot.payload, labels=labels, arm="all")
    left = chart_data(snapshot.payload, labels=labels, arm="all", subgroup="leaning=left")
    assert whole["distributions"] and left["distributions"]
    assert whole["distributions"][0]["n"] > left["distributions"][0]["n"]


def test_p_values_print_as_researchers_expect() -> None:
    assert [p_text(None), p_text(0.0001), p_text(0.0234)] == ["n/a", "< 0.001", "0.023"]


def test_a_poll_without_results_says_so() -> None:
    poll = make_poll()
    client = client_for(staff("olga", polls=(poll,)))
    page = client.get(reverse("admin:surveys_poll_results", args=[poll.pk])).content.decode()
    assert "No results yet" in page and "chart-forest" not in page


def test_a_granted_researcher_reads_results_but_an_outsider_gets_404(computed: Poll) -> None:
    researcher = staff("rita", can_add=False)
    Grant.objects.create(user=researcher, poll=computed)
    url = reverse("admin:surveys_poll_results", args=[computed.pk])
    page = client_for(researcher).get(url).content.decode()
    assert "Results include every completion up to" in page and ">Edit<" not in page
    outsider = client_for(staff("bob"))
    assert outsider.get(url).status_code == 404
    recompute = reverse("admin:surveys_poll_recompute", args=[computed.pk])
    assert outsider.post(recompute).status_code == 404


def test_recompute_returns_a_job_whose_progress_can_be_followed(computed: Poll) -> None:
    client = client_for(staff("olga", polls=(computed,)))
    started = client.post(reverse("admin:surveys_poll_recompute", args=[computed.pk]))
    assert started.status_code == 202
    job = started.json()["job_id"]
    status = client.get(reverse("admin:surveys_poll_job", args=[computed.pk, job])).json()
    assert status["state"] in {"queued", "running", "done", "failed"}
    assert 0 <= status["progress"] <= 1
    missing = client.get(reverse("admin:surveys_poll_job", args=[computed.pk, "nope"]))
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("step", "page", "arm", "language", "expected"),
    [
        ("welcome", 1, "treatment", "en", "Welcome."),
        ("t1", 1, "control", "uk", "(uk)"),
        ("briefing", 1, "treatment", "en", "Position B"),
        ("next", 1, "control", "en", "without any further reading"),
        ("wait", 1, "treatment", "en", "Your answers so far are saved."),
        # Whatever arm is chosen: only the control arm is offered both positions after T2.
        ("positions", 1, "treatment", "en", "The material the other group read"),
    ],
)
def test_preview_renders_a_participant_page_and_stores_nothing(
    step: str, page: int, arm: str, language: str, expected: str
) -> None:
    poll = make_poll()
    client: Client = client_for(staff("olga", polls=(poll,)))
    query = {"step": step, "page": page, "arm": arm, "order": "B A", "language": language}
    shell = client.get(reverse("admin:surveys_poll_preview", args=[poll.pk]), query)
    assert "<iframe" in shell.content.decode()
    response = client.get(reverse("admin:surveys_poll_preview_page", args=[poll.pk]), query)
    assert response.status_code == 200
    assert expected in response.content.decode()
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert not Participant.objects.exists() and not Answer.objects.exists()


def test_preview_is_not_found_for_another_polls_organiser() -> None:
    poll = make_poll()
    url = reverse("admin:surveys_poll_preview_page", args=[poll.pk])
    response = client_for(staff("bob")).get(url, {"step": "welcome", "page": 1})
    assert response.status_code == 404


def test_an_aggregates_grant_reads_the_released_snapshot_in_the_admin_and_cannot_recompute(
    computed: Poll,
) -> None:
    """Attack: a staff researcher holding aggregates only opens the admin's results page after
    one more participant completed. The newest snapshot is not released (it differs from the
    last release by fewer than k people, so the two would tell that person's answers): the page
    must show the released one, as the API does, and the recompute and its progress (which tell
    the newest snapshot's size) are refused. Organisers and microdata grants read the newest."""
    released = ResultSnapshot.objects.released_for(computed)
    assert released is not None
    add_simulated_participants(poll=computed, n=1, seed=11)
    newest = recompute_poll(computed.pk)
    assert newest.released_at is None and newest.n_participants == released.n_participants + 1
    url = reverse("admin:surveys_poll_results", args=[computed.pk])
    recompute = reverse("admin:surveys_poll_recompute", args=[computed.pk])

    aggregates = staff("rita", can_add=False)
    Grant.objects.create(user=aggregates, poll=computed, level=Grant.Level.AGGREGATES)
    client = client_for(aggregates)
    page = client.get(url)
    assert page.context["snapshot"].pk == released.pk
    assert f"{released.n_participants} people" in page.content.decode()
    assert 'id="recompute"' not in page.content.decode()
    assert client.post(recompute).status_code == 403
    job = client_for(staff("olga", polls=(computed,))).post(recompute).json()["job_id"]
    assert client.get(reverse("admin:surveys_poll_job", args=[computed.pk, job])).status_code == 403

    microdata = staff("mira", can_add=False)
    Grant.objects.create(user=microdata, poll=computed, level=Grant.Level.MICRODATA)
    for reader in (microdata, staff("olga2", polls=(computed,))):
        page = client_for(reader).get(url)
        assert page.context["snapshot"].pk == newest.pk
        assert 'id="recompute"' in page.content.decode()
