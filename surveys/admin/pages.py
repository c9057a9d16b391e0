"""The poll's tool pages in the admin: checklist, lifecycle, invitations, monitor, moderation
links, definition import and export, clone. Thin views: every write is a function elsewhere."""

from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from surveys.admin.authoring import clone_poll, export_definition, import_definition
from surveys.admin.fields import CloneForm, DefinitionImportForm, InvitationsForm
from surveys.admin.lifecycle import DONE, TARGETS, TRANSITIONS, TransitionError, change_status
from surveys.admin.monitor import poll_monitor
from surveys.definition.files import DefinitionError
from surveys.definition.readiness import check_poll
from surveys.journey.invitations import (
    InvitationError,
    create_invitations,
    invitation_counts,
    invitations_csv,
    read_invitees,
)
from surveys.models import Poll, Reason
from surveys.roles import can_organise, can_read_results

# Where each readiness check's "fix" goes on the poll's page (inline group ids and fieldsets).
FIX_ANCHORS = {
    "positions": "#positions-group",
    "options": "#options-group",
    "questions": "#questions-group",
    "languages": "#questions-group",
    "design": "#design",
    "schedule": "#schedule",
    "poll": "",
}
MONITOR_REFRESH_SECONDS = 10


def invitation_path(token: str) -> str:
    """The participant's personal link (the journey's URL when it is installed)."""
    try:
        return reverse("surveys:invitation", kwargs={"token": token})
    except NoReverseMatch:
        return f"/i/{token}/"


def posted(request: HttpRequest) -> tuple[Any, Any]:
    """Form data and files: bound on POST even when empty, so an empty post shows errors."""
    if request.method == "POST":
        return request.POST, request.FILES
    return None, None


def admin_url(name: str, *args: Any) -> str:
    return reverse(f"admin:surveys_poll_{name}", args=args)


