"""Export files: one writer per format, the zipped data package, and export jobs (a Celery task
builds large exports into a file that can be downloaded, by a signed link, until it expires).

The task lives in ``results.tasks`` and calls ``run_export_job``; whoever starts a job passes
the task's ``delay`` in, so nothing here imports the tasks module back.
"""

import json
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.signing import BadSignature, SignatureExpired, TimestampSigner
from django.db import transaction
from django.utils import timezone

from results import tables
from results.access import has_microdata
from results.exports import codebook, statfiles, transcripts, waves
from results.exports import writers as exports
from results.models import ApiToken, ExportJob, ResultSnapshot, Webhook
from results.webhooks import announce
from surveys.definition.files import dump_poll
from surveys.models import Poll, localized

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    extension: str
    streams: bool  # written chunk by chunk, with flat memory


FORMATS = {
    f.name: f
    for f in (
        Format("csv-long", "text/csv; charset=utf-8", "long.csv", True),
        Format("csv-wide", "text/csv; charset=utf-8", "wide.csv", True),
        Format("parquet", "application/vnd.apache.parquet", "long.parquet", True),
        Format("sav", "application/x-spss-sav", "sav", False),
        Format("dta", "application/x-stata-dta", "dta", False),
        # One row per participant and wave, as the Stanford lab's DeliberativePolling reads.
        Format("csv-waves", "text/csv; charset=utf-8", "waves.csv", False),
        Format("sav-waves", "application/x-spss-sav", "waves.sav", False),
        Format("dta-waves", "application/x-stata-dta", "waves.dta", False),
        Format("package", "application/zip", "zip", False),
    )
}
STREAMS: dict[str, Callable[[Poll], Iterator[bytes]]] = {
    "csv-long": exports.long_csv_chunks,
    "csv-wide": exports.wide_csv_chunks,
    "parquet": exports.long_parquet_chunks,
}
EXPORT_LINK_HOURS = 24


def filename_for(slug: str, fmt: str) -> str:
    return f"{slug}-{timezone.now():%Y%m%d}.{FORMATS[fmt].extension}"


def write_chunks(chunks: Iterable[bytes], target: IO[bytes]) -> int:
    size = 0
    for chunk in chunks:
        target.write(chunk)
        size += len(chunk)
    return size


def write_export(poll: Poll, fmt: str, path: Path, *, progress: Progress | None = None) -> None:
    """Write the export ``fmt`` of the poll to ``path``."""
    if fmt in STREAMS:
        with path.open("wb") as target:
            write_chunks(STREAMS[fmt](poll), target)
    elif fmt == "sav":
        statfiles.write_sav(poll, path, progress=progress)
    elif fmt == "dta":
        statfiles.write_dta(poll, path, progress=progress)
    elif fmt in waves.WRITERS:
        waves.WRITERS[fmt](poll, path, progress=progress)
    elif fmt == "package":
        write_package(poll, path, progress=progress)
    else:
        raise ValueError(f"unknown export format {fmt!r}")


# --- the data package ------------------------------------------------------------------------


def result_tables(snapshot: ResultSnapshot | None) -> dict[str, bytes]:
    """The snapshot's flat tables as CSV files (the options sub-tables one file each)."""
    if snapshot is None:
        return {}
    payload = snapshot.payload
    files = {}
    for name, columns in tables.TABLES.items():
        files[f"results/{name}.csv"] = exports.table_csv(payload.get(name, []), list(columns))
    for name, sub in (payload.get("options") or {}).items():
        if isinstance(sub, list):
            files[f"results/options_{name}.csv"] = exports.table_csv(sub)
    files["results/snapshot.json"] = json.dumps(
        {
            "computed_at": snapshot.computed_at.isoformat(),
            "n_participants": snapshot.n_participants,
            "fingerprint": snapshot.fingerprint,
            "code_version": snapshot.code_version,
            "settings": snapshot.settings,
            "meta": payload.get("meta", {}),
            "options": payload.get("options", {}),
            "small_groups": payload.get("small_groups", []),
        },
        indent=2,
        ensure_ascii=False,
    ).encode()
    return files


