"""API uploads over the inline limit: stored, imported by a Celery task with progress, and read
back through the job's status URL by the researcher who started it, and nobody else."""

import io
import re
import subprocess
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from kombu.exceptions import OperationalError

from results import tasks
from results.access import grant_access
from results.exports.import_jobs import run_import_job, start_import_job
from results.exports.imports import MAX_ERRORS
from results.models import ImportJob
from results.tasks import run_import
from surveys.definition.files import save_poll, validate
from surveys.models import Answer, Participant
from tests.results.api_fixtures import bearer, research_definition

pytestmark = pytest.mark.django_db
HEADER = "participant,arm,rate_exit_t1,comment_t2\n"
# What a successful import's summary holds besides its counts (a file without completed_at).
SUMMARY = {
    "incomplete": 0,
    "replaced": 0,
    "dry_run": False,
    "completion_given": False,
}
ALLOWED = "allowed: whole numbers 0 to 10; missing-value codes: -99 (don't know)"


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def target(db):
    data = validate(research_definition(slug="import-target"), "<test>")
    poll, _ = save_poll(data=data, source="<test>")
    return poll


@pytest.fixture
def importer(target, make_researcher):
    user, secret = make_researcher("importer", polls=(target,), can_import=True)
    return user, bearer(secret)


@pytest.fixture
def recomputes(monkeypatch) -> list[int]:
    """The recomputes a successful import asks for (recorded, not run)."""
    asked: list[int] = []
    monkeypatch.setattr("results.tasks.schedule_recompute", asked.append)
    return asked


@pytest.fixture
def small_inline_limit(settings, media) -> None:
    settings.IMPORT_INLINE_MAX_BYTES = 100


def rows(n: int, bad: dict[int, str] | None = None, comment: str = "") -> bytes:
    """n data rows; ``bad`` maps a row index to the rating written there instead of 3."""
    bad = bad or {}
    lines = [f"imp{k:05d},treatment,{bad.get(k, '3')},{comment}\n" for k in range(n)]
    return (HEADER + "".join(lines)).encode()


def upload(client, poll, content: bytes, **extra):
    return client.post(
        reverse("api:poll-import", kwargs={"slug": poll.slug}),
        {"file": io.BytesIO(content)},
        format="multipart",
        **extra,
    )


def stored_uploads(media: Path) -> list[Path]:
    return list((media / "imports").glob("*"))


