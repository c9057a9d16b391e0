"""The only bridge between answers and results: load a poll in bulk, compute, store a snapshot.

``recompute_poll`` is the single entry point (tasks, the ``recompute`` command, the admin and the
API all call it). One recompute of a poll runs at a time: on PostgreSQL a transaction-level
advisory lock keyed by the poll, released by the database even when the worker is killed; on
SQLite (the embedded single-process default) a per-poll lock in the process, with SQLite's own
write lock behind it. The read happens in one REPEATABLE READ transaction, so participants and
answers are one consistent picture, and the snapshot is written in that same transaction: a
reader sees the previous snapshot or the new one, never half of one.

Idempotent: when the input fingerprint, code version and settings equal the latest snapshot's,
nothing is written and that snapshot is returned, so redelivered or coalesced tasks are cheap.
"""

import gc
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.crypto import salted_hmac
from threadpoolctl import threadpool_limits

from results import tables
from results.compute.aggregates import PayloadBuilder
from results.compute.breakdowns import group_rows_omitted
from results.compute.deliberation import Loaded, deliberation_tables, load_deliberation
from results.compute.dri import dri_tables
from results.compute.loading import PollData, load_poll_data, results_data_changed_at
from results.compute.option_tables import options_tables, small_group_tables
from results.models import ResultSnapshot
from results.webhooks import announce_snapshot
from surveys.models import Participant, Poll

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
ANALYSIS_VERSION = "1"
# Arbitrary first key of the two-int advisory lock: our namespace, so no other lock collides.
LOCK_NAMESPACE = 4_400_101
KEEP_SNAPSHOTS = 20
_local_locks: dict[int, threading.Lock] = {}
_local_locks_guard = threading.Lock()


class RecomputeBusy(Exception):
    """Another recompute of this poll holds the lock (raised only with ``wait=False``)."""


@cache
def code_version() -> str:
    """The analysis version plus a digest of the results code, so a changed formula shows up.

    A deployment may set RESULTS_CODE_VERSION (for example a git commit) instead.
    """
    configured = os.environ.get("RESULTS_CODE_VERSION")
    if configured:
        return configured[:40]
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    sources = [
        *sorted((here.parent / "stats").glob("*.py")),
        *sorted(here.glob("*.py")),
        # The columns of every table, whose descriptions the payload's meta carries.
        here.parent / "tables.py",
    ]
    for path in sources:
        digest.update(path.read_bytes())
    return f"{ANALYSIS_VERSION}+{digest.hexdigest()[:16]}"


def analysis_settings(data: PollData) -> dict[str, Any]:
    return {
        "analysis_version": ANALYSIS_VERSION,
        "population": "participants who completed the poll",
        "pairs": "complete pairs: a substantive answer at both waves",
        "min_subgroup_size": data.min_subgroup_size,
        "confidence_level": 0.95,
        "p_adjust_family": "items within one arm, subgroup, value and weighting",
        "weights": "participant weights, normalised to mean 1; unweighted rows always present"
        if data.has_weights
        else "none",
        "gaps_population": "treatment arm when present, else all",
        "opinion_groups": "PCA and k-means, k = 2..5 by silhouette, random_state 0",
    }


def build_payload(
    data: PollData, *, progress: Progress | None = None, live: Loaded | None = None
) -> dict[str, Any]:
    """The numeric part: every table of the snapshot, from loaded arrays only (and the live
    rooms' transcripts, reduced to numbers by ``load_deliberation``, when given)."""
    # statsmodels' Holm adjustment calls gc.collect() on every family; freezing the objects
    # that already exist (Django, the loaded arrays) keeps each of those collections tiny.
    # One BLAS thread: the work is many small library calls (the disclosure audit's SVDs
    # above all), where a second thread on a busy host only waits: 20x slower measured.
    gc.freeze()
    try:
        with threadpool_limits(limits=1):
            payload = _build_payload(data, progress)
        rooms, members, live_meta = deliberation_tables(data, live) if live else ([], [], {})
        payload["meta"]["deliberation"] = live_meta or {"n_rooms": 0}
        return {**payload, "deliberation_rooms": rooms, "deliberation_members": members}
    finally:
        gc.unfreeze()


