"""Absolute URLs between the API's endpoints, for responses that point onwards."""

from typing import Any

from django.urls import reverse
from rest_framework.request import Request

from results.exports.package import download_signature
from results.models import ExportJob
from surveys.models import Poll


class Links:
    """The endpoints of one poll, as absolute URLs of the request's host."""

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
