"""Results in the admin: charts of the latest snapshot, and a recompute with live progress.

The page reads one snapshot, ``ResultSnapshot.objects.for_reader(poll, ...)``, and never touches
answers: organisers and microdata grants read the latest, aggregates-only grants the latest
released one, as in the API. ``chart_data`` shapes the snapshot's tables into what the charts
draw (plain data, so it is tested without a browser); ``results.js`` draws them with the
vendored Chart.js.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.text import Truncator
from django.views.decorators.http import require_POST

from results import tables
from results.access import has_microdata
from results.compute.progress import UnknownJob, job_status
from results.models import ResultSnapshot
from results.tasks import request_recompute
from surveys.models import Poll, Question, localized
from surveys.roles import can_organise

ARMS = ("all", "treatment", "control")
SIGNIFICANCE = 0.05
LABEL_CHARS = 60  # long option texts are shortened on the charts' axes


def p_text(p: float | None) -> str:
    """A p-value as researchers print it: three decimals, never a bare zero."""
    if p is None:
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _whole(row: dict[str, Any], arm: str, subgroup: str, value: str) -> bool:
    return (
        row.get("arm") == arm
        and (row.get("subgroup") or "") == subgroup
        and str(row.get("subgroup_value") or "") == value
        and not row.get("weighted")
    )


def subgroup_choices(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(``subgroup=value``, label) pairs present in the snapshot's item rows."""
    seen: dict[str, str] = {}
    for row in payload.get("items", []):
        subgroup = row.get("subgroup") or ""
        if subgroup and subgroup != "group":
            value = str(row.get("subgroup_value") or "")
            seen.setdefault(f"{subgroup}={value}", f"{subgroup}: {value}")
    return sorted(seen.items())


def chart_data(
    payload: dict[str, Any], *, labels: dict[str, str], arm: str, subgroup: str = ""
) -> dict[str, Any]:
    """Everything the results charts draw, for one arm and one subgroup (``key=value`` or "")."""
    group, _, value = subgroup.partition("=")
    items = [row for row in payload.get("items", []) if _whole(row, arm, group, value)]
    distributions = [
        {
            "item": row["item"],
            "label": labels.get(row["item"], row["item"]),
            "n": row.get("n_pairs"),
            **{
                f"{part}_{wave}": row.get(f"pct_{part}_{wave}")
                for part in ("oppose", "neutral", "support", "dk")
                for wave in ("t1", "t2")
            },
        }
        for row in items
    ]
    has_control = any(row.get("arm") == "control" for row in payload.get("items", []))
    forest_arms = ("treatment", "control") if arm == "all" and has_control else (arm,)
    forest = [
        {
            "item": row["item"],
            "label": labels.get(row["item"], row["item"]),
            "arm": forest_arm,
            "mean_diff": row["mean_diff"],
            "ci_low": row.get("ci_low"),
            "ci_high": row.get("ci_high"),
            "p_holm": row.get("p_holm"),
            "significant": row.get("p_holm") is not None and row["p_holm"] < SIGNIFICANCE,
            "n": row.get("n_pairs"),
        }
        for forest_arm in forest_arms
        for row in payload.get("items", [])
        if _whole(row, forest_arm, group, value) and row.get("mean_diff") is not None
    ]
    did = [
        {**row, "label": labels.get(row["item"], row["item"]), "p_text": p_text(row.get("p_welch"))}
        for row in payload.get("did", [])
        if (row.get("subgroup") or "") == group and str(row.get("subgroup_value") or "") == value
    ]
    options = payload.get("options", {}) or {}
    option_arm = arm if arm in ARMS else "all"
    groups = [row for row in options.get("opinion_groups", []) if row.get("arm") == option_arm]
    peaks = [row for row in options.get("single_peakedness", []) if row.get("arm") in ARMS]
    return {
        "distributions": distributions,
        "forest": forest,
        "did": did,
        "opinion_groups": groups,
        "single_peakedness": peaks,
        "significance": SIGNIFICANCE,
    }


