"""Every write of the participant journey, as keyword-only functions that own their transaction.

Each submission locks the participant row, so a replayed or concurrent POST of one page is
applied once and answered with the same next place; answers are upserted on the unique
(participant, question, wave), so no POST can store two answer sets.
"""

import random
import secrets
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.db.models import Count, F, Max, OuterRef, Subquery
from django.db.models.functions import Greatest
from django.utils import timezone

from results.tasks import schedule_recompute
from surveys.definition import schedule
from surveys.definition.spec import PollSpec
from surveys.journey import flow, paradata, tokens
from surveys.journey.flow import Place
from surveys.journey.forms import Given, GivenReason
from surveys.models import Answer, Participant, Poll, Reason, ReasonReport, Withdrawal

Step = Participant.Step
Arm = Participant.Arm
_system_random = secrets.SystemRandom()


def _new_option_order(spec: PollSpec, poll: Poll, rng: random.Random) -> list[str]:
    keys = spec.option_keys()
    if poll.randomise_option_order:
        rng.shuffle(keys)
    return keys


@transaction.atomic
def give_consent(
    *,
    poll: Poll,
    spec: PollSpec,
    participant: Participant | None,
    entry_key: str,
    language: str,
    welcome_seconds: float,
    rng: random.Random = _system_random,
) -> Participant:
    """Record consent and start T1; create the participant of an open link.

    ``entry_key`` is the one-time key of the consent form: a repeated or concurrent POST of the
    same form finds the participant the first one created instead of creating another.
    """
    now = timezone.now()
    start = {
        "consented_at": now,
        "step": Step.T1,
        "page": 0,
        "page_started_at": now,
        "language": language,
        "option_order": _new_option_order(spec, poll, rng),
        "step_times": {"welcome": welcome_seconds},
    }
    if participant is None:
        participant, _ = Participant.objects.get_or_create(
            entry_key=entry_key, defaults={"poll": poll, **start}
        )
        return participant
    locked = Participant.objects.select_for_update().get(pk=participant.pk)
    if locked.consented_at is None:
        for name, value in start.items():
            setattr(locked, name, value)
        locked.entry_key = entry_key
        locked.save()
    return locked


def _save_answers(
    participant: Participant, wave: int, given: Sequence[tuple[object, Given | None]]
) -> None:
    rows = [
        Answer(
            poll_id=participant.poll_id,
            participant=participant,
            question_id=g.question.id,
            wave=wave,
            value=g.value,
            number=g.number,
            missing=Answer.Missing.DONT_KNOW if g.dont_know else "",
        )
        for _, g in given
        if g is not None
    ]
    if rows:
        Answer.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["participant", "question", "wave"],
            update_fields=["value", "number", "missing", "answered_at"],
        )
    unanswered = [q.id for q, g in given if g is None]  # type: ignore[attr-defined]
    if unanswered:
        # Going back and clearing an optional answer removes it: stored is exactly what was given.
        Answer.objects.filter(
            participant=participant, wave=wave, question_id__in=unanswered
        ).delete()


@transaction.atomic
def submit_questionnaire_page(
    *,
    participant_id: int,
    spec: PollSpec,
    wave: int,
    page: int,
    given: Sequence[tuple[object, Given | None]],
    rng: random.Random = _system_random,
) -> Place:
    """Store one questionnaire page and return the place to show next.

    Nothing is stored when the questionnaire is not the participant's current step (T1 is
    frozen once they moved on; T2 is not open yet) or the page lies ahead of them.
    """
    participant = _locked_with_poll(participant_id)
    step = Step.T1 if wave == 1 else Step.T2
    posted = Place(step, page)
    if participant.step != step or page > participant.page:
        return flow.current_place(participant)
    _save_answers(participant, wave, given)
    if page < participant.page:
        return flow.next_place(spec, arm=participant.arm, place=posted)
    now = timezone.now()
    seconds = paradata.seconds_between(participant.page_started_at, now)
    participant.step_times = paradata.add_seconds(participant.step_times, step, seconds)
    if flow.is_last_page(spec, posted, participant.arm):
        _finish_wave(participant, spec, wave)
        if wave == 1:
            participant.t1_completed_at = now
        if wave == 1 and not participant.arm:
            assign_condition(participant=participant, spec=spec, rng=rng)
    nxt = _move(participant, flow.next_place(spec, arm=participant.arm, place=posted), now)
    if nxt.step == Step.BRIEFING:
        participant.briefed_at = now
    if nxt.step == Step.DONE:
        participant.completed_at = now
        participant.flags = paradata.with_flag(
            participant.flags,
            paradata.TOO_FAST,
            paradata.too_fast(
                consented_at=participant.consented_at,
                completed_at=now,
                min_seconds=participant.poll.min_seconds,
            ),
        )
        schedule_recompute(participant.poll_id)
    participant.save()
    return nxt


