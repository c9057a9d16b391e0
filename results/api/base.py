"""The base of every research endpoint: authentication, throttling, JSON errors, and the poll
scope (404 without access to the poll, checked before any parameter is read; 403 where
microdata is needed and the grant gives aggregates only)."""

from functools import cached_property
from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from results.access import has_microdata, may_import
from results.api.authentication import BearerTokenAuthentication
from results.api.schema import AGGREGATES_ONLY
from results.api.throttling import TokenRateThrottle
from surveys.models import Poll


class ResearchAPIView(APIView):
    authentication_classes = (BearerTokenAuthentication, SessionAuthentication)
    permission_classes = (IsAuthenticated,)
    throttle_classes = (TokenRateThrottle,)
    # No OPTIONS metadata: it is undocumented in the schema and would reach the CSV renderer.
    metadata_class = None

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        # Errors are JSON whatever the format asked for (a CSV of an error helps nobody).
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class PollScoped:
    """Resolves ``self.poll`` from the URL; a poll the user may not read does not exist.

    The access is checked as soon as the request is authenticated, before the handler reads a
    single parameter: otherwise a 400 for a missing parameter would tell an outsider that the
    poll exists. Views of microdata (answers, participants, exports, import) set
    ``needs_microdata``.
    """

    request: Request
    kwargs: dict[str, Any]
    needs_microdata = False

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        poll = self.poll
        if self.needs_microdata and not has_microdata(request.user, poll):
            raise exceptions.PermissionDenied(AGGREGATES_ONLY.description)

    @cached_property
    def poll(self) -> Poll:
        return get_object_or_404(
            Poll.objects.readable_by(self.request.user), slug=self.kwargs["slug"]
        )

    def require_import_grant(self) -> None:
        if not may_import(self.request.user, self.poll):
            raise exceptions.PermissionDenied("Your grant for this poll does not allow imports.")


def as_id(value: str) -> int:
    """A primary key from the URL; anything else is simply not found (a JSON 404)."""
    if not value.isdigit() or len(value) > 18:
        raise Http404
    return int(value)
