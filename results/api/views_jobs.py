"""Endpoints that start work: recompute, exports (streamed or built by the worker), imports,
and webhooks."""

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from results import access, tasks
from results.api.base import PollScoped, ResearchAPIView, as_id
from results.api.links import Links
from results.api.schema import BAD_REQUEST, COMMON_ERRORS, MICRODATA_ERRORS, error
from results.api.serializers import (
    ExportJobSerializer,
    ImportFailedSerializer,
    ImportJobSerializer,
    ImportResultSerializer,
    ImportUploadSerializer,
    RecomputeSerializer,
    RecomputeStatusSerializer,
    WebhookCreatedSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
)
from results.compute.progress import job_status
from results.exports import package, template, waves
from results.exports.import_jobs import (
    inline_limit,
    show_live_progress,
    start_import_job,
    too_large,
)
from results.exports.imports import ImportFailed, import_responses
from results.models import ExportJob, ImportJob, ResultSnapshot, Webhook, WebhookDelivery

JOB_ID = re.compile(r"[0-9a-f]{32}")
EXPORT_MEDIA_TYPES = sorted({f.media_type.split(";")[0] for f in package.FORMATS.values()})
# What a multipart body carries besides the file (boundaries, part headers), at most.
MULTIPART_OVERHEAD = 64 * 1024
NO_IMPORT = error("Your grant does not allow imports (or gives aggregates only).")


class RecomputeView(PollScoped, ResearchAPIView):
    """Ask for the poll's results to be computed again; poll the status URL for progress.

    Microdata only: results are recomputed after every completion anyway, and a recompute's
    progress tells how many participants the newest, not yet released, snapshot holds."""

    needs_microdata = True

    @extend_schema(request=None, responses={202: RecomputeSerializer, **COMMON_ERRORS})
    def post(self, request: Request, slug: str) -> Response:
        job_id = tasks.request_recompute(self.poll.pk)
        status_url = Links(request, self.poll).url("recompute-status", job_id=job_id)
        return Response(
            {"job_id": job_id, "status_url": status_url},
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": status_url},
        )


class RecomputeStatusView(PollScoped, ResearchAPIView):
    """Progress of a recompute, and the snapshot it produced once done."""

    needs_microdata = True

    @extend_schema(responses={200: RecomputeStatusSerializer, **COMMON_ERRORS})
    def get(self, request: Request, slug: str, job_id: str) -> Response:
        poll = self.poll  # the grant first: without it, even a job's progress is not found
        if not JOB_ID.fullmatch(job_id):
            raise Http404
        report = dict(job_status(job_id))
        if report.get("poll_id") != poll.pk:
            raise Http404  # another poll's job (a running one has no snapshot to check yet)
        snapshot_id = report.get("snapshot_id")
        if snapshot_id and not ResultSnapshot.objects.filter(pk=snapshot_id, poll=poll).exists():
            raise Http404
        report["results_url"] = (
            Links(request, self.poll).url("poll-results") if snapshot_id else None
        )
        return Response(RecomputeStatusSerializer(report).data)