def _build_payload(data: PollData, progress: Progress | None) -> dict[str, Any]:
    builder = PayloadBuilder(data, progress)
    items, details, distributions = builder.item_tables()
    builder.report(0.8, "treatment vs control and subgroup gaps")
    did = builder.did_rows()
    gaps = builder.gap_rows()
    knowledge = builder.knowledge_rows()
    builder.report(0.85, "options and small groups")
    options = options_tables(data, builder.ratings, builder)
    small_groups = small_group_tables(data, builder.items, builder.ratings, builder)
    dri, dri_change, dri_meta, dri_points = dri_tables(data, builder.ratings, builder)
    gap_arm, _ = builder.gap_population()
    meta = {
        "n_participants": data.n,
        "n_treatment": int((data.arm == 1).sum()),
        "n_control": int((data.arm == 2).sum()),
        "n_unassigned": int((data.arm == 0).sum()),
        "n_answers": data.n_answers,
        "n_invalid_answers": builder.invalid,
        "weighted": data.has_weights,
        "n_weighted": int((data.weight > 0).sum()) if data.has_weights else 0,
        "min_subgroup_size": data.min_subgroup_size,
        "items": [q.key for _, q in builder.items],
        "breakdowns": [q.key for q in data.questions if q.breakdown],
        "gaps_arm": gap_arm,
        "group_rows_omitted": group_rows_omitted(data),
        "suppressed": builder.suppressed,
        "n_suppressed_rows": builder.suppressed_rows,
        "extra_columns": tables.EXTRA_COLUMNS,
        "dri": dri_meta,
    }
    return {
        "items": items,
        "did": did,
        "gaps": gaps,
        "knowledge": knowledge,
        "item_details": details,
        "distributions": distributions,
        "options": options,
        "small_groups": small_groups,
        "dri": dri,
        "dri_change": dri_change,
        # The consistency scatter's points: for the admin page, no table of the API.
        "dri_points": dri_points,
        "meta": meta,
    }


@contextmanager
def poll_lock(poll_id: int, *, wait: bool) -> Iterator[None]:
    """Hold the poll's recompute lock for the current transaction (PostgreSQL) or block."""
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s, %s)", [LOCK_NAMESPACE, int(poll_id)])
            row = cursor.fetchone()
        if not wait and not (row and row[0]):
            raise RecomputeBusy(poll_id)
        yield
        return
    with _local_locks_guard:
        lock = _local_locks.setdefault(int(poll_id), threading.Lock())
    if not lock.acquire(blocking=wait):
        raise RecomputeBusy(poll_id)
    try:
        yield
    finally:
        lock.release()


