"""The organisers' landing page: the admin's index opens with their polls, each with its status,
completions today, reasons waiting for moderation and the one next step that moves it on.

Installed on the admin site by ``install`` (called from ``surveys.admin``): the site's own index
view keeps its app list under the polls, so the admin stays the organisers' home.
"""

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from django.contrib.admin import AdminSite
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from results.models import ResultSnapshot
from surveys.models import Poll, Reason, localized
from surveys.roles import can_organise

LANDING_TEMPLATE = "admin/deliberate/organiser_index.html"


@dataclass(frozen=True)
class PollLine:
    poll: Poll
    title: str
    participants: int
    completed: int
    completed_today: int
    reported: int
    next_step: str
    next_url: str


def start_of_today() -> datetime:
    """Midnight in the site's time zone: "today" as the organiser's clock reads it."""
    today = timezone.localdate()
    return timezone.make_aware(datetime.combine(today, time.min))


def next_step(poll: Poll, line: dict[str, int], *, organiser: bool) -> tuple[str, str]:
    """(what to do next, where) for one poll: the first of moderation, opening, inviting and
    reading results that applies."""
    pk = poll.pk
    results = (_("Read the results"), reverse("admin:surveys_poll_results", args=[pk]))
    if not organiser:
        return results
    if line["reported"]:
        queue = reverse("admin:surveys_reason_changelist") + f"?poll__id__exact={pk}&state=reported"
        label = ngettext(
            "Moderate %(count)d reported reason",
            "Moderate %(count)d reported reasons",
            line["reported"],
        ) % {"count": line["reported"]}
        return label, queue
    if poll.status == Poll.Status.DRAFT:
        return (
            _("Check that it is ready, then open it"),
            reverse("admin:surveys_poll_checklist", args=[pk]),
        )
    if poll.status == Poll.Status.OPEN and not line["participants"]:
        if poll.access == Poll.Access.INVITATION:
            return (
                _("Invite participants"),
                reverse("admin:surveys_poll_invitations", args=[pk]),
            )
        return _("Share the link and watch who arrives"), reverse(
            "admin:surveys_poll_monitor", args=[pk]
        )
    if poll.status == Poll.Status.OPEN and line["completed"] and line["stale"]:
        return results
    if poll.status == Poll.Status.OPEN:
        return _("Watch the monitor"), reverse("admin:surveys_poll_monitor", args=[pk])
    return results


def poll_lines(request: HttpRequest) -> list[PollLine]:
    """The user's polls, newest first, with their counts in one query."""
    today = start_of_today()
    polls = (
        Poll.objects.readable_by(request.user)
        .annotate(
            n_participants=Count("participants", distinct=True),
            n_completed=Count(
                "participants",
                filter=Q(participants__completed_at__isnull=False),
                distinct=True,
            ),
            n_today=Count(
                "participants", filter=Q(participants__completed_at__gte=today), distinct=True
            ),
            n_reported=Count(
                "reasons", filter=Q(reasons__state=Reason.State.REPORTED), distinct=True
            ),
        )
        .order_by("-created_at")
    )
    polls = list(polls)
    snapshots = {
        row["poll_id"]: row["n_participants"]
        for row in ResultSnapshot.objects.filter(poll__in=polls)
        .order_by("poll_id", "-computed_at")
        .distinct("poll_id")
        .values("poll_id", "n_participants")
    }
    language = getattr(request, "LANGUAGE_CODE", "en")
    lines = []
    for poll in polls:
        counts = {
            "participants": poll.n_participants,
            "completed": poll.n_completed,
            "reported": poll.n_reported,
            # Results behind: completions the newest snapshot does not count yet.
            "stale": int(snapshots.get(poll.pk, 0) != poll.n_completed),
        }
        label, url = next_step(poll, counts, organiser=can_organise(request.user, poll))
        lines.append(
            PollLine(
                poll=poll,
                title=localized(poll.title, language) or poll.slug,
                participants=poll.n_participants,
                completed=poll.n_completed,
                completed_today=poll.n_today,
                reported=poll.n_reported,
                next_step=label,
                next_url=url,
            )
        )
    return lines


def install(site: AdminSite) -> None:
    """Open the admin's index with the organiser's polls (the site's own index underneath)."""
    if site.index_template == LANDING_TEMPLATE:
        return  # installed already (the URL configuration was imported again)
    original = site.index

    def index(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {"poll_lines": poll_lines(request), **(extra_context or {})}
        return original(request, extra)

    site.index = index  # type: ignore[method-assign]
    site.index_template = LANDING_TEMPLATE
