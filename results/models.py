"""Versioned, reproducible result snapshots (the only thing the API and admin read results from),
and the researchers' access: API tokens, per-poll grants, webhooks, export jobs and import jobs."""

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from surveys.models import Poll


class ResultSnapshotQuerySet(models.QuerySet["ResultSnapshot"]):
    def newest_first(self) -> "ResultSnapshotQuerySet":
        # computed_at first, then id: two snapshots saved within one clock tick stay ordered.
        return self.order_by("-computed_at", "-id")

    def latest_for(self, poll: Poll | int) -> "ResultSnapshot | None":
        """The newest snapshot, released or not: for readers who may see the microdata."""
        return self.filter(poll=poll).newest_first().first()

    def released_for(self, poll: Poll | int) -> "ResultSnapshot | None":
        """The newest released snapshot: what readers of aggregates only may see (the release
        rule is ``results.compute.recompute.release_decision``)."""
        return self.filter(poll=poll, released_at__isnull=False).newest_first().first()

    def for_reader(self, poll: Poll, *, microdata: bool) -> "ResultSnapshot | None":
        """The snapshot a researcher reads: the latest with microdata access (they can read the
        answers anyway, ``results.access.has_microdata``), otherwise the latest released one."""
        return self.latest_for(poll) if microdata else self.released_for(poll)


class ResultSnapshot(models.Model):
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="snapshots")
    computed_at = models.DateTimeField(auto_now_add=True)
    data_as_of = models.DateTimeField(
        null=True,
        help_text="When the data this snapshot includes last changed: the newest answer or "
        "completion of a participant who completed the poll. The reconciler compares against "
        "the same measure (results.compute.loading.results_data_changed_at).",
    )
    checked_at = models.DateTimeField(
        null=True,
        help_text="When a recompute last found this snapshot current (new or unchanged data).",
    )
    n_participants = models.PositiveIntegerField(default=0)
    n_treatment = models.PositiveIntegerField(default=0)
    n_control = models.PositiveIntegerField(default=0)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the input data.")
    code_version = models.CharField(max_length=40)
    settings = models.JSONField(default=dict, help_text="The analysis settings used.")
    payload = models.JSONField()
    released_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,  # set by the release rule only, never by hand in the admin
        help_text="When the snapshot was released to readers of aggregates only (empty: held "
        "back, because it differs from the previous release by fewer than k participants).",
    )
    contributions = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="Participant id -> keyed digest of the data they contribute, to count who "
        "changed between releases (empty for snapshots from before releases were recorded).",
    )

    objects = ResultSnapshotQuerySet.as_manager()

    class Meta:
        indexes: ClassVar = [models.Index(fields=["poll", "-computed_at"])]

    def __str__(self) -> str:
        return f"{self.poll} @ {self.computed_at:%Y-%m-%d %H:%M}"


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> "ApiTokenQuerySet":
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())

    def owned_by(self, user: Any) -> "ApiTokenQuerySet":
        return self.filter(user=user)


class ApiToken(models.Model):
    """A researcher's bearer token: random, shown once, stored as a SHA-256 hash.

    A token acts for its user and reaches exactly the polls the user holds a Grant for.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'laptop'.")
    prefix = models.CharField(
        max_length=12, help_text="The token's first characters, to recognise it in lists."
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class GrantQuerySet(models.QuerySet["Grant"]):
    def for_user(self, user: Any) -> "GrantQuerySet":
        return self.filter(user=user)

    def microdata(self) -> "GrantQuerySet":
        return self.filter(level=Grant.Level.MICRODATA)


class Grant(models.Model):
    """A researcher's access to one poll: its aggregate results only, or also its microdata.

    Importing responses is a write on microdata, so ``can_import`` needs the microdata level
    (a database constraint says so); it stays a separate flag because reading a poll's answers
    does not mean being trusted to add to them.
    """

    class Level(models.TextChoices):
        AGGREGATES = "aggregates", "aggregate results only"
        MICRODATA = "microdata", "microdata (answers, participants, exports)"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="poll_grants"
    )
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="grants")
    level = models.CharField(
        max_length=10,
        choices=Level.choices,
        default=Level.AGGREGATES,
        help_text="Aggregates: the poll and its results tables. Microdata: also the answers, "
        "participants and exports.",
    )
    can_import = models.BooleanField(
        default=False,
        help_text="May also import responses into the poll (a write; needs microdata).",
    )
    granted_at = models.DateTimeField(auto_now_add=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = GrantQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["user", "poll"], name="grant_once_per_poll"),
            models.CheckConstraint(
                condition=Q(can_import=False) | Q(level="microdata"),
                name="grant_import_needs_microdata",
                violation_error_message="Importing needs the microdata level.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.poll}"


class Webhook(models.Model):
    class Event(models.TextChoices):
        SNAPSHOT_READY = "snapshot.ready", "new results snapshot"
        EXPORT_READY = "export.ready", "export ready"

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=64, editable=False, help_text="HMAC-SHA256 key.")
    events = models.JSONField(default=list, help_text="Event names; empty means all events.")
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["id"]
        constraints: ClassVar = [
            # Deliveries are signed with the secret: an empty or short one signs with no key.
            models.CheckConstraint(
                condition=Q(secret__regex=r"^[0-9a-f]{64}$"),
                name="webhook_secret_is_a_key",
                violation_error_message="A webhook's secret is a random 256-bit key.",
            )
        ]

    def __str__(self) -> str:
        return self.url

    def wants(self, event: str) -> bool:
        return self.active and (not self.events or event in self.events)


class WebhookDelivery(models.Model):
    """One event sent to one webhook, with every attempt logged in ``attempts_log``."""

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed (gave up)"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40)
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    attempts_log = models.JSONField(default=list, help_text="[{at, status, error, ms}]")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a pending delivery is next due (the sweeper sends those due).",
    )

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes: ClassVar = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="webhook_delivery_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook} ({self.state})"


class JobState(models.TextChoices):
    """Where a background job (an export or an import) stands."""

    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class ExportJobQuerySet(models.QuerySet["ExportJob"]):
    def expired(self) -> "ExportJobQuerySet":
        return self.filter(expires_at__lte=timezone.now())


class ExportJob(models.Model):
    """A large export built by a Celery task into a file, downloadable until it expires."""

    State = JobState

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="export_jobs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    api_token = models.ForeignKey(
        ApiToken,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="The token that asked for it: revoking the token ends the download link.",
    )
    format = models.CharField(max_length=12)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    message = models.CharField(max_length=200, blank=True)
    file = models.FileField(upload_to="exports/", blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = ExportJobQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.poll} {self.format} ({self.state})"


class ImportJob(models.Model):
    """An API upload over the inline limit, stored under MEDIA_ROOT/imports/ and imported by a
    Celery task. Its own model rather than a kind of ExportJob: an import has no format, download
    link or expiry, and ends with a summary or a list of row errors that exports never have."""

    State = JobState

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="import_jobs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    message = models.CharField(max_length=200, blank=True)
    upload = models.FileField(
        upload_to="imports/", blank=True, help_text="The stored file; deleted when the job ends."
    )
    size = models.PositiveBigIntegerField(help_text="Bytes uploaded.")
    result = models.JSONField(
        null=True, blank=True, help_text="participants, answers and renamed ids, once done."
    )
    errors = models.JSONField(
        default=list, blank=True, help_text="Row and column errors of a failed import."
    )
    errors_not_listed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.poll} import ({self.state})"
