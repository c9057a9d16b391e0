"""The poll's public results page: what participants (and anyone with the link) may read once
the organiser publishes (``Poll.results_visible_to_participants``).

Aggregates only, and only from the latest released snapshot (``ResultSnapshot.objects
.released_for``): the same figures an aggregates-only researcher reads, never a snapshot held
back by the release rule and never a row of answers. The snapshot's tables already went through
the disclosure rule (``results.stats.disclosure``); a withheld cell is absent or empty there,
and is shown here as withheld, never as zero.
"""

from dataclasses import dataclass
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from results.models import ResultSnapshot
from surveys.definition.spec import PollSpec, QuestionSpec, poll_spec
from surveys.journey import access
from surveys.models import Poll
from surveys.templatetags.dotplot import Row, Scale, scale_words

# The arms in the order the page shows them; "all" is everyone, whatever their arm.
ARMS = ("all", "treatment", "control")


@dataclass(frozen=True)
class GroupFigures:
    """One group's figures for one option; None where the disclosure rule withholds them."""

    arm: str
    label: str
    n: int | None
    mean_t1: float | None
    mean_t2: float | None
    support_t1: float | None
    support_t2: float | None

    @property
    def withheld(self) -> bool:
        return self.n is None or self.mean_t1 is None or self.mean_t2 is None


def _float(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def arm_labels() -> dict[str, str]:
    return {
        "all": _("Everyone"),
        "treatment": _("Discussed"),
        "control": _("Did not discuss"),
    }


def option_results(
    spec: PollSpec, payload: dict[str, Any], language: str, arms: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Per option: its text, scale in words, and each arm's figures from the ``items`` table
    (whole sample, unweighted rows)."""
    rows = {
        (row.get("item"), row.get("arm")): row
        for row in payload.get("items", [])
        if not row.get("subgroup") and not row.get("weighted")
    }
    labels = arm_labels()
    questions: dict[str, QuestionSpec] = {
        q.option: q for q in spec.questions if q.kind == "rating" and q.option and q.waves == "both"
    }
    results = []
    for option in spec.options:
        question = questions.get(option.key)
        if question is None:
            continue
        scale = Scale(
            question.scale_min or 0,
            10 if question.scale_max is None else question.scale_max,
            spec.text(question.min_label, language),
            spec.text(question.max_label, language),
        )
        groups = []
        for arm in arms:
            row = rows.get((question.key, arm), {})
            n = row.get("n_pairs")
            groups.append(
                GroupFigures(
                    arm=arm,
                    label=labels[arm],
                    n=n if isinstance(n, int) and not isinstance(n, bool) else None,
                    mean_t1=_float(row.get("mean_t1")),
                    mean_t2=_float(row.get("mean_t2")),
                    support_t1=_float(row.get("pct_support_t1")),
                    support_t2=_float(row.get("pct_support_t2")),
                )
            )
        results.append(
            {
                "key": option.key,
                "text": spec.text(option.text, language),
                "scale": scale,
                "scale_words": scale_words(scale),
                "groups": groups,
                "plot_rows": [Row(g.label, g.mean_t1, g.mean_t2) for g in groups if not g.withheld],
            }
        )
    return results


def released_snapshot(poll: Poll) -> ResultSnapshot | None:
    """The latest released snapshot with only its ``items`` table read from the database.

    A payload holds every table of every breakdown and the snapshot the participants'
    contribution digests: a public page that may be read by thousands needs neither, so
    PostgreSQL extracts the one table it shows.
    """
    snapshot = ResultSnapshot.objects.defer("payload", "contributions").released_for(poll)
    if snapshot is not None:
        items = (
            ResultSnapshot.objects.filter(pk=snapshot.pk)
            .values_list("payload__items", flat=True)
            .first()
        )
        snapshot.payload = {"items": items or []}
    return snapshot


@require_safe
def results(request: HttpRequest, slug: str) -> HttpResponse:
    """/p/<slug>/results/: the published results, a polite "not yet" page before, 404 for a
    poll that was never opened."""
    poll = get_object_or_404(Poll, slug=slug)
    if poll.status == Poll.Status.DRAFT:
        raise Http404
    language, explicit = access.choose_language(request, poll=poll, participant=None)
    spec = poll_spec(poll)
    visible = poll.results_visible_to_participants()
    snapshot = released_snapshot(poll) if visible else None
    arms = ARMS if poll.control_share > 0 else ARMS[:1]
    with translation.override(language):
        context = {
            "poll_title": spec.text(spec.title, language),
            "question": spec.text(spec.question, language),
            "language": language,
            "languages": access.language_links(spec.languages),
            "path": request.path,
            "visible": visible,
            "still_open": poll.status == Poll.Status.OPEN,
            "snapshot": snapshot,
            "k": poll.min_subgroup_size,
            "both_arms": len(arms) > 1,
            "options": option_results(spec, snapshot.payload, language, arms) if snapshot else [],
        }
        response = render(request, "results/public.html", context, status=200 if visible else 404)
    if explicit:
        access.keep_language(response, language)
    return response
