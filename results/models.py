"""Versioned, reproducible result snapshots: the only thing the API and admin read results from."""

from typing import ClassVar

from django.db import models

from surveys.models import Poll


class ResultSnapshotQuerySet(models.QuerySet["ResultSnapshot"]):
    def latest_for(self, poll: Poll) -> "ResultSnapshot | None":
        return self.filter(poll=poll).order_by("-computed_at", "-id").first()


class ResultSnapshot(models.Model):
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="snapshots")
    computed_at = models.DateTimeField(auto_now_add=True)
    data_as_of = models.DateTimeField(
        null=True, help_text="The newest answer included: the reconciler compares against it."
    )
    n_participants = models.PositiveIntegerField(default=0)
    n_treatment = models.PositiveIntegerField(default=0)
    n_control = models.PositiveIntegerField(default=0)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the input data.")
    code_version = models.CharField(max_length=40)
    settings = models.JSONField(default=dict, help_text="The analysis settings used.")
    payload = models.JSONField()

    objects = ResultSnapshotQuerySet.as_manager()

    class Meta:
        indexes: ClassVar = [models.Index(fields=["poll", "-computed_at"])]

    def __str__(self) -> str:
        return f"{self.poll} @ {self.computed_at:%Y-%m-%d %H:%M}"
