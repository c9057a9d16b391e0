"""Results in the admin: charts of the latest snapshot, and a recompute with live progress.

The page reads one snapshot, ``ResultSnapshot.objects.for_reader(poll, ...)``, and never touches
answers: organisers and microdata grants read the latest, aggregates-only grants the latest
released one, as in the API. ``results.admin.charts`` shapes the snapshot's tables into what the
charts and their data tables show; ``results.js`` draws them with the vendored Chart.js.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.text import Truncator
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from results import tables
from results.access import has_microdata
from results.admin.charts import (
    ARMS,
    COMPARE,
    arm_names,
    chart_data,
    default_arm,
    panel_arms,
    subgroup_choices,
)
from results.admin.dri import dri_view
from results.compute.progress import UnknownJob, job_status
from results.models import ResultSnapshot
from results.tasks import request_recompute
from surveys.models import Option, Poll, Question, localized
from surveys.roles import can_organise

LABEL_CHARS = 60  # long option texts are shortened on the charts' axes


def option_label(option: Option | None, language: str) -> str:
    """The option's short label for charts and tables, else its text, shortened."""
    if option is None:
        return ""
    short = localized(getattr(option, "short_label", None) or {}, language)
    return short or Truncator(localized(option.text, language)).chars(LABEL_CHARS)


def item_labels(poll: Poll, language: str) -> tuple[dict[str, str], dict[str, str]]:
    """({question key: label}, {option key: label}) of the poll's rated and ranked items: the
    option's short label where the question rates an option, else the question's text."""
    options = {o.key: option_label(o, language) for o in poll.options.order_by("axis")}
    labels = {}
    questions = poll.questions.filter(
        kind__in=[Question.Kind.RATING, Question.Kind.RANKING]
    ).select_related("option")
    for question in questions:
        labels[question.key] = option_label(question.option, language) or Truncator(
            localized(question.text, language)
        ).chars(LABEL_CHARS)
    labels[tables.KNOWLEDGE_INDEX] = _("Knowledge index (correct answers)")
    return labels, options


def chart_text() -> dict[str, str]:
    """The words results.js writes on the charts, in the organiser's language."""
    return {
        "oppose": _("oppose"),
        "neutral": _("neutral"),
        "support": _("support"),
        "dont_know": _("don't know"),
        "withheld": _("withheld: small group"),
        "treatment": _("treatment"),
        "control": _("control"),
        "all": _("everyone"),
        "change": _("mean change T2 − T1 (scale points)"),  # noqa: RUF001 (a minus sign)
        "did": _("difference in differences (scale points)"),
        "ci": _("95% CI"),
        "mean_rating": _("mean rating"),
        "group": _("Group %(number)s (n = %(size)s)"),
        "axis": _("poll's axis"),
        "best": _("best ordering"),
        "starting": _("Starting…"),
        "not_started": _("The recompute could not start."),
        "failed": _("Failed: %(error)s"),
        "see_log": _("see the worker log"),
        "dri": _("Deliberative Reason Index"),
        "r_c": _("agreement on considerations (r_C)"),
        "r_p": _("agreement on preferences (r_P)"),
        "consistent": _("r_C = r_P: reasons and preferences agree"),
        "pair": _("pair"),
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
            raise PermissionDenied(_("Your grant for this poll gives aggregate results only."))
        return poll

    def results_view(self, request: HttpRequest, poll_id: int) -> TemplateResponse:
        poll = self.readable_poll(request, poll_id)
        reads_latest = self.reads_latest(request, poll)
        snapshot = ResultSnapshot.objects.for_reader(poll, microdata=reads_latest)
        payload = snapshot.payload if snapshot else {}
        arm = request.GET.get("arm") or default_arm(payload)
        arm = arm if arm in ARMS else default_arm(payload)
        subgroups = subgroup_choices(payload)
        subgroup = request.GET.get("subgroup", "")
        subgroup = subgroup if subgroup in dict(subgroups) else ""
        labels, option_labels = item_labels(poll, get_language() or "en")
        since = poll.participants.completed()
        if snapshot is not None and snapshot.data_as_of is not None:
            # data_as_of is the newest completion or answer the snapshot read (a recompute that
            # finds nothing new moves it too), so a completion it includes never counts here.
            since = since.filter(completed_at__gt=snapshot.data_as_of)
        charts = None
        if snapshot:
            charts = chart_data(
                payload, labels=labels, arm=arm, subgroup=subgroup, option_labels=option_labels
            )
            charts["text"] = chart_text()
            charts["dri"] = dri_view(payload, arm, points=reads_latest)
        context = self.tool_context(request, poll, _("Results"), "results")  # type: ignore[attr-defined]
        context.update(
            snapshot=snapshot,
            meta=payload.get("meta", {}),
            completions_since=since.count(),
            charts=charts,
            chart_height=round(4 + 2.4 * len(labels)),  # an integer: no decimal comma in uk
            arm=arm,
            arms=[
                (key, arm_names()[key])
                for key in ARMS
                if key != COMPARE or default_arm(payload) == COMPARE
            ],
            side_by_side=len(panel_arms(arm)) > 1,
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
            raise Http404(_("No such job.")) from None
        if status.get("poll_id") not in (None, poll.pk):
            raise Http404(_("No such job for this poll."))
        return JsonResponse(status)