def test_a_large_upload_is_imported_by_a_job_with_progress_and_summary(
    target,
    importer,
    media,
    small_inline_limit,
    recomputes,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    _, client = importer
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1000  # as a large upload: spooled to a temporary file
    monkeypatch.setattr("results.exports.imports.CHUNK_ROWS", 10)
    seen: list[dict] = []
    from results.exports import import_jobs

    report = import_jobs._report

    def report_and_read_status(job_id: int, fraction: float, message: str) -> None:
        report(job_id, fraction, message)
        # What a researcher polling the status URL sees while the worker is at this row.
        url = reverse("api:import-job", kwargs={"slug": target.slug, "pk": job_id})
        seen.append(client.get(url).json())

    monkeypatch.setattr(import_jobs, "_report", report_and_read_status)
    with django_capture_on_commit_callbacks(execute=True):
        # Long rows, so the file is several times the text reader's read-ahead (8 KiB).
        response = upload(client, target, rows(40, comment="c" * 2000))
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["state"] == "pending"
        assert response["Location"] == body["status_url"]
        (stored,) = stored_uploads(media)
        assert re.fullmatch(r"[0-9a-f]{32}\.csv", stored.name)
        assert not Participant.objects.filter(poll=target).exists()

    status = client.get(response["Location"])
    assert status.status_code == 200
    done = status.json()
    assert done["state"] == "done"
    assert done["progress"] == 1.0
    assert done["result"] == SUMMARY | {"participants": 40, "complete": 40, "answers": 80}
    assert done["errors"] == []
    assert done["message"] == "Imported 40 participants (40 complete, 0 incomplete) and 80 answers."
    running = [s for s in seen if s["state"] == "running" and s["message"].startswith("row ")]
    assert [s["message"].split(" of ")[0] for s in running] == [
        "row 10",
        "row 20",
        "row 30",
        "row 40",
    ]
    about = re.fullmatch(r"row 10 of about (\d+)", running[0]["message"])
    assert about and 20 <= int(about[1]) <= 40, running[0]["message"]
    assert 0 < running[0]["progress"] < running[-1]["progress"] <= 1
    assert Participant.objects.filter(poll=target, imported=True).count() == 40
    assert Answer.objects.filter(poll=target).count() == 80
    assert recomputes == [target.pk]
    assert stored_uploads(media) == []
    assert not ImportJob.objects.get().upload


def test_an_upload_up_to_the_inline_limit_is_still_imported_in_the_request(
    target, importer, settings, media, recomputes
):
    _, client = importer
    content = rows(3)
    settings.IMPORT_INLINE_MAX_BYTES = len(content)
    response = upload(client, target, content)
    assert response.status_code == 201
    assert response.json() == SUMMARY | {"participants": 3, "complete": 3, "answers": 3}
    assert not ImportJob.objects.exists()
    assert stored_uploads(media) == []


def test_a_bad_large_file_ends_failed_with_row_errors_and_stores_nothing(
    target,
    importer,
    media,
    small_inline_limit,
    recomputes,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    _, client = importer
    monkeypatch.setattr("results.exports.imports.CHUNK_ROWS", 10)
    # The bad cells come after chunks were written: those must be rolled back too.
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, target, rows(40, bad={25: "11", 33: "x"}))
    assert response.status_code == 202
    failed = client.get(response["Location"]).json()
    assert failed["state"] == "failed"
    assert failed["result"] is None
    assert failed["errors"] == [
        {
            "row": 27,
            "column": "rate_exit_t1",
            "message": f"11 is outside the scale 0..10; {ALLOWED}",
        },
        {"row": 35, "column": "rate_exit_t1", "message": f"'x' is not a whole number; {ALLOWED}"},
    ]
    assert failed["errors_not_listed"] == 0
    assert failed["message"] == "failed: 2 problems; nothing was imported."
    assert not Participant.objects.filter(poll=target).exists()
    assert not Answer.objects.filter(poll=target).exists()
    assert recomputes == []
    assert stored_uploads(media) == []


def test_errors_past_the_cap_are_counted_and_said_as_and_n_more(
    target, importer, media, small_inline_limit, django_capture_on_commit_callbacks
):
    _, client = importer
    bad = dict.fromkeys(range(MAX_ERRORS + 50), "11")
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, target, rows(MAX_ERRORS + 60, bad=bad))
    failed = client.get(response["Location"]).json()
    assert failed["state"] == "failed"
    assert len(failed["errors"]) == MAX_ERRORS
    assert failed["errors_not_listed"] == 50
    assert f"the first {MAX_ERRORS} are listed, and 50 more" in failed["message"]
    assert not Participant.objects.filter(poll=target).exists()


def test_an_upload_over_the_hard_cap_is_refused_naming_both_limits(
    target, importer, settings, media, small_inline_limit
):
    _, client = importer
    settings.IMPORT_MAX_BYTES = 200
    response = upload(client, target, rows(20))
    assert response.status_code == 413
    (error,) = response.json()["errors"]
    assert "API uploads are limited to 200 bytes" in error["message"]
    assert "files over 100 bytes are imported in the background" in error["message"]
    assert not ImportJob.objects.exists()
    assert not Participant.objects.filter(poll=target).exists()
    assert stored_uploads(media) == []


def test_a_declared_size_over_the_cap_is_refused_before_the_body_is_read(
    target, importer, settings, media
):
    _, client = importer
    settings.IMPORT_MAX_BYTES = 10_000
    response = upload(client, target, rows(2), CONTENT_LENGTH="1000000000000")
    assert response.status_code == 413
    assert "the upload has 1,000,000,000,000 bytes" in response.json()["detail"]
    assert not ImportJob.objects.exists()
    assert stored_uploads(media) == []


@pytest.fixture
def pending_job(target, importer, media) -> ImportJob:
    """A job whose task has not run (the test's transaction never commits)."""
    user, _ = importer
    upload = SimpleUploadedFile("big.csv", rows(5), content_type="text/csv")
    return start_import_job(poll=target, user=user, upload=upload, enqueue=run_import.delay)


