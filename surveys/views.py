"""Participant pages. Views are thin adapters: every write goes through surveys.actions."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from surveys.models import Poll


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "surveys/home.html", {"polls": Poll.objects.open()})


def poll_landing(request: HttpRequest, slug: str) -> HttpResponse:
    poll = get_object_or_404(Poll.objects.open(), slug=slug)
    return render(request, "surveys/landing.html", {"poll": poll})