class FormatNamesTheExport(DefaultContentNegotiation):
    """Here ``?format=`` names an export format, not a renderer: answer errors in JSON."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


class ExportParameters(serializers.Serializer):
    format = serializers.ChoiceField(
        list(package.FORMATS),
        help_text="csv-long, csv-wide, parquet (long, typed), sav (SPSS, wide), dta (Stata, "
        "wide), package (zip: data, codebook, datapackage.json, results, README), or one row "
        "per participant and wave (ID, Group, Time, items under their own names, as the "
        "Stanford lab's DeliberativePolling package reads): csv-waves, sav-waves, dta-waves "
        "(400 for a poll without paired items).",
    )
    background = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Build the file in the background even if the poll is small. Large polls "
        "always are: the answer is then 202 with a status URL.",
    )


def attachment(poll_slug: str, fmt: str) -> dict[str, str]:
    name = package.filename_for(poll_slug, fmt)
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def file_response(stream: Any, *, poll_slug: str, fmt: package.Format) -> FileResponse:
    # FileResponse writes its own Content-Disposition (inline, named after the file object,
    # a temporary name) over any header given: it must be told attachment and the real name.
    return FileResponse(
        stream,
        content_type=fmt.media_type,
        as_attachment=True,
        filename=package.filename_for(poll_slug, fmt.name),
    )


class ExportView(PollScoped, ResearchAPIView):
    """The poll's data as a file. Pseudonymous ids only: no tokens, contacts or addresses."""

    content_negotiation_class = FormatNamesTheExport
    renderer_classes = (JSONRenderer,)
    needs_microdata = True

    @extend_schema(
        parameters=[ExportParameters],
        responses={
            **{
                (200, media): OpenApiResponse(OpenApiTypes.BINARY, description="The file.")
                for media in EXPORT_MEDIA_TYPES
            },
            202: OpenApiResponse(ExportJobSerializer, description="Built in the background."),
            400: BAD_REQUEST,
            **MICRODATA_ERRORS,
        },
    )
    def get(self, request: Request, slug: str) -> HttpResponseBase:
        params = ExportParameters(data=request.query_params)
        params.is_valid(raise_exception=True)
        fmt = package.FORMATS[params.validated_data["format"]]
        poll = self.poll
        if fmt.name in waves.WAVES_FORMATS:
            try:
                waves.check_paired(poll, fmt.name)
            except waves.NoPairedItems as problem:
                raise ValidationError({"format": [str(problem)]}) from None
        if params.validated_data["background"] or poll.answers.count() > package.stream_limit():
            job = package.start_export_job(
                poll=poll,
                user=request.user,
                fmt=fmt.name,
                api_token=request.auth,
                enqueue=tasks.build_export.delay,
            )
            links = Links(request, poll)
            data = ExportJobSerializer(job, context={"links": links}).data
            return Response(data, status=202, headers={"Location": links.status(job)})
        headers = attachment(poll.slug, fmt.name)
        if fmt.streams:
            # Read-only from here on: nothing may write to the database while streaming.
            chunks = package.STREAMS[fmt.name](poll)
            return StreamingHttpResponse(chunks, content_type=fmt.media_type, headers=headers)
        handle, name = tempfile.mkstemp(suffix=f".{fmt.extension}")
        os.close(handle)
        path = Path(name)
        try:
            package.write_export(poll, fmt.name, path)
            stream = path.open("rb")
        finally:
            path.unlink()  # the open handle keeps the data until the response is sent
        return file_response(stream, poll_slug=poll.slug, fmt=fmt)


class ExportJobView(PollScoped, ResearchAPIView):
    """A background export's progress, and its download link (valid until ``expires_at``)."""

    needs_microdata = True

    @extend_schema(responses={200: ExportJobSerializer, **MICRODATA_ERRORS})
    def get(self, request: Request, slug: str, pk: str) -> Response:
        job = get_object_or_404(ExportJob, pk=as_id(pk), poll=self.poll)
        return Response(ExportJobSerializer(job, context={"links": Links(request, job.poll)}).data)


