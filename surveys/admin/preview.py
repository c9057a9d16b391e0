"""Preview any participant page from the admin, exactly as a participant sees it, storing nothing.

The page is rendered by the journey's own ``surveys.journey.pages.render_step`` for an unsaved
participant with the chosen arm, position order and language, inside a same-origin frame.
"""

from typing import Any

from csp.constants import SELF
from csp.decorators import csp_replace
from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_sameorigin

from surveys.journey import over_time, pages
from surveys.models import Participant, Poll

SAME_ORIGIN_FRAME = csp_replace({"frame-ancestors": [SELF]})

# Not a step of its own: the control arm's read-only page of both positions, offered once its
# T2 is done (``surveys.journey.over_time.positions_page``).
POSITIONS_AFTER_T2 = "positions"
STEPS = [
    (Participant.Step.WELCOME, _("welcome and consent")),
    (Participant.Step.T1, _("first questionnaire (T1)")),
    (Participant.Step.NEXT, _("what happens next (after T1)")),
    (Participant.Step.BRIEFING, _("briefing")),
    (Participant.Step.DELIBERATION, _("deliberation")),
    (Participant.Step.WAIT, _("waiting for the second questionnaire")),
    (Participant.Step.T2, _("second questionnaire (T2)")),
    (Participant.Step.DONE, _("finished")),
    (POSITIONS_AFTER_T2, _("both positions, for the control group after T2")),
]


class PreviewForm(forms.Form):
    step = forms.ChoiceField(label=_("Step"), choices=STEPS, initial=Participant.Step.WELCOME)
    page = forms.IntegerField(min_value=1, initial=1, label=_("Page"))
    arm = forms.ChoiceField(
        label=_("Group"), choices=Participant.Arm.choices, initial=Participant.Arm.TREATMENT
    )
    order = forms.ChoiceField(label=_("Position order"), choices=[])
    language = forms.ChoiceField(label=_("Language"), choices=[])

    def __init__(self, *args: Any, poll: Poll, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keys = list(poll.positions.order_by("order", "id").values_list("key", flat=True))
        orders = [keys, keys[::-1]] if len(keys) > 1 else [keys]
        self.fields["order"].choices = [
            (" ".join(order), str(_(", then ")).join(order) or _("no positions"))
            for order in orders
        ]
        names = dict(settings.LANGUAGES)
        self.fields["language"].choices = [
            (code, str(names.get(code, code))) for code in poll.languages
        ]


def preview_participant(poll: Poll, data: dict[str, Any]) -> Participant:
    """An unsaved participant placed where the organiser wants to look."""
    options = list(poll.options.order_by("order", "id").values_list("key", flat=True))
    positions = data["step"] == POSITIONS_AFTER_T2
    return Participant(
        poll=poll,
        # Only the control arm is offered the positions after T2, once it is done.
        arm=Participant.Arm.CONTROL if positions else data["arm"],
        position_order=data["order"].split(),
        option_order=options,
        language=data["language"],
        step=Participant.Step.DONE if positions else data["step"],
        page=data["page"] - 1,
    )


class PreviewMixin:
    admin_site: Any

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        urls = [
            path("<int:poll_id>/preview/", wrap(self.preview_view), name="surveys_poll_preview"),
            path(
                "<int:poll_id>/preview/page/",
                # The preview tab shows the page in a same-origin frame; everything else is DENY.
                wrap(xframe_options_sameorigin(SAME_ORIGIN_FRAME(self.preview_page_view))),
                name="surveys_poll_preview_page",
            ),
        ]
        return urls + super().get_urls()  # type: ignore[misc]

    def preview_view(self, request: HttpRequest, poll_id: int) -> TemplateResponse:
        poll = self.organised_poll(request, poll_id)  # type: ignore[attr-defined]
        form = PreviewForm(request.GET or None, poll=poll)
        context = self.tool_context(request, poll, _("Preview"), "preview")  # type: ignore[attr-defined]
        context.update(form=form, query=request.GET.urlencode() if form.is_valid() else "")
        return TemplateResponse(request, "admin/surveys/poll/preview.html", context)

    def preview_page_view(self, request: HttpRequest, poll_id: int) -> HttpResponse:
        poll = self.organised_poll(request, poll_id)  # type: ignore[attr-defined]
        form = PreviewForm(request.GET, poll=poll)
        if not form.is_valid():
            message = _("Choose what to preview: %(errors)s") % {"errors": form.errors.as_text()}
            return HttpResponse(message, status=400)
        participant = preview_participant(poll, form.cleaned_data)
        if form.cleaned_data["step"] == POSITIONS_AFTER_T2:
            return over_time.positions_page(request, participant)
        try:
            return pages.render_step(
                request,
                poll=poll,
                participant=participant,
                step=participant.step,
                page=participant.page,
                preview=True,
            )
        except (IndexError, KeyError):
            return HttpResponse(_("This step has no such page."), status=404)
