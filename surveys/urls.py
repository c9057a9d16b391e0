"""Participant-facing URLs."""

from django.urls import path

from surveys.journey import over_time, views
from surveys.live import room_api
from surveys.live import views as live_views

app_name = "surveys"
urlpatterns = [
    path("", views.home, name="home"),
    path("p/<slug:slug>/", views.entry, name="entry"),
    path("p/<slug:slug>/t1/<int:page>/", views.step_page, {"step": "t1"}, name="t1"),
    path(
        "p/<slug:slug>/briefing/<int:page>/", views.step_page, {"step": "briefing"}, name="briefing"
    ),
    path(
        "p/<slug:slug>/deliberation/",
        views.step_page,
        {"step": "deliberation"},
        name="deliberation",
    ),
    path("p/<slug:slug>/next/", views.step_page, {"step": "next"}, name="next"),
    path("p/<slug:slug>/live/", live_views.live_step, name="live"),
    path("p/<slug:slug>/live/session.ics", live_views.slot_calendar, name="live-calendar"),
    path("p/<slug:slug>/live/events/", room_api.events, name="live-events"),
    path("p/<slug:slug>/live/send/", room_api.send, name="live-send"),
    path("p/<slug:slug>/wait/", views.step_page, {"step": "wait"}, name="wait"),
    path("p/<slug:slug>/return.ics", views.calendar_file, name="calendar"),
    path("p/<slug:slug>/positions/", views.positions, name="positions"),
    path("p/<slug:slug>/reminder/", over_time.reminder, name="reminder"),
    path("p/<slug:slug>/withdraw/", over_time.withdraw, name="withdraw"),
    path("p/<slug:slug>/withdrawn/", over_time.withdrawn, name="withdrawn"),
    path("p/<slug:slug>/t2/<int:page>/", views.step_page, {"step": "t2"}, name="t2"),
    path("p/<slug:slug>/done/", views.step_page, {"step": "done"}, name="done"),
    path("p/<slug:slug>/reasons/<int:reason_id>/report/", views.report, name="report"),
    path("i/<str:token>/", views.invitation, name="invitation"),
    path("r/<str:token>/", views.return_link, name="return"),
]
