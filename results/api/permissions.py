"""What every research endpoint shares: authentication, throttling, the poll grant (404 without
it, checked before any parameter is read; 403 where microdata is needed and the grant gives
aggregates only), JSON errors, and the links between endpoints."""

from functools import cached_property
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from results.access import has_microdata, may_import, polls_for
from results.api.authentication import BearerTokenAuthentication
from results.api.serializers import ErrorSerializer
from results.api.throttling import TokenRateThrottle
from results.exports.package import download_signature
from results.models import ExportJob
from surveys.models import Poll


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


UNAUTHORISED = error("No token, or an unknown, revoked or expired token.")
NOT_FOUND = error("No such poll, or no grant for it (the same answer either way).")
THROTTLED = error("Too many requests with this token; retry after the Retry-After header.")
BAD_REQUEST = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Invalid input: each offending parameter or field with its messages.",
)
COMMON_ERRORS = {401: UNAUTHORISED, 404: NOT_FOUND, 429: THROTTLED}
AGGREGATES_ONLY = error("Your grant for this poll gives its aggregate results only.")
MICRODATA_ERRORS = {**COMMON_ERRORS, 403: AGGREGATES_ONLY}


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
    """Resolves ``self.poll`` from the URL; a poll the user holds no grant for does not exist.

    The grant is checked as soon as the request is authenticated, before the handler reads a
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
        return get_object_or_404(polls_for(self.request.user), slug=self.kwargs["slug"])

    def require_import_grant(self) -> None:
        if not may_import(self.request.user, self.poll):
            raise exceptions.PermissionDenied("Your grant for this poll does not allow imports.")


class Links:
    """Absolute URLs of a poll's endpoints, for responses that point onwards."""

    def __init__(self, request: Request, poll: Poll) -> None:
        self.request = request
        self.poll = poll

    def url(self, name: str, **kwargs: Any) -> str:
        path = reverse(f"api:{name}", kwargs={"slug": self.poll.slug, **kwargs})
        return self.request.build_absolute_uri(path)

    def status(self, job: ExportJob) -> str:
        return self.url("export-job", pk=job.pk)

    def download(self, job: ExportJob) -> str | None:
        if job.state != ExportJob.State.DONE or not job.file:
            return None
        return f"{self.url('export-download', pk=job.pk)}?signature={download_signature(job)}"


def as_id(value: str) -> int:
    """A primary key from the URL; anything else is simply not found (a JSON 404)."""
    if not value.isdigit() or len(value) > 18:
        raise Http404
    return int(value)


def granted(queryset: QuerySet, user: Any) -> QuerySet:
    return queryset.filter(poll__in=polls_for(user))