def job_url(job: ImportJob) -> str:
    return reverse("api:import-job", kwargs={"slug": job.poll.slug, "pk": job.pk})


def test_only_the_researcher_who_started_the_job_can_read_it(
    target, importer, pending_job, make_researcher, poll
):
    _, client = importer
    assert client.get(job_url(pending_job)).status_code == 200
    cases = {
        "aggregates": ((target,), "aggregates", False, 403),
        "no import": ((target,), "microdata", False, 403),
        "another importer": ((target,), "microdata", True, 404),
        "another poll": ((poll,), "microdata", True, 404),
        "no grant": ((), "microdata", False, 404),
    }
    for name, (polls, level, can_import, expected) in cases.items():
        _, secret = make_researcher(
            name.replace(" ", "-"), polls=polls, level=level, can_import=can_import
        )
        response = bearer(secret).get(job_url(pending_job))
        assert response.status_code == expected, name
        assert "state" not in response.json(), name
    # The job of another poll is not found under this poll's URL either.
    other = reverse("api:import-job", kwargs={"slug": poll.slug, "pk": pending_job.pk})
    _, secret = make_researcher("both", polls=(poll, target), can_import=True)
    assert bearer(secret).get(other).status_code == 404


def test_the_starter_loses_the_job_with_the_import_permission(target, importer, pending_job):
    user, client = importer
    grant_access(user=user, poll=target, level="microdata", can_import=False)
    assert client.get(job_url(pending_job)).status_code == 403


def test_a_job_whose_grant_was_withdrawn_before_it_ran_imports_nothing(
    target, importer, pending_job, media
):
    user, _ = importer
    grant_access(user=user, poll=target, level="aggregates", can_import=False)
    job = run_import_job(job_id=pending_job.pk, recompute=tasks.schedule_recompute)
    assert job.state == "failed"
    assert "no longer allows imports" in job.message
    assert not Participant.objects.filter(poll=target).exists()
    assert stored_uploads(media) == []


def test_the_stored_file_is_private_and_deleted_when_the_job_ends(pending_job, media, recomputes):
    path = Path(pending_job.upload.path)
    assert path.parent == media / "imports" and path.read_bytes() == rows(5)
    job = run_import_job(job_id=pending_job.pk, recompute=tasks.schedule_recompute)
    assert job.state == "done"
    assert not path.exists() and not job.upload


def test_a_rerun_after_a_worker_crash_imports_once(target, pending_job, recomputes):
    # A killed worker leaves the job running with nothing stored (its transaction rolled back).
    ImportJob.objects.filter(pk=pending_job.pk).update(state="running")
    redelivered = {"job_id": pending_job.pk, "recompute": tasks.schedule_recompute}
    assert run_import_job(**redelivered).state == "done"
    assert run_import_job(**redelivered).state == "done"  # redelivered again
    assert Participant.objects.filter(poll=target).count() == 5


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_imports_a_large_upload(
    target, importer, settings, tmp_path, monkeypatch, request
):
    # The worker is another process: it must find the upload in the same MEDIA_ROOT.
    monkeypatch.setenv("MEDIA_ROOT", str(tmp_path))
    settings.MEDIA_ROOT = tmp_path
    settings.IMPORT_INLINE_MAX_BYTES = 100
    worker: subprocess.Popen = request.getfixturevalue("celery_worker_process")
    _, client = importer
    response = upload(client, target, rows(30))
    assert response.status_code == 202
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.get(response["Location"]).json()
        if status["state"] in ("done", "failed"):
            break
        time.sleep(0.3)
    assert worker.poll() is None, "the worker must still be running"
    assert status["state"] == "done", status
    assert status["result"]["participants"] == 30
    assert Participant.objects.filter(poll=target, imported=True).count() == 30
    assert stored_uploads(tmp_path) == []


