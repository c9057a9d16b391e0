"""Participant-facing URLs."""

from django.urls import path

from surveys import views

app_name = "surveys"
urlpatterns = [
    path("", views.home, name="home"),
    path("p/<slug:slug>/", views.poll_landing, name="landing"),
]