def _move(participant: Participant, nxt: Place, now: datetime) -> Place:
    """Put the participant at ``nxt``, past the wait when their T2 is open already. Who must
    wait gets a return link (derived from their public id, so the wait page can show it again;
    only its hash is stored, which is what the link is looked up by)."""
    t2_open = schedule.t2_is_open(
        schedule.Schedule.of(participant.poll),
        t1_completed_at=participant.t1_completed_at,
        now=now,
    )
    nxt = flow.past_wait(nxt, t2_open=t2_open)
    if nxt.step == Step.WAIT:
        participant.return_token_hash = tokens.hash_token(
            tokens.return_token(participant.public_id)
        )
    participant.step, participant.page, participant.page_started_at = nxt.step, nxt.page, now
    return nxt


def _locked_with_poll(participant_id: int) -> Participant:
    """The participant's row, locked until the transaction ends, with its poll read along (and
    not locked: ``of`` keeps the lock off the joined poll row, which every participant shares)."""
    return (
        Participant.objects.select_for_update(of=("self",))
        .select_related("poll")
        .get(pk=participant_id)
    )


@transaction.atomic
def continue_after_t1(*, participant_id: int, spec: PollSpec) -> Place:
    """Move on from the page that says what happens next in the participant's arm."""
    participant = _locked_with_poll(participant_id)
    if participant.step != Step.NEXT:
        return flow.current_place(participant)
    now = timezone.now()
    nxt = flow.next_place(spec, arm=participant.arm, place=Place(Step.NEXT, 0))
    nxt = _move(participant, nxt, now)
    if nxt.step == Step.BRIEFING:
        participant.briefed_at = now
    participant.save()
    return nxt


@transaction.atomic
def return_for_t2(*, participant_id: int) -> Place:
    """A waiting participant whose T2 has opened goes on to it; anyone else stays put. Safe to
    call on every visit: it changes nothing until the moment has come."""
    participant = _locked_with_poll(participant_id)
    if participant.step != Step.WAIT:
        return flow.current_place(participant)
    nxt = _move(participant, Place(Step.WAIT, 0), timezone.now())
    if nxt.step != Step.WAIT:
        participant.save()
    return nxt


def _finish_wave(participant: Participant, spec: PollSpec, wave: int) -> None:
    """Flag straight-lining: one rating given throughout a grid of this wave's ratings."""
    ratings = {
        q.id: q.section for q in spec.wave_questions(wave, participant.arm) if q.kind == "rating"
    }
    grids: dict[str, list[float]] = defaultdict(list)
    rows = Answer.objects.filter(
        participant=participant, wave=wave, question_id__in=ratings, missing=""
    ).values_list("question_id", "number")
    for question_id, number in rows:
        grids[ratings[question_id]].append(number)
    participant.flags = paradata.with_flag(
        participant.flags,
        paradata.STRAIGHTLINING.format(wave=wave),
        paradata.straightlined(grids.values()),
    )