def datapackage(poll: Poll, snapshot: ResultSnapshot | None) -> dict[str, Any]:
    variables = codebook.wide_variables(poll)
    resources = [
        {
            "name": "answers-wide",
            "path": "data/answers_wide.csv",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": codebook.table_schema(variables),
        },
        {
            "name": "answers-long",
            "path": "data/answers_long.csv",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": codebook.table_schema(codebook.LONG_VARIABLES),
        },
        {"name": "codebook", "path": "codebook.csv", "format": "csv", "mediatype": "text/csv"},
        {"name": "definition", "path": "definition.json", "format": "json"},
    ]
    if snapshot is not None:
        resources += [
            {
                "name": f"results-{name}",
                "path": f"results/{name}.csv",
                "format": "csv",
                "schema": codebook.results_schema(name),
            }
            for name in tables.TABLES
        ]
    resources += waves.package_resources(poll)
    resources += transcripts.package_resources(poll)
    return {
        "profile": "tabular-data-package",
        "name": poll.slug,
        "title": localized(poll.title, "en"),
        "description": localized(poll.question, "en"),
        "created": timezone.now().isoformat(),
        "licenses": [{"name": "CC-BY-4.0", "title": "Creative Commons Attribution 4.0"}],
        "resources": resources,
    }


README = """# {title}

Data package of the Deliberative Poll `{slug}`, exported {created}.

{question}

## Contents

- `data/answers_wide.csv`: one row per participant; columns `<item>_t1` and `<item>_t2`.
- `data/answers_long.csv`: one row per participant, item and wave.
- `waves/answers.csv` and `waves/answers.sav`, with `waves/codebook.csv` (polls with paired
  items): one row per participant and wave (`ID`, `Group`, `Time`, every rating, choice,
  knowledge and number item under its own name), the layout the Stanford lab's
  `DeliberativePolling` reads.
- `codebook.csv` and `datapackage.json` (Frictionless Tabular Data Package): every variable with
  its wording, type, measure level, value labels, missing-value codes and answer keys.
- `definition.json`: the whole poll definition (positions, options, questions in every language).
- `results/`: the results tables of the latest snapshot ({snapshot}), with the measures of live
  deliberation per room (`deliberation_rooms.csv`) and per member (`deliberation_members.csv`)
  and the Deliberative Reason Index per group and wave (`dri.csv`) and its change with a paired
  test (`dri_change.csv`); `datapackage.json` carries the index's formula and reference.
- `transcripts/`: each live room's messages (`room_<n>.csv` and `.json`) under the members'
  pseudonyms; a hidden message keeps its row without its text.

## Method

A Deliberative Poll: participants answer a first questionnaire (T1), are randomly assigned to
deliberate (treatment) or not (control), the treatment group reads a balanced briefing on both
positions (in counterbalanced order, see `position_order`) and gives and reads reasons in small
groups, then everyone answers again (T2). Opinion change is the paired difference T2 - T1 per
item, compared between arms (difference in differences). Participant ids are pseudonyms; no
contact details, tokens or addresses are exported.

## Coding

- Empty cells: not answered. Missing answers carry the code of their kind, as the poll's
  definition declares them ({codes}); without a declared code, don't know is {dk}. The codebook's
  `missing_codes` lists each variable's codes (`code=kind`); in the long table the `missing`
  column names the kind (dont_know, refused, skipped, not_asked).
- In the SPSS file (`sav` export) the codes are user-missing values, labelled; in the Stata file
  (`dta` export) they are extended missing values: `.a` don't know, `.b` refused, `.c` skipped,
  `.d` not asked, labelled with the kind and the code. Longer names are shortened to 28
  characters in the Stata file: the codebook's `stata_name` gives each one.
- Choice questions carry 1-based codes (see value labels); lists are separated by `{sep}`.
  Whole-number answers are written as integers.
- Text cells that begin with `=`, `+`, `-`, `@`, a tab or a carriage return are prefixed with an
  apostrophe so spreadsheets do not run them as formulas.

## Reading the files

R, with the labels and missing kinds (haven):

```r
library(haven)
sav <- read_sav("{slug}.sav", user_na = TRUE)  # codes kept, marked missing
is.na(sav$item_t1)                               # TRUE for every missing kind
as_factor(sav$item_t1)                           # value labels as factor levels
dta <- read_dta("{slug}.dta")                    # .a, .b, ... as tagged_na("a"), ...
na_tag(dta$item_t1)                              # "a" (don't know), "b" (refused), ...
wide <- readr::read_csv("data/answers_wide.csv") # codes as numbers, see codebook.csv
```

Python (pandas, pyreadstat):

```python
import pandas as pd
import pyreadstat

wide = pd.read_csv("data/answers_wide.csv")     # codes as numbers, see codebook.csv
long = pd.read_csv("data/answers_long.csv", keep_default_na=False)  # `missing`: the kind
sav, meta = pyreadstat.read_sav("{slug}.sav", user_missing=True)
meta.missing_ranges["item_t1"]                  # the declared codes
meta.variable_value_labels["item_t1"]           # code -> label, missing codes included
labelled = pyreadstat.set_value_labels(sav, meta)
dta, meta = pyreadstat.read_dta("{slug}.dta", user_missing=True)  # "a", "b", ... kept
```

Replace `item_t1` with a variable of the codebook, and the file names with those of the
exports.

## The Stanford lab's DeliberativePolling package

The Deliberative Democracy Lab's analysis package reads `waves/answers.sav` (the API's
`sav-waves` export) unchanged. It needs pandas 2, so give it an environment of its own:

```sh
python3 -m venv dplab && dplab/bin/pip install "DeliberativePolling==1.4.2" "pandas<3"
dplab/bin/python - <<'END'
from DeliberativePolling import outputs
outputs("waves/answers.sav", fast=True)
END
```

It writes its tables to `Outputs/` (`fast=True`: spreadsheets only; without it, Word files
too, much slower). Its rows are the participants the results describe (completed, in an arm),
one per wave they answered at; missing codes are user-missing, so the package counts them as
DK/NA. Its paired means and p-values for an arm, before v. after, are those of
`results/items.csv` (unweighted rows, to the three decimals it prints); `waves/codebook.csv`
says where its figures differ by method (its "n =", its percentages, between-group tests, and
weights taken as frequencies) and that it applies no small-cell rule.

## Disclosure control

{disclosure}

## How to cite

Deliberate ({year}). *{title}* [data set]. Poll `{slug}`, exported {created}.
Results snapshot fingerprint: {fingerprint}.
"""


