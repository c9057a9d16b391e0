"""The organisers' side of live rooms: session slots per poll, the rooms with a live watch
(transcript refreshing, flags, silent members; hide a message, remove a member, all logged by
``surveys.live.actions``), the plenary page of the panel's questions and the published answers.

Every page is limited to the polls the user organises (``OrganiserScopedAdmin``), and a room of
another poll is a 404, as elsewhere in the admin.
"""

from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from surveys.admin.base import OrganiserScopedAdmin, PollFilter
from surveys.live import actions
from surveys.live.admin import plenary, watch
from surveys.live.models import ExpertAnswer, PanelQuestion, Room, RoomMember, SessionSlot
from surveys.models import Poll

WATCH_REFRESH_SECONDS = 5


class SlotForm(forms.ModelForm):
    class Meta:
        model = SessionSlot
        fields = (
            "poll",
            "starts_at",
            "duration_minutes",
            "capacity",
            "turn_seconds",
            "item_seconds",
            "question_seconds",
            "balance_opinion",
        )

    def clean_starts_at(self) -> Any:
        starts = self.cleaned_data["starts_at"]
        if self.instance.pk is None and starts is not None and starts <= timezone.now():
            raise forms.ValidationError(
                _(
                    "A new session must start in the future "
                    "(it starts %(when)s UTC, now is %(now)s)."
                ),
                params={
                    "when": f"{starts:%Y-%m-%d %H:%M}",
                    "now": f"{timezone.now():%Y-%m-%d %H:%M}",
                },
            )
        return starts


@admin.register(SessionSlot)
class SessionSlotAdmin(OrganiserScopedAdmin):
    form = SlotForm
    # One labelled browser date-and-time field (UTC), as on the poll's schedule.
    formfield_overrides: ClassVar = {
        models.DateTimeField: {
            "form_class": forms.DateTimeField,
            "widget": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
            "help_text": _("UTC."),
        }
    }
    list_display = ("poll", "starts_at", "duration_minutes", "capacity", "booked", "rooms_n")
    list_filter = (("poll", PollFilter),)
    date_hierarchy = "starts_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                booked_n=Count(
                    "bookings", filter=Q(bookings__cancelled_at__isnull=True), distinct=True
                ),
                rooms_count=Count("rooms", distinct=True),
            )
        )

    @admin.display(description=_("booked"), ordering="booked_n")
    def booked(self, obj: SessionSlot) -> int:
        return obj.booked_n  # type: ignore[attr-defined]

    @admin.display(description=_("rooms"), ordering="rooms_count")
    def rooms_n(self, obj: SessionSlot) -> int:
        return obj.rooms_count  # type: ignore[attr-defined]