class PollToolsMixin:
    """Custom pages hung under a poll's admin URL; all 404 for staff not organising the poll."""

    admin_site: Any
    model: type[Poll]

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        tools = [
            path("import/", wrap(self.import_view), name="surveys_poll_import"),
            path(
                "<int:poll_id>/checklist/", wrap(self.checklist_view), name="surveys_poll_checklist"
            ),
            path(
                "<int:poll_id>/status/<str:transition>/",
                wrap(self.lifecycle_view),
                name="surveys_poll_lifecycle",
            ),
            path(
                "<int:poll_id>/invitations/",
                wrap(self.invitations_view),
                name="surveys_poll_invitations",
            ),
            path("<int:poll_id>/monitor/", wrap(self.monitor_view), name="surveys_poll_monitor"),
            path("<int:poll_id>/export/", wrap(self.export_view), name="surveys_poll_export"),
            path("<int:poll_id>/clone/", wrap(self.clone_view), name="surveys_poll_clone"),
        ]
        return tools + super().get_urls()  # type: ignore[misc]

    # -- shared ---------------------------------------------------------------------------------

    def organised_poll(self, request: HttpRequest, poll_id: int) -> Poll:
        # 404, not 403: a staff user not on the poll must not learn that it exists.
        return get_object_or_404(Poll.objects.organised_by(request.user), pk=poll_id)

    def tool_context(self, request: HttpRequest, poll: Poll, title: str, tab: str) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "poll": poll,
            "original": poll,
            "title": title,
            "subtitle": poll.slug,
            "tab": tab,
            "tabs": poll_tabs(request, poll),
        }

    def render_tool(self, request: HttpRequest, template: str, context: dict) -> TemplateResponse:
        return TemplateResponse(request, f"admin/surveys/poll/{template}", context)

    # -- checklist and lifecycle ----------------------------------------------------------------

    def checklist_view(self, request: HttpRequest, poll_id: int) -> TemplateResponse:
        poll = self.organised_poll(request, poll_id)
        readiness = check_poll(poll)
        change = reverse("admin:surveys_poll_change", args=[quote(poll.pk)])
        rows = [
            {"check": check, "fix_url": change + FIX_ANCHORS.get(check.fix, "")}
            for check in readiness.checks
        ]
        context = self.tool_context(request, poll, _("Readiness check"), "checklist")
        context.update(readiness=readiness, rows=rows, transitions=transitions_for(poll))
        return self.render_tool(request, "checklist.html", context)

    def lifecycle_view(self, request: HttpRequest, poll_id: int, transition: str) -> HttpResponse:
        poll = self.organised_poll(request, poll_id)
        if transition not in TARGETS:
            raise Http404("No such transition.")
        change = reverse("admin:surveys_poll_change", args=[quote(poll.pk)])
        if request.method == "POST":
            try:
                poll = change_status(poll_id=poll.pk, transition=transition, by=request.user)
            except TransitionError as error:
                messages.error(request, str(error))
                return HttpResponseRedirect(admin_url("checklist", poll.pk))
            self.log_change(request, poll, f"Status changed: {transition} ({poll.status}).")  # type: ignore[attr-defined]
            messages.success(
                request,
                _("The poll '%(slug)s' is now %(status)s.")
                % {"slug": poll.slug, "status": poll.get_status_display()},
            )
            return HttpResponseRedirect(change)
        readiness = check_poll(poll) if TARGETS[transition] == Poll.Status.OPEN else None
        titles = {"open": _("Open the poll"), "close": _("Close the poll")}
        title = titles.get(transition, _("Reopen the poll"))
        context = self.tool_context(request, poll, title, "status")
        context.update(
            transition=transition,
            done=DONE[transition],
            allowed=TRANSITIONS.get((poll.status, TARGETS[transition])) == transition,
            readiness=readiness,
            participants=poll.participants.count(),
            completed=poll.participants.completed().count(),
        )
        return self.render_tool(request, "lifecycle.html", context)

    # -- invitations ----------------------------------------------------------------------------

    def invitations_view(self, request: HttpRequest, poll_id: int) -> HttpResponse:
        poll = self.organised_poll(request, poll_id)
        form = InvitationsForm(*posted(request))
        if request.method == "POST" and form.is_valid():
            try:
                upload = form.cleaned_data.get("labels")
                invitees = read_invitees(upload.read()) if upload else None
                invitations = create_invitations(
                    poll=poll, count=form.cleaned_data.get("count"), invitees=invitees
                )
            except InvitationError as error:
                form.add_error(None, str(error))
            else:
                self.log_change(request, poll, f"Created {len(invitations)} invitations.")  # type: ignore[attr-defined]
                body = invitations_csv(
                    invitations, lambda token: request.build_absolute_uri(invitation_path(token))
                )
                stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
                response = HttpResponse(body, content_type="text/csv; charset=utf-8")
                response["Content-Disposition"] = (
                    f'attachment; filename="invitations-{poll.slug}-{stamp}.csv"'
                )
                # The only copy of the links: no cache may keep it.
                response["Cache-Control"] = "no-store"
                return response
        context = self.tool_context(request, poll, _("Invitations"), "invitations")
        context.update(
            form=form,
            counts=invitation_counts(poll),
            list_url=reverse("admin:surveys_participant_changelist")
            + f"?poll__id__exact={poll.pk}&invited=yes",
        )
        return self.render_tool(request, "invitations.html", context)

    # -- monitor --------------------------------------------------------------------------------

    def monitor_view(self, request: HttpRequest, poll_id: int) -> TemplateResponse:
        poll = self.organised_poll(request, poll_id)
        context = self.tool_context(request, poll, _("Live monitor"), "monitor")
        context.update(
            monitor=poll_monitor(poll),
            now=timezone.now(),
            refresh_seconds=MONITOR_REFRESH_SECONDS,
        )
        template = "monitor_body.html" if request.GET.get("fragment") else "monitor.html"
        return self.render_tool(request, template, context)

    # -- definition files and clone -------------------------------------------------------------

    def export_view(self, request: HttpRequest, poll_id: int) -> HttpResponse:
        poll = self.organised_poll(request, poll_id)
        response = HttpResponse(export_definition(poll), content_type="application/yaml")
        response["Content-Disposition"] = f'attachment; filename="{poll.slug}.yaml"'
        return response

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        form = DefinitionImportForm(*posted(request))
        problems: list[str] = []
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                text = upload.read().decode("utf-8")
                poll, created = import_definition(text=text, source=upload.name, by=request.user)
            except UnicodeDecodeError:
                problems = [_("The file is not UTF-8 text.")]
            except DefinitionError as error:
                problems = [f"{problem.path}: {problem.message}" for problem in error.problems]
            else:
                if created:
                    self.log_addition(request, poll, "Imported from a definition file.")  # type: ignore[attr-defined]
                else:
                    self.log_change(request, poll, "Updated from a definition file.")  # type: ignore[attr-defined]
                done = (
                    _("The poll '%(slug)s' was created from %(file)s.")
                    if created
                    else _("The poll '%(slug)s' was updated from %(file)s.")
                )
                messages.success(request, done % {"slug": poll.slug, "file": upload.name})
                return HttpResponseRedirect(
                    reverse("admin:surveys_poll_change", args=[quote(poll.pk)])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Import a poll definition"),
            "form": form,
            "problems": problems,
        }
        return self.render_tool(request, "import.html", context)

    def clone_view(self, request: HttpRequest, poll_id: int) -> HttpResponse:
        poll = self.organised_poll(request, poll_id)
        if not self.has_add_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        form = CloneForm(*posted(request)[:1], initial={"slug": f"{poll.slug}-copy"})
        if request.method == "POST" and form.is_valid():
            copy = clone_poll(poll=poll, slug=form.cleaned_data["slug"], by=request.user)
            self.log_addition(request, copy, f"Cloned from {poll.slug}.")  # type: ignore[attr-defined]
            messages.success(
                request,
                _("'%(copy)s' is a draft copy of '%(poll)s'.")
                % {"copy": copy.slug, "poll": poll.slug},
            )
            return HttpResponseRedirect(reverse("admin:surveys_poll_change", args=[copy.pk]))
        context = self.tool_context(request, poll, _("Clone the poll"), "clone")
        context.update(form=form, answers=poll.answers.count())
        return self.render_tool(request, "clone.html", context)