def declared_codes(poll: Poll) -> dict[int, str]:
    """Every missing-value code the poll's variables use, code -> kind."""
    codes: dict[int, str] = {}
    for variable in codebook.wide_variables(poll):
        codes.update(variable.missing_kinds)
    return dict(sorted(codes.items()))


def readme(poll: Poll, snapshot: ResultSnapshot | None) -> str:
    now = timezone.now()
    return README.format(
        title=localized(poll.title, "en"),
        slug=poll.slug,
        created=now.isoformat(timespec="seconds"),
        question=localized(poll.question, "en"),
        snapshot=snapshot.computed_at.isoformat(timespec="seconds") if snapshot else "none yet",
        dk=codebook.DK_CODE,
        codes=", ".join(f"{code} {kind}" for code, kind in declared_codes(poll).items())
        or "none declared",
        sep=codebook.LIST_SEPARATOR,
        year=now.year,
        fingerprint=snapshot.fingerprint if snapshot else "none",
        disclosure=codebook.DISCLOSURE.strip(),
    )


def write_package(poll: Poll, path: Path, *, progress: Progress | None = None) -> None:
    # The latest snapshot, released or not: a package carries the answers themselves and only
    # microdata grants may ask for one (ExportView and its download link both check), so the
    # release rule, which keeps consecutive snapshots from telling one participant, adds nothing.
    snapshot = ResultSnapshot.objects.latest_for(poll)
    report = progress or (lambda fraction, message: None)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        report(0.05, "writing the long table")
        with archive.open("data/answers_long.csv", "w", force_zip64=True) as target:
            write_chunks(exports.long_csv_chunks(poll), target)
        report(0.6, "writing the wide table")
        with archive.open("data/answers_wide.csv", "w", force_zip64=True) as target:
            write_chunks(exports.wide_csv_chunks(poll), target)
        report(0.85, "writing the codebook and results")
        archive.writestr("codebook.csv", exports.table_csv(codebook.codebook_rows(poll)))
        archive.writestr(
            "datapackage.json",
            json.dumps(datapackage(poll, snapshot), indent=2, ensure_ascii=False),
        )
        archive.writestr(
            "definition.json", json.dumps(dump_poll(poll), indent=2, ensure_ascii=False)
        )
        for name, content in result_tables(snapshot).items():
            archive.writestr(name, content)
        for name, content in transcripts.transcript_files(poll):
            archive.writestr(name, content)
        with tempfile.TemporaryDirectory() as folder:
            for name, part in waves.package_files(poll, Path(folder)):
                if isinstance(part, Path):
                    archive.write(part, name)
                else:
                    archive.writestr(name, part)
        archive.writestr("README.md", readme(poll, snapshot))