def assign_condition(
    *, participant: Participant, spec: PollSpec, rng: random.Random = _system_random
) -> None:
    """Assign arm, position order and small group; the caller saves the participant.

    The poll row is locked so that concurrent assignments count each other. The arm is random
    but kept close to the control share: the chance of control is the shortfall of control
    participants against ``control_share`` after this one (clamped to 0..1), so the arms never
    drift more than one participant from the target. Position orders rotate through the
    positions within each arm (A first, B first, ...) and small groups fill in order of
    arrival within the arm and the participant's language (see ``_small_group``).
    """
    poll = Poll.objects.select_for_update().get(pk=participant.poll_id)
    arms = {
        arm: (n, highest, free)
        for arm, n, highest, free in _arms(poll, language=participant.language)
    }
    counts = {arm: n for arm, (n, _, _) in arms.items()}
    assigned = sum(counts.values())
    shortfall = poll.control_share * (assigned + 1) - counts.get(Arm.CONTROL, 0)
    arm = Arm.CONTROL if rng.random() < min(max(shortfall, 0.0), 1.0) else Arm.TREATMENT
    in_arm = counts.get(arm, 0)
    positions = [position.key for position in spec.positions]
    if poll.counterbalance_positions and positions:
        shift = in_arm % len(positions)
        positions = positions[shift:] + positions[:shift]
    participant.arm = arm
    participant.position_order = positions
    # Small groups form within a language, so that each member can read the others' reasons:
    # the first group of the arm formed in this language with a free place, else a new group
    # numbered after every group of the arm (numbers stay unique within the arm).
    _, highest, free = arms.get(arm, (0, None, None))
    participant.group = free if free is not None else (highest or 0) + 1
    participant.group_language = participant.language


def _arms(poll: Poll, *, language: str) -> list[tuple[str, int, int | None, int | None]]:
    """Per arm: (arm, participants assigned, highest group number, first group formed in
    ``language`` with a free place). One query, run under the poll's row lock, so concurrent
    assignments see each other and never take the same free place."""
    formed_in_language = Participant.objects.filter(
        poll=poll, arm=OuterRef("arm"), group_language=language
    ).values("group")
    free = (
        Participant.objects.filter(poll=poll, arm=OuterRef("arm"), group__in=formed_in_language)
        .values("group")
        .annotate(members=Count("id"))
        .filter(members__lt=poll.group_size)
        .order_by("group")
        .values("group")[:1]
    )
    return list(
        Participant.objects.filter(poll=poll)
        .assigned()
        .values("arm")
        .annotate(n=Count("id"), highest=Max("group"), free=Subquery(free))
        .values_list("arm", "n", "highest", "free")
    )


@transaction.atomic
def advance_briefing(*, participant_id: int, spec: PollSpec, page: int) -> Place:
    """Move past one briefing page, recording the time spent on it (and on its position)."""
    participant = Participant.objects.select_for_update().get(pk=participant_id)
    posted = Place(Step.BRIEFING, page)
    if participant.step != Step.BRIEFING or page > participant.page:
        return flow.current_place(participant)
    nxt = flow.next_place(spec, arm=participant.arm, place=posted)
    if page < participant.page:
        return nxt
    now = timezone.now()
    seconds = paradata.seconds_between(participant.page_started_at, now)
    participant.step_times = paradata.add_seconds(participant.step_times, Step.BRIEFING, seconds)
    if page < len(participant.position_order):
        key = participant.position_order[page]
        participant.position_seconds = paradata.add_seconds(
            participant.position_seconds, key, seconds
        )
    participant.step, participant.page, participant.page_started_at = nxt.step, nxt.page, now
    participant.save()
    return nxt