def transitions_for(poll: Poll) -> list[str]:
    return [name for (source, _target), name in TRANSITIONS.items() if source == poll.status]


def poll_tabs(request: HttpRequest, poll: Poll) -> list[tuple[str, str, str]]:
    """(key, label, url) of the poll's pages the user may open, as the tab bar shows them."""
    if not can_organise(request.user, poll):
        return [("results", _("Results"), admin_url("results", poll.pk))]
    tabs = [
        ("edit", _("Edit"), reverse("admin:surveys_poll_change", args=[poll.pk])),
        ("checklist", _("Readiness"), admin_url("checklist", poll.pk)),
        ("invitations", _("Invitations"), admin_url("invitations", poll.pk)),
        ("monitor", _("Monitor"), admin_url("monitor", poll.pk)),
        (
            "moderation",
            _("Moderation"),
            reverse("admin:surveys_reason_changelist") + f"?poll__id__exact={poll.pk}",
        ),
    ]
    if can_read_results(request.user, poll):
        try:
            tabs.append(("results", _("Results"), admin_url("results", poll.pk)))
            tabs.append(("preview", _("Preview"), admin_url("preview", poll.pk)))
        except NoReverseMatch:
            pass
    return tabs


def reported_count(poll: Poll) -> int:
    return poll.reasons.filter(state=Reason.State.REPORTED).count()