class ResultsMixin:
    """Results pages hung under a poll's admin URL, for its organisers and granted researchers."""

    admin_site: Any
    model: type[Poll]

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        urls = [
            path("<int:poll_id>/results/", wrap(self.results_view), name="surveys_poll_results"),
            path(
                "<int:poll_id>/results/recompute/",
                wrap(require_POST(self.recompute_view)),
                name="surveys_poll_recompute",
            ),
            path(
                "<int:poll_id>/results/jobs/<str:job_id>/",
                wrap(self.job_view),
                name="surveys_poll_job",
            ),
        ]
        return urls + super().get_urls()  # type: ignore[misc]

    def readable_poll(self, request: HttpRequest, poll_id: int) -> Poll:
        return get_object_or_404(Poll.objects.readable_by(request.user), pk=poll_id)

    def reads_latest(self, request: HttpRequest, poll: Poll) -> bool:
        """Organisers and microdata grants read the latest snapshot and may recompute. An
        aggregates-only grant reads the latest released one and neither starts nor follows a
        recompute: two consecutive snapshots, or a recompute's progress, would tell what the
        newest participants answered or how many they are (the API's rule)."""
        return can_organise(request.user, poll) or has_microdata(request.user, poll)

    def recomputing_poll(self, request: HttpRequest, poll_id: int) -> Poll:
        poll = self.readable_poll(request, poll_id)
        if not self.reads_latest(request, poll):
            raise PermissionDenied("Your grant for this poll gives aggregate results only.")
        return poll

    def results_view(self, request: HttpRequest, poll_id: int) -> TemplateResponse:
        poll = self.readable_poll(request, poll_id)
        reads_latest = self.reads_latest(request, poll)
        snapshot = ResultSnapshot.objects.for_reader(poll, microdata=reads_latest)
        payload = snapshot.payload if snapshot else {}
        arm = request.GET.get("arm", "all")
        arm = arm if arm in ARMS else "all"
        subgroups = subgroup_choices(payload)
        subgroup = request.GET.get("subgroup", "")
        subgroup = subgroup if subgroup in dict(subgroups) else ""
        labels = {
            key: Truncator(localized(text, "en")).chars(LABEL_CHARS)
            for key, text in poll.questions.filter(
                kind__in=[Question.Kind.RATING, Question.Kind.RANKING]
            ).values_list("key", "text")
        }
        labels[tables.KNOWLEDGE_INDEX] = "Knowledge index (correct answers)"
        since = poll.participants.completed()
        if snapshot is not None and snapshot.data_as_of is not None:
            since = since.filter(completed_at__gt=snapshot.data_as_of)
        context = self.tool_context(request, poll, "Results", "results")  # type: ignore[attr-defined]
        context.update(
            snapshot=snapshot,
            meta=payload.get("meta", {}),
            completions_since=since.count(),
            charts=chart_data(payload, labels=labels, arm=arm, subgroup=subgroup)
            if snapshot
            else None,
            chart_height=4 + 3 * len(labels),
            arm=arm,
            arms=ARMS,
            subgroup=subgroup,
            subgroups=subgroups,
            can_recompute=reads_latest,
        )
        return TemplateResponse(request, "admin/surveys/poll/results.html", context)

    def recompute_view(self, request: HttpRequest, poll_id: int) -> HttpResponse:
        poll = self.recomputing_poll(request, poll_id)
        job_id = request_recompute(poll.pk)
        return JsonResponse({"job_id": job_id}, status=202)

    def job_view(self, request: HttpRequest, poll_id: int, job_id: str) -> HttpResponse:
        poll = self.recomputing_poll(request, poll_id)
        try:
            status = dict(job_status(job_id))
        except UnknownJob:
            raise Http404("No such job.") from None
        if status.get("poll_id") not in (None, poll.pk):
            raise Http404("No such job for this poll.")
        return JsonResponse(status)
