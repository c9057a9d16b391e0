"""Serializers of the research API: what researchers read, and the shapes the schema documents."""

from typing import Any

from rest_framework import serializers

from results import tables
from results.models import ExportJob, ImportJob, Webhook, WebhookDelivery
from results.webhooks import coarse_log, delivered
from surveys.models import Answer, Participant, Poll


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class PollSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(
        view_name="api:poll-detail", lookup_field="slug", read_only=True
    )
    title = serializers.DictField(child=serializers.CharField(), read_only=True)
    question = serializers.DictField(child=serializers.CharField(), read_only=True)
    languages = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Poll
        fields = ("slug", "url", "title", "question", "status", "languages", "created_at")


class VariableSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    type = serializers.ChoiceField(["integer", "number", "string", "boolean", "datetime"])
    measure = serializers.ChoiceField(["nominal", "ordinal", "scale"])
    item = serializers.CharField()
    wave = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField()
    value_labels = serializers.DictField(child=serializers.CharField())
    missing = serializers.ListField(child=serializers.JSONField())
    answer_key = serializers.CharField()
    wording = serializers.DictField(child=serializers.CharField())
    notes = serializers.CharField()


class PollDetailSerializer(PollSerializer):
    definition = serializers.JSONField(
        read_only=True,
        help_text="The whole poll definition in the file format of `loadpoll`: sections, "
        "positions, options and questions with wording in every language, scales, labels, "
        "waves and knowledge answer keys.",
    )
    variables = VariableSerializer(
        many=True, read_only=True, help_text="The codebook of the wide export."
    )
    links = serializers.DictField(child=serializers.URLField(), read_only=True)

    class Meta(PollSerializer.Meta):
        fields = (*PollSerializer.Meta.fields, "definition", "variables", "links")


# The API's names for two model fields of results.tables.PARTICIPANT_FIELDS.
API_NAMES = {"public_id": "participant", "consented_at": "started_at"}


class ParticipantSerializer(serializers.ModelSerializer):
    participant = serializers.CharField(source="public_id", help_text="Pseudonymous id.")
    position_order = serializers.ListField(child=serializers.CharField())
    option_order = serializers.ListField(child=serializers.CharField())
    step_times = serializers.DictField(child=serializers.FloatField(), help_text="Seconds.")
    position_seconds = serializers.DictField(child=serializers.FloatField())
    flags = serializers.ListField(child=serializers.CharField())
    started_at = serializers.DateTimeField(source="consented_at", allow_null=True)
    completed = serializers.SerializerMethodField()

    class Meta:
        model = Participant
        fields = (
            *(API_NAMES.get(name, name) for name in tables.PARTICIPANT_FIELDS),
            "completed",
        )

    def get_completed(self, participant: Participant) -> bool:
        return participant.completed_at is not None


class WholeNumberJSONField(serializers.JSONField):
    """An answer's value with whole numbers whole: an age of 21, not 21.0 (the questionnaire
    stores number answers as floats)."""

    def to_representation(self, value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return super().to_representation(value)


class AnswerSerializer(serializers.ModelSerializer):
    participant = serializers.CharField(source="participant.public_id")
    item = serializers.CharField(source="question.key")
    value = WholeNumberJSONField(
        allow_null=True,
        help_text="Canonical answer: integer rating, choice key, list of keys (multiple; "
        "ranking best first), number or text; null for a missing answer.",
    )
    missing = serializers.ChoiceField(
        choices=[("", ""), *Answer.Missing.choices],
        help_text="Why the answer has no value: dont_know, refused, skipped or not_asked; "
        "empty when it has one.",
    )
    dont_know = serializers.SerializerMethodField(help_text="The answer is don't know.")

    class Meta:
        model = Answer
        fields = (
            "participant",
            "item",
            "wave",
            "value",
            "number",
            "missing",
            "dont_know",
            "answered_at",
        )

    def get_dont_know(self, answer: Answer) -> bool:
        return answer.missing == Answer.Missing.DONT_KNOW


class SnapshotSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    computed_at = serializers.DateTimeField()
    data_as_of = serializers.DateTimeField(allow_null=True)
    n_participants = serializers.IntegerField()
    n_treatment = serializers.IntegerField()
    n_control = serializers.IntegerField()
    fingerprint = serializers.CharField()
    code_version = serializers.CharField()
    settings = serializers.JSONField()
    meta = serializers.JSONField()
    tables = serializers.DictField(child=serializers.URLField())


TEXT_COLUMNS = {
    "item",
    "arm",
    "subgroup",
    "value_a",
    "value_b",
    "population_t1",
    "population_t2",
    "pseudonym",
    "family",
    "test",
}


def column_field(name: str, description: str) -> serializers.Field:
    if name in TEXT_COLUMNS:
        return serializers.CharField(allow_null=True, help_text=description)
    if name == "weighted":
        return serializers.BooleanField(help_text=description)
    if name == "subgroup_value":
        return serializers.JSONField(allow_null=True, help_text=description)
    return serializers.FloatField(allow_null=True, help_text=description)


def row_serializer(table: str) -> type[serializers.Serializer]:
    fields = {name: column_field(name, text) for name, text in tables.TABLES[table].items()}
    return type(f"{table.title()}Row", (serializers.Serializer,), fields)


ROW_SERIALIZERS = {name: row_serializer(name) for name in tables.TABLES}


def table_serializer(table: str) -> type[serializers.Serializer]:
    row: Any = (
        ROW_SERIALIZERS[table](many=True)
        if table in ROW_SERIALIZERS
        else serializers.ListField(child=serializers.DictField())
    )
    if table == "options":
        row = serializers.JSONField(help_text="Sub-tables by name (lists of rows or objects).")
    fields = {
        "table": serializers.CharField(),
        "snapshot_id": serializers.IntegerField(),
        "computed_at": serializers.DateTimeField(),
        "columns": serializers.ListField(child=serializers.CharField()),
        "rows": row,
    }
    return type(f"{table.title().replace('_', '')}Table", (serializers.Serializer,), fields)


class RecomputeSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    status_url = serializers.URLField()


class RecomputeStatusSerializer(serializers.Serializer):
    state = serializers.CharField()
    progress = serializers.FloatField(allow_null=True)
    message = serializers.CharField(allow_null=True, allow_blank=True)
    snapshot_id = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_null=True, allow_blank=True)
    results_url = serializers.URLField(allow_null=True)