@transaction.atomic
def submit_reasons(*, participant_id: int, spec: PollSpec, reasons: list[GivenReason]) -> Place:
    """Store the participant's reasons (at most one per option) and move on to T2."""
    participant = Participant.objects.select_for_update().get(pk=participant_id)
    posted = Place(Step.DELIBERATION, 0)
    if participant.step != Step.DELIBERATION:
        return flow.current_place(participant)
    option_ids = {o.key: o.id for o in spec.options}
    if reasons:
        Reason.objects.bulk_create(
            [
                Reason(
                    poll_id=participant.poll_id,
                    participant=participant,
                    option_id=option_ids[r.option],
                    stance=r.stance,
                    text=r.text,
                    language=participant.language,
                )
                for r in reasons
            ],
            update_conflicts=True,
            unique_fields=["participant", "option"],
            update_fields=["stance", "text", "language"],
        )
    now = timezone.now()
    seconds = paradata.seconds_between(participant.page_started_at, now)
    participant.step_times = paradata.add_seconds(
        participant.step_times, Step.DELIBERATION, seconds
    )
    nxt = _move(participant, flow.next_place(spec, arm=participant.arm, place=posted), now)
    participant.save()
    return nxt


@transaction.atomic
def report_reason(*, participant: Participant, reason_id: int) -> bool:
    """Report another group member's reason as abusive; True when this report is new.

    A reported reason stays readable until a moderator hides it; each participant counts once.
    """
    reason = (
        Reason.objects.select_for_update()
        .visible()
        .filter(
            pk=reason_id,
            poll_id=participant.poll_id,
            participant__arm=participant.arm,
            participant__group=participant.group,
        )
        .exclude(participant=participant)
        .first()
    )
    if reason is None:
        return False
    _, created = ReasonReport.objects.get_or_create(reason=reason, participant=participant)
    if created:
        Reason.objects.filter(pk=reason.pk).update(
            report_count=F("report_count") + 1, state=Reason.State.REPORTED
        )
    return created


def record_language(*, participant: Participant, language: str) -> None:
    """Remember the participant's language choice (link parameter, switcher or browser)."""
    if participant.pk and participant.language != language:
        Participant.objects.filter(pk=participant.pk).update(language=language)
        participant.language = language


def keep_return_link(*, participant_id: int) -> None:
    """Make the participant's return link work (its hash stored) before they must wait: on a
    poll with a deliberation window the first to arrive are invited back to read their group's
    reasons. The link is derived from the public id, so storing its hash again changes nothing."""
    participant = Participant.objects.only("public_id", "return_token_hash").get(pk=participant_id)
    wanted = tokens.hash_token(tokens.return_token(participant.public_id))
    if participant.return_token_hash != wanted:
        Participant.objects.filter(pk=participant_id).update(return_token_hash=wanted)


@transaction.atomic
def withdraw(*, participant_id: int) -> bool:
    """Withdraw a participant from their poll: delete their answers, reasons (with the reports
    and moderation decisions on them), their own reports, their reminder address and the
    participant row itself, and keep only a ``Withdrawal`` that says it happened. False when
    there is nobody to withdraw (already withdrawn: a repeated or concurrent POST).

    Results hold only participants who completed, so a recompute is scheduled (as on
    completion) when this one had; the release rule counts them among those who changed.
    """
    participant = (
        Participant.objects.select_for_update(of=("self",))
        .select_related("poll")
        .filter(pk=participant_id)
        .first()
    )
    if participant is None:
        return False
    # Their reports no longer count against other people's reasons: a reason reported only by
    # them is visible again, as it was before (a moderator's hiding stays).
    reported = list(
        ReasonReport.objects.filter(participant=participant).values_list("reason_id", flat=True)
    )
    if reported:
        Reason.objects.filter(pk__in=reported).update(
            report_count=Greatest(F("report_count") - 1, 0)
        )
        Reason.objects.filter(pk__in=reported, report_count=0, state=Reason.State.REPORTED).update(
            state=Reason.State.VISIBLE
        )
    Withdrawal.objects.create(
        poll_id=participant.poll_id,
        return_token_hash=participant.return_token_hash,
        invitation_token_hash=participant.token_hash,
    )
    completed = participant.completed_at is not None
    poll_id = participant.poll_id
    participant.delete()
    if completed:
        schedule_recompute(poll_id)
    return True