# --- export jobs -----------------------------------------------------------------------------


def stream_limit() -> int:
    """Answers above which an export is built by the worker instead of in the request."""
    return getattr(settings, "EXPORT_STREAM_MAX_ANSWERS", 500_000)


@transaction.atomic
def start_export_job(
    *,
    poll: Poll,
    user: Any,
    fmt: str,
    enqueue: Callable[[int], object],
    api_token: ApiToken | None = None,
) -> ExportJob:
    """A queued export; ``enqueue(job_id)`` sends its task once the row is committed (the
    caller passes the task, so this module never imports the tasks that import it)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    job = ExportJob.objects.create(
        poll=poll, user=user, api_token=api_token, format=fmt, message="queued"
    )
    transaction.on_commit(lambda: enqueue(job.pk), robust=True)
    return job


def set_progress(job_id: int, fraction: float, message: str) -> None:
    ExportJob.objects.filter(pk=job_id).update(progress=round(fraction, 3), message=message[:200])


def run_export_job(*, job_id: int) -> ExportJob:
    """Build the job's file (idempotent: a job already done is left alone)."""
    job = ExportJob.objects.select_related("poll").get(pk=job_id)
    if job.state == ExportJob.State.DONE:
        return job
    ExportJob.objects.filter(pk=job_id).update(state=ExportJob.State.RUNNING, progress=0.0)
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / filename_for(job.poll.slug, job.format)
            write_export(
                job.poll,
                job.format,
                path,
                progress=lambda fraction, message: set_progress(job_id, fraction, message),
            )
            finish_export_job(job=job, path=path)
    except Exception as error:
        ExportJob.objects.filter(pk=job_id).update(
            state=ExportJob.State.FAILED, message=f"failed: {error}"[:200]
        )
        raise
    return job


@transaction.atomic
def finish_export_job(*, job: ExportJob, path: Path) -> None:
    with path.open("rb") as source:
        job.file.save(path.name, File(source), save=False)
    now = timezone.now()
    job.state = ExportJob.State.DONE
    job.progress = 1.0
    job.message = "ready"
    job.size = path.stat().st_size
    job.finished_at = now
    job.expires_at = now + timedelta(hours=EXPORT_LINK_HOURS)
    job.save()
    announce(
        poll=job.poll,
        event=Webhook.Event.EXPORT_READY,
        data={"export_id": job.pk, "format": job.format, "size": job.size},
        owner=job.user,
    )


def purge_expired_exports() -> int:
    """Delete the files of expired exports (the job rows stay as a record)."""
    count = 0
    for job in ExportJob.objects.expired().exclude(file=""):
        job.file.delete(save=False)
        ExportJob.objects.filter(pk=job.pk).update(file="", message="expired")
        count += 1
    return count


SIGNER_SALT = "results.export-download"


def download_signature(job: ExportJob) -> str:
    return TimestampSigner(salt=SIGNER_SALT).sign(str(job.pk)).split(":", 1)[1]


def link_still_granted(job: ExportJob) -> bool:
    """A signed link is only as good as what issued it: the user's microdata grant on the poll
    and, when a token asked for the export, that token, both checked at download time."""
    if (
        job.api_token_id is not None
        and not ApiToken.objects.active().filter(pk=job.api_token_id).exists()
    ):
        return False
    return has_microdata(job.user, job.poll)


def check_download_signature(job: ExportJob, signature: str) -> bool:
    try:
        TimestampSigner(salt=SIGNER_SALT).unsign(
            f"{job.pk}:{signature}", max_age=timedelta(hours=EXPORT_LINK_HOURS)
        )
    except (BadSignature, SignatureExpired):
        return False
    return True
