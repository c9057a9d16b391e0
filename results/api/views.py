"""Read endpoints: polls with their codebook, participants, answers and results tables."""

from dataclasses import asdict
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from results import tables
from results.access import has_microdata
from results.api.base import PollScoped, ResearchAPIView
from results.api.links import Links
from results.api.renderers import TableCSVRenderer
from results.api.schema import BAD_REQUEST, COMMON_ERRORS, MICRODATA_ERRORS
from results.api.serializers import (
    AnswerSerializer,
    ParticipantSerializer,
    PollDetailSerializer,
    PollSerializer,
    SnapshotSerializer,
    table_serializer,
)
from results.exports import codebook, transcripts
from results.models import ResultSnapshot
from surveys.definition.files import dump_poll
from surveys.models import Answer, Participant, Poll


class PollCursor(CursorPagination):
    ordering = "-created_at"
    page_size = 50


class RowCursor(CursorPagination):
    ordering = "id"
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000


class PollListView(ResearchAPIView, generics.ListAPIView):
    """The polls you hold a grant for or organise (all polls for superusers)."""

    serializer_class = PollSerializer
    pagination_class = PollCursor

    def get_queryset(self) -> QuerySet[Poll]:
        return Poll.objects.readable_by(self.request.user)

    @extend_schema(responses={200: PollSerializer(many=True), **COMMON_ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


POLL_LINKS = (
    "participants",
    "answers",
    "results",
    "transcripts",
    "export",
    "recompute",
    "webhooks",
)


class PollDetailView(PollScoped, ResearchAPIView):
    """A poll with its whole definition and the codebook of its exports."""

    @extend_schema(responses={200: PollDetailSerializer, **COMMON_ERRORS})
    def get(self, request: Request, slug: str) -> Response:
        links = Links(request, self.poll)
        context = {"request": request}
        # The definition, codebook and links are not the poll's own attributes: each is drawn
        # by the detail serializer's field, beside the poll's fields, without setting it on
        # the model instance.
        extra = {
            "definition": dump_poll(self.poll),
            "variables": [asdict(v) for v in codebook.wide_variables(self.poll)],
            "links": {name: links.url(f"poll-{name}") for name in POLL_LINKS},
        }
        fields = PollDetailSerializer(context=context).fields
        data = dict(PollSerializer(self.poll, context=context).data)
        data.update({name: fields[name].to_representation(value) for name, value in extra.items()})
        return Response(data)


class Filters(serializers.Serializer):
    """Query parameters, validated: bad values give a 400 that names the parameter."""

    @classmethod
    def parse(cls, request: Request) -> dict[str, Any]:
        filters = cls(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return {k: v for k, v in filters.validated_data.items() if v not in (None, "")}


class MicrodataListView(PollScoped, ResearchAPIView, generics.ListAPIView):
    """A list of one poll's rows (participants, answers): microdata access only, paged by a
    cursor so that a long export neither skips nor repeats rows while answers arrive."""

    pagination_class = RowCursor
    needs_microdata = True


class ParticipantFilters(Filters):
    arm = serializers.ChoiceField(Participant.Arm.choices, required=False)
    group = serializers.IntegerField(required=False, min_value=0)
    completed = serializers.BooleanField(required=False, allow_null=True, default=None)
    imported = serializers.BooleanField(required=False, allow_null=True, default=None)


class ParticipantListView(MicrodataListView):
    """Participants by pseudonymous id, with design and paradata; cursor-paginated."""

    serializer_class = ParticipantSerializer

    def get_queryset(self) -> QuerySet[Participant]:
        filters = ParticipantFilters.parse(self.request)
        queryset = Participant.objects.filter(poll=self.poll)
        if "completed" in filters:
            queryset = queryset.filter(completed_at__isnull=not filters.pop("completed"))
        return queryset.filter(**filters)

    @extend_schema(
        parameters=[ParticipantFilters],
        responses={200: ParticipantSerializer(many=True), 400: BAD_REQUEST, **MICRODATA_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class AnswerFilters(Filters):
    item = serializers.CharField(required=False, max_length=40, help_text="Question key.")
    wave = serializers.ChoiceField([1, 2], required=False)
    participant = serializers.CharField(required=False, max_length=32)
    since = serializers.DateTimeField(
        required=False, help_text="Only answers saved at or after this time (ISO 8601)."
    )


class AnswerListView(MicrodataListView):
    """Answers in long form (participant x item x wave); cursor-paginated."""

    serializer_class = AnswerSerializer

    def get_queryset(self) -> QuerySet[Answer]:
        filters = AnswerFilters.parse(self.request)
        lookups = {
            "item": "question__key",
            "wave": "wave",
            "participant": "participant__public_id",
            "since": "answered_at__gte",
        }
        return (
            Answer.objects.filter(poll=self.poll)
            .filter(**{lookups[name]: value for name, value in filters.items()})
            .select_related("participant", "question")
            .only(
                "id",
                "wave",
                "value",
                "number",
                "missing",
                "answered_at",
                "participant__public_id",
                "question__key",
            )
        )

    @extend_schema(
        parameters=[AnswerFilters],
        responses={200: AnswerSerializer(many=True), 400: BAD_REQUEST, **MICRODATA_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


def latest_snapshot(poll: Poll, user: Any) -> ResultSnapshot:
    """The snapshot this researcher reads: the latest with microdata access, else the latest
    released one (two consecutive snapshots would tell one new participant's answers)."""
    snapshot = ResultSnapshot.objects.for_reader(poll, microdata=has_microdata(user, poll))
    if snapshot is None:
        raise NotFound(
            "This poll has no released results yet: results are released in steps of at least "
            f"{poll.min_subgroup_size} participants; POST to recompute/ to compute them."
        )
    return snapshot


# The flat tables, then the two made of sub-tables.
RESULT_TABLES = (*tables.TABLES, "options", "small_groups")


class ResultsView(PollScoped, ResearchAPIView):
    """The latest results snapshot you may read (with aggregates-only access, the latest
    released one): when, on how many participants, with which settings."""

    @extend_schema(responses={200: SnapshotSerializer, **COMMON_ERRORS})
    def get(self, request: Request, slug: str) -> Response:
        snapshot = latest_snapshot(self.poll, request.user)
        links = Links(request, self.poll)
        data = {
            "id": snapshot.pk,
            "computed_at": snapshot.computed_at,
            "data_as_of": snapshot.data_as_of,
            "n_participants": snapshot.n_participants,
            "n_treatment": snapshot.n_treatment,
            "n_control": snapshot.n_control,
            "fingerprint": snapshot.fingerprint,
            "code_version": snapshot.code_version,
            "settings": snapshot.settings,
            "meta": snapshot.payload.get("meta", {}),
            "tables": {
                name: links.url(f"results-{name.replace('_', '-')}") for name in RESULT_TABLES
            },
        }
        return Response(SnapshotSerializer(data).data)


def columns_of(rows: list[dict[str, Any]], table: str) -> list[str]:
    if table in tables.TABLES:
        return list(tables.TABLES[table])
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)


def table_parameters(table: str) -> list[OpenApiParameter]:
    parameters = [
        OpenApiParameter(
            "format",
            str,
            enum=["json", "csv"],
            description="json (default) or csv: the same columns either way.",
        )
    ]
    columns = tables.TABLES.get(table, {})
    for name in ("item", "arm", "subgroup"):
        if name in columns:
            parameters.append(OpenApiParameter(name, str, description=columns[name]))
    if table in ("options", "small_groups"):
        parameters.append(
            OpenApiParameter("table", str, description="A sub-table by name (needed for CSV).")
        )
    return parameters


class ResultTableView(PollScoped, ResearchAPIView):
    """One results table of the snapshot ResultsView shows, as JSON or CSV (``?format=csv``)."""

    renderer_classes = (JSONRenderer, TableCSVRenderer)
    table = ""

    def get(self, request: Request, slug: str) -> Response:
        snapshot = latest_snapshot(self.poll, request.user)
        content = snapshot.payload.get(self.table)
        if content is None:
            content = {} if self.table == "options" else []
        sub = request.query_params.get("table")
        if isinstance(content, dict) and sub:
            if not isinstance(content.get(sub), list):
                names = [k for k, v in content.items() if isinstance(v, list)]
                raise ValidationError({"table": [f"Choose one of: {', '.join(names)}."]})
            content = content[sub]
        if isinstance(content, dict) and request.accepted_renderer.format == "csv":
            names = [k for k, v in content.items() if isinstance(v, list)]
            raise ValidationError({"table": [f"CSV needs ?table= one of: {', '.join(names)}."]})
        rows: Any = content
        if isinstance(content, list):
            for name in ("item", "arm", "subgroup"):
                value = request.query_params.get(name)
                if value is not None:
                    rows = [row for row in rows if str(row.get(name, "")) == value]
            # jsonb keeps no key order: put the contract's column order back.
            columns = columns_of(rows, self.table)
            rows = [{column: row.get(column) for column in columns} for row in rows]
        return Response(
            {
                "table": self.table,
                "snapshot_id": snapshot.pk,
                "computed_at": snapshot.computed_at,
                "columns": columns_of(rows, self.table) if isinstance(rows, list) else [],
                "rows": rows,
            }
        )


def result_table_view(table: str) -> Any:
    def get(self: ResultTableView, request: Request, slug: str) -> Response:
        return ResultTableView.get(self, request, slug)

    get = extend_schema(
        operation_id=f"polls_results_{table}",
        summary=f"Results table: {table.replace('_', ' ')}",
        parameters=table_parameters(table),
        responses={
            (200, "application/json"): table_serializer(table),
            (200, "text/csv"): OpenApiTypes.STR,
            400: BAD_REQUEST,
            **COMMON_ERRORS,
        },
    )(get)
    # Tables of individual rows (pseudonymous members) are microdata, as answers are.
    microdata = table in tables.MICRODATA_TABLES
    attributes = {"table": table, "get": get, "needs_microdata": microdata}
    view = type(f"{table.title()}TableView", (ResultTableView,), attributes)
    return view.as_view()


class TranscriptRoomSerializer(serializers.Serializer):
    group = serializers.IntegerField(help_text="The room's small-group number.")
    language = serializers.CharField()
    state = serializers.CharField()
    opened_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    n_members = serializers.IntegerField()
    n_messages = serializers.IntegerField()
    transcript = serializers.URLField()


class TranscriptListView(PollScoped, ResearchAPIView):
    """The poll's live rooms, each with the link to its transcript (microdata access only)."""

    needs_microdata = True

    @extend_schema(responses={200: TranscriptRoomSerializer(many=True), **MICRODATA_ERRORS})
    def get(self, request: Request, slug: str) -> Response:
        links = Links(request, self.poll)
        rooms = [
            {**room, "transcript": links.url("poll-transcript", group=room["group"])}
            for room in transcripts.rooms_of(self.poll)
        ]
        return Response(TranscriptRoomSerializer(rooms, many=True).data)


class TranscriptView(PollScoped, ResearchAPIView):
    """One room's transcript under its pseudonyms, JSON or CSV (``?format=csv``); a hidden
    message keeps its row without its text."""

    needs_microdata = True
    renderer_classes = (JSONRenderer, TableCSVRenderer)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "csv"])],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/csv"): OpenApiTypes.STR,
            **MICRODATA_ERRORS,
        },
    )
    def get(self, request: Request, slug: str, group: int) -> Response:
        if group > 2**31 - 1 or not self.poll.rooms.filter(group=group).exists():
            raise NotFound(f"This poll has no room {group}.")
        return Response(
            {
                "room": group,
                "columns": list(transcripts.TRANSCRIPT_COLUMNS),
                "descriptions": transcripts.TRANSCRIPT_COLUMNS,
                "rows": list(transcripts.transcript_rows(self.poll, group=group)),
            }
        )