@admin.register(Room)
class RoomAdmin(OrganiserScopedAdmin):
    """Rooms are formed by the participants' arrivals, never added or edited by hand: the list
    links to each room's watch page, and the plenary page per poll."""

    list_display = ("__str__", "poll", "slot", "language", "group", "state", "members_n", "watch")
    list_filter = ("state", ("poll", PollFilter))
    change_list_template = "admin/live/room_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .select_related("poll", "slot")
            .annotate(members_count=Count("members", filter=Q(members__removed_at__isnull=True)))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("members"), ordering="members_count")
    def members_n(self, obj: Room) -> int:
        return obj.members_count  # type: ignore[attr-defined]

    @admin.display(description=_("live watch"))
    def watch(self, obj: Room) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:live_room_watch", args=[obj.pk]),
            gettext("Watch room %(room)s") % {"room": obj.pk},
        )

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        polls = Poll.objects.organised_by(request.user).filter(rooms__isnull=False).distinct()
        return super().changelist_view(
            request, {**(extra_context or {}), "plenary_polls": polls.order_by("slug")}
        )

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:room_id>/watch/", wrap(self.watch_view), name="live_room_watch"),
            path("plenary/<int:poll_id>/", wrap(self.plenary_view), name="live_room_plenary"),
            *super().get_urls(),
        ]

    def _room(self, request: HttpRequest, room_id: int) -> Room:
        # 404, not 403: a staff user not on the poll must not learn that the room exists.
        polls = Poll.objects.organised_by(request.user).values("pk")
        return get_object_or_404(
            Room.objects.select_related("poll", "slot", "turn_member"), pk=room_id, poll__in=polls
        )

    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        context = {**self.admin_site.each_context(request), "opts": self.model._meta}
        return {**context, "title": title, **extra}

    def watch_view(self, request: HttpRequest, room_id: int) -> HttpResponse:
        room = self._room(request, room_id)
        here = reverse("admin:live_room_watch", args=[room.pk])
        if request.method == "POST":
            done = self._moderate(request, room)
            if done:
                messages.success(request, done)
            return HttpResponseRedirect(here)
        context = self._context(
            request,
            gettext("Room %(room)s (group %(group)s, %(language)s)")
            % {"room": room.pk, "group": room.group, "language": room.language},
            room=room,
            members=watch.members(room),
            transcript=watch.transcript(room),
            log=watch.log(room),
            refresh_url=f"{here}?fragment=1",
            refresh_seconds=WATCH_REFRESH_SECONDS,
            now=timezone.now(),
        )
        template = "watch_body.html" if request.GET.get("fragment") else "watch.html"
        return TemplateResponse(request, f"admin/live/{template}", context)

    def _moderate(self, request: HttpRequest, room: Room) -> str:
        """Hide or show a message, or remove a member, as the posted form asks; what was done."""
        action = request.POST.get("action")
        try:
            target = int(request.POST.get("target", ""))
        except ValueError:
            return ""
        if action in ("hide", "unhide"):
            message = get_object_or_404(room.messages, pk=target)
            if action == "hide":
                actions.hide_message(message_id=message.pk, user=request.user)
                return gettext("Message %(seq)s is hidden for the room.") % {"seq": message.seq}
            actions.unhide_message(message_id=message.pk, user=request.user)
            return gettext("Message %(seq)s is shown again.") % {"seq": message.seq}
        if action == "remove":
            member = get_object_or_404(RoomMember, room=room, pk=target)
            actions.remove_member(member_id=member.pk, user=request.user)
            return gettext("%(member)s is removed from the room.") % {"member": member.pseudonym}
        return ""

    def plenary_view(self, request: HttpRequest, poll_id: int) -> HttpResponse:
        poll = get_object_or_404(Poll.objects.organised_by(request.user), pk=poll_id)
        form = AnswerForm(request.POST or None, poll=poll)
        if request.method == "POST" and form.is_valid():
            answer = plenary.publish_answer(
                poll=poll,
                user=request.user,
                title=form.cleaned_data["title"],
                text=form.cleaned_data["text"],
                link=form.cleaned_data["link"],
                language=form.cleaned_data["language"],
                question_ids=[int(q) for q in form.cleaned_data["questions"]],
            )
            messages.success(request, gettext("Published: %(title)s") % {"title": answer.title})
            return HttpResponseRedirect(reverse("admin:live_room_plenary", args=[poll.pk]))
        context = self._context(
            request,
            gettext("Plenary: questions for the panel (%(poll)s)") % {"poll": poll.slug},
            poll=poll,
            groups=plenary.plenary_groups(poll),
            form=form,
            answers=ExpertAnswer.objects.filter(poll=poll).order_by("-pk"),
        )
        return TemplateResponse(request, "admin/live/plenary.html", context)


class AnswerForm(forms.Form):
    """The panel's answer to a group of questions: a text, a link to a recording, or both."""

    questions = forms.MultipleChoiceField(
        required=True, widget=forms.CheckboxSelectMultiple, label=_("Questions answered")
    )
    title = forms.CharField(max_length=200, label=_("Title"))
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), required=False, label=_("Text")
    )
    link = forms.URLField(required=False, label=_("Link to a recording"), assume_scheme="https")
    language = forms.ChoiceField(required=False, label=_("Shown to participants reading"))

    def __init__(self, *args: Any, poll: Poll, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ids = [q.id for q in plenary.top_questions(poll)]
        self.fields["questions"].choices = [(str(i), str(i)) for i in ids]
        self.fields["language"].choices = [("", gettext("every language"))] + [
            (code, code) for code in poll.languages
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("text") and not data.get("link"):
            raise forms.ValidationError(
                gettext(
                    "Give the answer as a text, a link to a recording, or both (both are empty)."
                )
            )
        return data


@admin.register(ExpertAnswer)
class ExpertAnswerAdmin(OrganiserScopedAdmin):
    list_display = ("title", "poll", "language", "published_at", "questions_n")
    list_filter = (("poll", PollFilter),)
    filter_horizontal = ("questions",)
    readonly_fields = ("created_by", "created_at")
    actions = ("publish", "withdraw")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(questions_count=Count("questions"))

    @admin.display(description=_("questions"), ordering="questions_count")
    def questions_n(self, obj: ExpertAnswer) -> int:
        return obj.questions_count  # type: ignore[attr-defined]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "questions":
            kwargs["queryset"] = PanelQuestion.objects.filter(
                room__poll__in=Poll.objects.organised_by(request.user).values("pk")
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ExpertAnswer, form: Any, change: bool) -> None:
        if obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Publish to participants"))
    def publish(self, request: HttpRequest, queryset: QuerySet) -> None:
        n = queryset.filter(published_at__isnull=True).update(published_at=timezone.now())
        self.message_user(
            request,
            ngettext(
                "%(n)s answer is published to participants.",
                "%(n)s answers are published to participants.",
                n,
            )
            % {"n": n},
            messages.SUCCESS,
        )

    @admin.action(description=_("Withdraw from participants"))
    def withdraw(self, request: HttpRequest, queryset: QuerySet) -> None:
        n = queryset.filter(published_at__isnull=False).update(published_at=None)
        self.message_user(
            request,
            ngettext(
                "%(n)s answer is withdrawn from participants.",
                "%(n)s answers are withdrawn from participants.",
                n,
            )
            % {"n": n},
            messages.SUCCESS,
        )