@contextmanager
def snapshot_transaction() -> Iterator[None]:
    """One transaction, REPEATABLE READ on PostgreSQL when we open it ourselves."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def recompute_poll(
    poll_id: int,
    *,
    progress: Progress | None = None,
    wait: bool = True,
    on_locked: Callable[[], None] | None = None,
) -> ResultSnapshot:
    """Recompute a poll's results from the database and store (or reuse) its snapshot.

    ``progress(fraction, message)`` is called as the work advances (0 to 1). With ``wait``
    false, raise RecomputeBusy instead of waiting for a running recompute of the same poll.
    ``on_locked()`` is called once the poll's lock is held, before anything is read: while it
    runs no other recompute of the poll can be running (the tasks use it to take over the jobs
    of a worker that died). Raises Poll.DoesNotExist for an unknown poll.
    """
    report = progress or (lambda fraction, message: None)
    if not Poll.objects.filter(pk=poll_id).exists():
        raise Poll.DoesNotExist(f"poll {poll_id} does not exist")
    with snapshot_transaction(), poll_lock(poll_id, wait=wait):
        if on_locked is not None:
            on_locked()
        report(0.05, "reading answers")
        data = load_poll_data(poll_id, progress=report)
        live = load_deliberation(data)
        fingerprint = data.fingerprint()
        if live.digest:  # the transcripts are input too (polls without rooms keep theirs)
            fingerprint = hashlib.sha256(f"{fingerprint}{live.digest}".encode()).hexdigest()
        settings = analysis_settings(data)
        version = code_version()
        latest = ResultSnapshot.objects.latest_for(poll_id)
        if (
            latest is not None
            and latest.fingerprint == fingerprint
            and latest.code_version == version
            and latest.settings == settings
        ):
            confirm_snapshot(latest, data_as_of=data.data_as_of)
            report(1.0, "results already up to date")
            return latest
        report(0.5, f"computing results for {data.n} participants")
        payload = build_payload(data, progress=report, live=live)
        report(0.95, "saving the snapshot")
        snapshot = save_snapshot(
            data=data, payload=payload, fingerprint=fingerprint, version=version, settings=settings
        )
    report(1.0, "done")
    return snapshot


def confirm_snapshot(snapshot: ResultSnapshot, *, data_as_of: datetime | None) -> None:
    """Record that a recompute found nothing new: the snapshot is current as of ``data_as_of``.

    The data can change without changing the results (a participant's answer saved again with
    the same value); without moving ``data_as_of`` the poll would look stale to the reconciler
    after every recompute.
    """
    snapshot.data_as_of, snapshot.checked_at = data_as_of, timezone.now()
    snapshot.save(update_fields=["data_as_of", "checked_at"])
    logger.info("results of poll %s unchanged: nothing new since the snapshot", snapshot.poll_id)


def save_snapshot(
    *,
    data: PollData,
    payload: dict[str, Any],
    fingerprint: str,
    version: str,
    settings: dict[str, Any],
) -> ResultSnapshot:
    """Store a snapshot, released or held back by ``release_decision``, and prune the poll's
    history to the newest KEEP_SNAPSHOTS (never the latest released one: readers of aggregates
    only still read it while newer ones are held back)."""
    meta = payload["meta"]
    contributions = participant_digests(data)
    released = ResultSnapshot.objects.released_for(data.poll_id)
    release = release_decision(contributions, n=data.n, released=released, k=data.min_subgroup_size)
    snapshot = ResultSnapshot.objects.create(
        poll_id=data.poll_id,
        data_as_of=data.data_as_of,
        checked_at=timezone.now(),
        n_participants=meta["n_participants"],
        n_treatment=meta["n_treatment"],
        n_control=meta["n_control"],
        fingerprint=fingerprint,
        code_version=version,
        settings=settings,
        payload=payload,
        contributions=contributions,
        released_at=timezone.now() if release else None,
    )
    # Explicitly here, where a snapshot is saved: the deliveries are written in this transaction
    # and sent once it commits.
    announce_snapshot(snapshot)
    stale = ResultSnapshot.objects.filter(poll_id=data.poll_id).newest_first()
    if not release and released is not None:
        stale = stale.exclude(pk=released.pk)
    old_ids = list(stale.values_list("id", flat=True)[KEEP_SNAPSHOTS:])
    if old_ids:
        ResultSnapshot.objects.filter(id__in=old_ids).delete()
    logger.info(
        "results of poll %s recomputed: %s participants, fingerprint %s, %s",
        data.poll_id,
        data.n,
        fingerprint[:12],
        "released" if release else "held back",
    )
    return snapshot


def participant_digests(data: PollData) -> dict[str, str]:
    """Participant id -> keyed digest of everything of theirs the results read (arm, group,
    weight, answers, rankings). Keyed: a plain hash of a few small answers could be reversed
    by trying every combination, and this column must not be microdata in disguise."""
    if data.n == 0:
        return {}
    columns = [
        data.arm.reshape(1, -1),
        data.group.reshape(1, -1),
        data.weight.reshape(1, -1),
        data.values.reshape(-1, data.n),
        data.dont_know.reshape(-1, data.n),
        data.answered.reshape(-1, data.n),
        *(data.rankings[key].T for key in sorted(data.rankings)),
    ]
    per_participant = np.vstack([np.asarray(c, dtype=np.float64) for c in columns]).T
    # salted_hmac derives its key on every call (a hash of the secret), half the cost at
    # 100,000 participants: derive it once and copy the keyed state per participant (the same
    # digests, tested against salted_hmac).
    keyed = salted_hmac("results.release", b"")

    def digest(row: np.ndarray) -> str:
        state = keyed.copy()
        state.update(row.tobytes())
        return state.hexdigest()[:16]

    return {
        str(int(pid)): digest(row)
        for pid, row in zip(data.participant_ids.tolist(), per_participant, strict=True)
    }


def release_decision(
    contributions: dict[str, str], *, n: int, released: ResultSnapshot | None, k: int
) -> bool:
    """The release rule. The participants whose contribution differs from the last released
    snapshot (added, removed, or with changed data, each counted once) must number none or at
    least k, so the difference of two releases is itself a group of at least k; a poll's first
    release therefore needs k participants. Against a snapshot from before contributions were
    recorded only the counts are known: the participant count must then have moved by k."""
    if released is None:
        return n == 0 or n >= k
    if released.contributions is None:
        return abs(n - released.n_participants) >= k
    before = released.contributions
    differ = {pid for pid, digest in contributions.items() if before.get(pid) != digest}
    differ.update(pid for pid in before if pid not in contributions)
    return not differ or len(differ) >= k


def locked_poll_ids() -> set[int]:
    """Polls whose recompute lock some database session holds right now (PostgreSQL only).

    A session that dies (a worker killed with ``kill -9``) loses its locks, so a poll that is
    not in this set has no recompute running, whatever its job status still says.
    """
    if connection.vendor != "postgresql":
        return set()
    with connection.cursor() as cursor:
        # The two-int form of an advisory lock shows its keys as classid and objid, objsubid 2.
        cursor.execute(
            "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 2 AND classid = %s "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [LOCK_NAMESPACE],
        )
        return {int(row[0]) for row in cursor.fetchall()}


def stale_poll_ids() -> list[int]:
    """Polls whose results are behind their data, by the measure ``data_as_of`` records
    (``results_data_changed_at``): completed participants' data but no snapshot, data changed
    since the snapshot, a different number of completed participants (catches a completion
    whose transaction committed after a later one, and participants removed), or an older code
    version. Polls of any status: a closed poll whose snapshot is current is not stale, and one
    whose data changed (an import) is."""
    latest = ResultSnapshot.objects.filter(poll=OuterRef("pk")).newest_first()
    completed = (
        Participant.objects.filter(poll=OuterRef("pk"), completed_at__isnull=False)
        .order_by()
        .values("poll")
        .annotate(count=Count("id"))
        .values("count")
    )
    has_snapshot = Q(snapshot_n__isnull=False)
    polls = (
        Poll.objects.annotate(
            changed=results_data_changed_at(),
            as_of=Subquery(latest.values("data_as_of")[:1]),
            snapshot_n=Subquery(latest.values("n_participants")[:1]),
            snapshot_version=Subquery(latest.values("code_version")[:1]),
            n_completed=Coalesce(Subquery(completed), 0),
        )
        .filter(
            Q(changed__isnull=False, as_of__isnull=True)
            | Q(changed__gt=F("as_of"))
            | (has_snapshot & ~Q(n_completed=F("snapshot_n")))
            | (has_snapshot & ~Q(snapshot_version=code_version()))
        )
        .order_by("pk")
    )
    return list(polls.values_list("pk", flat=True))