def test_an_unexpected_error_fails_the_job_without_internals_and_deletes_the_file(
    target, pending_job, media, monkeypatch
):
    def broken(**kwargs):
        raise RuntimeError("connection to server at 10.0.0.5 failed")

    monkeypatch.setattr("results.exports.import_jobs.import_responses", broken)
    with pytest.raises(RuntimeError):
        run_import_job(job_id=pending_job.pk, recompute=tasks.schedule_recompute)
    job = ImportJob.objects.get()
    assert (job.state, job.message) == (
        "failed",
        "failed: an unexpected error; nothing was imported",
    )
    assert stored_uploads(media) == []


def test_an_unreachable_queue_fails_the_job_and_deletes_the_file(
    target, importer, media, small_inline_limit, monkeypatch, django_capture_on_commit_callbacks
):
    def unreachable(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis:6379")

    monkeypatch.setattr(run_import, "delay", unreachable)
    _, client = importer
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, target, rows(10))
    assert response.status_code == 202
    failed = client.get(response["Location"]).json()
    assert failed["state"] == "failed"
    assert "job queue is unreachable" in failed["message"]
    assert "redis" not in failed["message"]
    assert stored_uploads(media) == []


def test_a_job_whose_file_is_gone_fails_cleanly(target, pending_job, media):
    Path(pending_job.upload.path).unlink()
    job = run_import_job(job_id=pending_job.pk, recompute=tasks.schedule_recompute)
    assert (job.state, job.message) == (
        "failed",
        "failed: the uploaded file is gone; nothing was imported",
    )
    assert not job.upload


def test_the_admin_lists_import_jobs_of_the_organisers_polls_only_and_adds_none(
    django_user_model,
):
    from tests.factories import make_poll
    from tests.surveys.admin_fixtures import client_for, staff

    mine, also_mine = make_poll(slug="mine-poll"), make_poll(slug="also-mine")
    theirs = make_poll(slug="their-secret-poll")
    researcher = django_user_model.objects.create_user("ana")
    jobs = [
        ImportJob.objects.create(poll=poll, user=researcher, size=1)
        for poll in (mine, also_mine, theirs)
    ]
    client = client_for(staff("org", polls=(mine, also_mine)))
    page = client.get(reverse("admin:results_importjob_changelist")).content.decode()
    for job in jobs[:2]:
        assert f"/importjob/{job.pk}/change/" in page
        assert f"poll__id__exact={job.poll.pk}" in page  # the scoped poll filter
    assert f"/importjob/{jobs[2].pk}/" not in page and "their-secret-poll" not in page
    assert client.get(reverse("admin:results_importjob_add")).status_code == 403
    change = client.get(reverse("admin:results_importjob_change", args=[jobs[0].pk]))
    assert change.status_code == 200 and b'name="_save"' not in change.content  # read-only
    other = client.get(reverse("admin:results_importjob_change", args=[jobs[2].pk]))
    assert other.status_code == 302  # "does not exist": another organiser's poll


def test_a_background_import_keeps_its_dry_run_and_replace_options(
    target, importer, media, small_inline_limit, recomputes, django_capture_on_commit_callbacks
):
    _, client = importer

    def send(content: bytes, **fields: str) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("api:poll-import", kwargs={"slug": target.slug}),
                {"file": io.BytesIO(content), **fields},
                format="multipart",
            )
        assert response.status_code == 202
        return client.get(response["Location"]).json()

    checked = send(rows(5), dry_run="true")
    assert checked["state"] == "done"
    assert checked["message"] == (
        "Checked, nothing stored (dry run): would import 5 participants (5 complete, "
        "0 incomplete) and 5 answers."
    )
    assert checked["result"]["dry_run"] is True
    assert not Participant.objects.filter(poll=target).exists()
    assert recomputes == []

    assert send(rows(5))["state"] == "done"
    again = send(rows(5, bad={0: "7"}))
    assert again["state"] == "failed"
    assert again["errors"][0]["message"].startswith("imp00000 is already in this poll")
    replaced = send(rows(5, bad={0: "7"}), replace="true")
    assert replaced["state"] == "done"
    assert replaced["result"]["replaced"] == 5
    first = Answer.objects.get(poll=target, participant__public_id="imp00000")
    assert first.value == 7
    assert Participant.objects.filter(poll=target).count() == 5
    assert stored_uploads(media) == []