class ExportDownloadView(ResearchAPIView):
    """The file of a finished export, by the signed link its status gives (no token needed)."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    content_negotiation_class = FormatNamesTheExport

    @extend_schema(
        auth=[],
        parameters=[OpenApiParameter("signature", str, required=True)],
        responses={
            **{(200, media): OpenApiTypes.BINARY for media in EXPORT_MEDIA_TYPES},
            404: error(
                "Unknown export, wrong or expired link, the file was purged, or the grant or "
                "token that asked for it was revoked."
            ),
            429: COMMON_ERRORS[429],
        },
    )
    def get(self, request: Request, slug: str, pk: str) -> HttpResponseBase:
        job = ExportJob.objects.select_related("poll").filter(pk=as_id(pk), poll__slug=slug).first()
        signature = request.query_params.get("signature", "")
        if (
            job is None
            or job.state != ExportJob.State.DONE
            or not job.file
            or not package.check_download_signature(job, signature)
            or not package.link_still_granted(job)
        ):
            raise Http404
        fmt = package.FORMATS[job.format]
        return file_response(job.file.open("rb"), poll_slug=job.poll.slug, fmt=fmt)


class ImportOptions(serializers.Serializer):
    """Form fields of an import besides the file."""

    dry_run = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Check everything (cells, ids, the database's own constraints) and store "
        "nothing: the answer is the summary the import would give.",
    )
    replace = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Replace the poll's imported participants that have the same ids as rows of "
        "the file (with their answers), in the same transaction as the import; online "
        "participants are never replaced.",
    )


class ImportRequest(ImportUploadSerializer, ImportOptions):
    """The multipart body of an import: the file and its options."""


class TemplateParameters(serializers.Serializer):
    template = serializers.ChoiceField(
        ["xlsx", "csv"],
        help_text="xlsx: a workbook with the header row, the codebook (what every column "
        "accepts: allowed values, choice codes, missing-value codes) and how to import; csv: "
        "the header row alone.",
    )


def import_errors(failure: ImportFailed) -> Response:
    errors = [{"row": e.row, "column": e.column, "message": e.message} for e in failure.errors]
    return Response({"detail": failure.summary(), "errors": errors}, status=400)


def upload_too_large(size: int) -> Response:
    message = too_large(size)
    errors = [{"row": 0, "column": "", "message": message}]
    return Response({"detail": message, "errors": errors}, status=413)


class ImportView(PollScoped, ResearchAPIView):
    """Import a panel dataset (wide CSV, as exported). Any bad cell: 400 and nothing stored.

    Files up to the inline limit (20 MB) are imported in the request: 201 with the summary
    (200 for a dry run). Larger files, up to ``IMPORT_MAX_BYTES`` (1 GiB), are imported in the
    background: 202 with the import job, whose status URL reports progress and then the summary
    or the errors. GET ``?template=xlsx`` gives the template: the header row and the codebook."""

    parser_classes = (MultiPartParser,)
    needs_microdata = True

    @extend_schema(
        parameters=[TemplateParameters],
        responses={
            (200, template.XLSX_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.BINARY, description="The workbook."
            ),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="The header."),
            400: BAD_REQUEST,
            403: NO_IMPORT,
            **COMMON_ERRORS,
        },
    )
    def get(self, request: Request, slug: str) -> HttpResponseBase:
        self.require_import_grant()
        params = TemplateParameters(data=request.query_params)
        params.is_valid(raise_exception=True)
        if params.validated_data["template"] == "csv":
            content, media, extension = template.header_csv(self.poll), "text/csv", "csv"
        else:
            content, media = template.workbook(self.poll), template.XLSX_MEDIA_TYPE
            extension = "xlsx"
        name = f"{self.poll.slug}-import-template.{extension}"
        return HttpResponse(
            content,
            content_type=media,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @extend_schema(
        request={"multipart/form-data": ImportRequest},
        responses={
            200: OpenApiResponse(ImportResultSerializer, description="A dry run's summary."),
            201: ImportResultSerializer,
            202: OpenApiResponse(
                ImportJobSerializer, description="A large file, imported in the background."
            ),
            400: OpenApiResponse(ImportFailedSerializer, description="Errors by row and column."),
            403: NO_IMPORT,
            413: OpenApiResponse(
                ImportFailedSerializer, description="The file is over the upload limit."
            ),
            **COMMON_ERRORS,
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        self.require_import_grant()
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > settings.IMPORT_MAX_BYTES + MULTIPART_OVERHEAD:
            # Refused before the body is read, so a huge upload never reaches the disk.
            return upload_too_large(declared)
        upload = ImportUploadSerializer(data=request.data)
        if not upload.is_valid():
            raise ValidationError(
                {"detail": "Upload the CSV as the multipart field 'file'.", "errors": []}
            )
        file = upload.validated_data["file"]
        if file.size > settings.IMPORT_MAX_BYTES:
            return upload_too_large(file.size)
        choices = ImportOptions(data=request.data)
        choices.is_valid(raise_exception=True)
        flags = choices.validated_data
        if file.size > inline_limit():
            job = start_import_job(
                poll=self.poll,
                user=request.user,
                upload=file,
                enqueue=tasks.run_import.delay,
                replace=flags["replace"],
                dry_run=flags["dry_run"],
            )
            job.refresh_from_db()  # run already if tasks are eager (the embedded default)
            links = Links(request, self.poll)
            data = ImportJobSerializer(show_live_progress(job), context={"links": links}).data
            return Response(data, status=202, headers={"Location": data["status_url"]})
        try:
            result = import_responses(
                poll=self.poll,
                stream=file,
                recompute=tasks.schedule_recompute,
                max_bytes=inline_limit(),
                replace=flags["replace"],
                dry_run=flags["dry_run"],
            )
        except ImportFailed as failure:
            return import_errors(failure)
        return Response(ImportResultSerializer(result).data, status=200 if result.dry_run else 201)


class ImportJobView(PollScoped, ResearchAPIView):
    """A background import: progress, then the summary (done) or the row errors (failed).
    Readable only by the user who started it, while their grant allows imports."""

    needs_microdata = True

    @extend_schema(responses={200: ImportJobSerializer, 403: NO_IMPORT, **COMMON_ERRORS})
    def get(self, request: Request, slug: str, pk: str) -> Response:
        self.require_import_grant()
        job = get_object_or_404(ImportJob, pk=as_id(pk), poll=self.poll, user=request.user)
        links = Links(request, self.poll)
        return Response(ImportJobSerializer(show_live_progress(job), context={"links": links}).data)


def own_webhook(request: Request, poll: Any, pk: str) -> Webhook:
    """One of the caller's own webhooks on the poll; another user's is "not found" (their URLs
    may carry secrets, and only their owner or the poll's organisers manage them)."""
    return get_object_or_404(access.webhooks_of(request.user, poll), pk=as_id(pk))


class WebhookListView(PollScoped, ResearchAPIView):
    """Your webhooks on the poll; POST registers one: an https URL on port 443 whose host
    resolves to public addresses only (private, loopback, link-local and similar targets are
    refused). Any grant may register one: ``snapshot.ready`` carries the snapshot's metadata
    only, and ``export.ready`` is sent only for your own exports (which need microdata).
    Other users' webhooks on the poll are neither listed nor reachable here; the poll's
    organisers manage all of them in the admin."""

    @extend_schema(responses={200: WebhookSerializer(many=True), **COMMON_ERRORS})
    def get(self, request: Request, slug: str) -> Response:
        webhooks = access.webhooks_of(request.user, self.poll)
        return Response(WebhookSerializer(webhooks, many=True).data)

    @extend_schema(
        request=WebhookSerializer,
        responses={201: WebhookCreatedSerializer, 400: BAD_REQUEST, **COMMON_ERRORS},
    )
    def post(self, request: Request, slug: str) -> Response:
        incoming = WebhookSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            webhook = access.register_webhook(
                poll=self.poll,
                url=incoming.validated_data["url"],
                events=incoming.validated_data.get("events", []),
                user=request.user,
            )
        except DjangoValidationError as problem:
            raise ValidationError({"url": problem.messages}) from None
        return Response(WebhookCreatedSerializer(webhook).data, status=201)


class WebhookDetailView(PollScoped, ResearchAPIView):
    @extend_schema(responses={200: WebhookSerializer, **COMMON_ERRORS})
    def get(self, request: Request, slug: str, pk: str) -> Response:
        return Response(WebhookSerializer(self.webhook(pk)).data)

    @extend_schema(responses={204: None, **COMMON_ERRORS})
    def delete(self, request: Request, slug: str, pk: str) -> Response:
        self.webhook(pk).delete()
        return Response(status=204)

    def webhook(self, pk: str) -> Webhook:
        return own_webhook(self.request, self.poll, pk)


class DeliveryCursor(CursorPagination):
    ordering = "-id"
    page_size = 100


class WebhookDeliveryListView(PollScoped, ResearchAPIView, generics.ListAPIView):
    """The delivery log of one of your webhooks: every event, its attempts and their outcome
    (a category for failures, no exact status code and no timings)."""

    serializer_class = WebhookDeliverySerializer
    pagination_class = DeliveryCursor

    def get_queryset(self) -> Any:
        webhook = own_webhook(self.request, self.poll, self.kwargs["pk"])
        return WebhookDelivery.objects.filter(webhook=webhook)

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True), **COMMON_ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