class ExportJobSerializer(serializers.ModelSerializer):
    status_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = (
            "id",
            "format",
            "state",
            "progress",
            "message",
            "size",
            "created_at",
            "finished_at",
            "expires_at",
            "status_url",
            "download_url",
        )

    def get_status_url(self, job: ExportJob) -> str:
        return self.context["links"].status(job)

    def get_download_url(self, job: ExportJob) -> str | None:
        return self.context["links"].download(job)


class ImportErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="Line of the file; the header is row 1.")
    column = serializers.CharField()
    message = serializers.CharField()


class ImportFailedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = ImportErrorSerializer(many=True)


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A wide CSV in the layout of `export/?format=csv-wide`.")


class ImportResultSerializer(serializers.Serializer):
    """What an import stored (or, dry run, would store). Jobs finished before a field existed
    lack it, hence not required."""

    participants = serializers.IntegerField()
    complete = serializers.IntegerField(
        required=False, help_text="Participants with a completed_at."
    )
    incomplete = serializers.IntegerField(
        required=False,
        help_text="Participants with an empty completed_at: left out of the results.",
    )
    answers = serializers.IntegerField()
    replaced = serializers.IntegerField(
        required=False,
        help_text="Participants of the poll with the same ids, replaced (replace=true).",
    )
    dry_run = serializers.BooleanField(
        required=False, help_text="Checked only: nothing was stored."
    )
    completion_given = serializers.BooleanField(
        required=False,
        help_text="False when the file had no completed_at column: every row counts as "
        "complete, stamped with the time of the import.",
    )


class ImportJobSerializer(serializers.ModelSerializer):
    """An import in the background: its progress, then the summary or the errors."""

    progress = serializers.FloatField(help_text="0 to 1.")
    message = serializers.CharField(help_text="For instance 'row 12,000 of about 100,000'.")
    size = serializers.IntegerField(help_text="Bytes uploaded.")
    result = ImportResultSerializer(
        allow_null=True, help_text="Once done: what was imported (as a 201 of a small upload)."
    )
    errors = ImportErrorSerializer(
        many=True,
        help_text="Once failed: errors by row and column, as a 400 of a small upload (at most "
        "200; the row 0 errors concern the whole file). Nothing was imported.",
    )
    errors_not_listed = serializers.IntegerField(
        help_text="Problems found beyond the errors listed."
    )
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = (
            "id",
            "state",
            "progress",
            "message",
            "size",
            "created_at",
            "finished_at",
            "result",
            "errors",
            "errors_not_listed",
            "status_url",
        )
        read_only_fields = fields

    def get_status_url(self, job: ImportJob) -> str:
        return self.context["links"].url("import-job", pk=job.pk)


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(Webhook.Event.choices),
        required=False,
        help_text="Events to receive; empty or absent means all.",
    )

    class Meta:
        model = Webhook
        fields = ("id", "url", "events", "active", "created_at")
        read_only_fields = ("id", "active", "created_at")


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="HMAC-SHA256 key of the X-Deliberate-Signature header; shown only now.",
    )

    class Meta(WebhookSerializer.Meta):
        fields = (*WebhookSerializer.Meta.fields, "secret")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    """Failures in categories only, and no timings: the log must not map a network."""

    attempts_log = serializers.SerializerMethodField(
        help_text="[{at, status, error}]: status only when delivered (2xx), otherwise a "
        "category in error (unreachable, blocked, rejected (HTTP 4xx/5xx), redirect)."
    )
    response_status = serializers.SerializerMethodField(
        help_text="The receiver's 2xx status once delivered; null otherwise."
    )
    payload = serializers.JSONField()

    def get_attempts_log(self, delivery: WebhookDelivery) -> list[dict[str, Any]]:
        return coarse_log(delivery.attempts_log)

    def get_response_status(self, delivery: WebhookDelivery) -> int | None:
        status = delivery.response_status
        return status if delivered(status) else None

    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "event",
            "state",
            "attempts",
            "response_status",
            "created_at",
            "delivered_at",
            "payload",
            "attempts_log",
        )
