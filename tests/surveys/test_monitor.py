"""The live monitor: the funnel per arm, drop-off, median time per step, flags, last activity."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from surveys.admin.monitor import poll_monitor
from surveys.models import Participant, Withdrawal
from tests.surveys.admin_fixtures import client_for, poll_with_activity, staff

pytestmark = pytest.mark.django_db


def test_the_funnel_counts_each_stage_per_arm() -> None:
    poll = poll_with_activity("alpha")
    Participant.objects.create(
        poll=poll,
        arm=Participant.Arm.CONTROL,
        consented_at=poll.created_at,
        step=Participant.Step.T2,
        step_times={"welcome": 10, "t1": 100},
    )
    monitor = poll_monitor(poll)
    counts = {row.key: {c.arm: c.count for c in row.cells} for row in monitor.stages}
    # Invitations are where people come from, not a stage: two links made, one opened.
    assert "invited" not in counts
    assert (monitor.invited, monitor.invited_started, monitor.open_link) == (2, 1, 2)
    assert counts["started"]["all"] == 3  # the untouched invitation has not started
    assert counts["consented"] == {"all": 3, "treatment": 1, "control": 1}
    assert counts["t1_done"] == {"all": 2, "treatment": 1, "control": 1}
    assert counts["briefed"] == {"all": None, "treatment": 1, "control": None}
    assert counts["completed"] == {"all": 1, "treatment": 1, "control": 0}
    assert monitor.unassigned == 1


def test_drop_off_is_the_share_lost_since_the_previous_stage() -> None:
    monitor = poll_monitor(poll_with_activity("alpha"))
    drop = {row.key: row.cells[0].drop for row in monitor.stages}
    assert drop["started"] is None
    assert drop["consented"] == pytest.approx(0)  # 2 started, 2 consented
    assert drop["t1_done"] == pytest.approx(50)  # 2 consented, 1 past T1


def test_medians_flags_and_last_activity_are_reported() -> None:
    monitor = poll_monitor(poll_with_activity("alpha"))
    medians = {label: (median, n) for label, median, n in monitor.median_seconds}
    assert medians["welcome and consent"] == (25, 2)
    assert medians["first questionnaire"] == (300, 1)
    assert monitor.flags == [
        ("too_fast", 1, "1 participant finished faster than the poll's minimum of 300 seconds.")
    ]
    assert monitor.last_activity is not None


def test_the_monitor_reads_a_fixed_number_of_queries_whatever_the_size() -> None:
    poll = poll_with_activity("alpha")
    with CaptureQueriesContext(connection) as small:
        poll_monitor(poll)
    Participant.objects.bulk_create(Participant(poll=poll) for _ in range(200))
    with CaptureQueriesContext(connection) as large:
        poll_monitor(poll)
    assert len(large) == len(small) <= 4


def test_the_monitor_page_refreshes_itself_from_a_fragment() -> None:
    poll = poll_with_activity("alpha")
    client = client_for(staff("olga", polls=(poll,)))
    url = reverse("admin:surveys_poll_monitor", args=[poll.pk])
    page = client.get(url).content.decode()
    assert 'data-refresh-url="' in page and "monitor.js" in page
    fragment = client.get(url, {"fragment": 1}).content.decode()
    assert "<html" not in fragment and 'data-stage="completed"' in fragment


def test_withdrawals_are_counted_and_said_without_a_query_more() -> None:
    poll = poll_with_activity("alpha")
    Withdrawal.objects.create(poll=poll)
    Withdrawal.objects.create(poll=poll)
    with CaptureQueriesContext(connection) as queries:
        monitor = poll_monitor(poll)
    assert monitor.withdrawals == 2
    assert len(queries) <= 4
    other = poll_with_activity("beta")
    assert poll_monitor(other).withdrawals == 0
