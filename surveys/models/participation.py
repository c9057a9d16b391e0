"""What participants give: participants, answers in long form (participant x item x wave),
reasons, reports on reasons and moderation decisions; and, kept apart from all of it, the
address for a reminder and the bare record that someone withdrew."""

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from surveys.models.definition import (
    DEFAULT_LANGUAGE,
    MissingKind,
    Poll,
    Wave,
    new_public_id,
)
from surveys.models.items import Option, Question


class ParticipantQuerySet(models.QuerySet["Participant"]):
    def completed(self) -> "ParticipantQuerySet":
        return self.filter(completed_at__isnull=False)

    def in_progress(self) -> "ParticipantQuerySet":
        return self.filter(consented_at__isnull=False, completed_at__isnull=True)

    def invited(self) -> "ParticipantQuerySet":
        return self.filter(token_hash__isnull=False)

    def usable_invitations(self) -> "ParticipantQuerySet":
        return self.invited().filter(revoked_at__isnull=True, completed_at__isnull=True)

    def assigned(self) -> "ParticipantQuerySet":
        return self.exclude(arm="")

    def in_group(self, *, arm: str, group: int | None) -> "ParticipantQuerySet":
        return self.filter(arm=arm, group=group)


class Participant(models.Model):
    class Arm(models.TextChoices):
        TREATMENT = "treatment", _("treatment")
        CONTROL = "control", _("control")

    class Step(models.TextChoices):
        WELCOME = "welcome", _("welcome and consent")
        T1 = "t1", _("first questionnaire")
        NEXT = "next", _("what happens next")
        BRIEFING = "briefing", _("briefing")
        LIVE = "live", _("live deliberation")
        DELIBERATION = "deliberation", _("deliberation")
        WAIT = "wait", _("waiting for the second questionnaire")
        T2 = "t2", _("second questionnaire")
        DONE = "done", _("finished")

    poll = models.ForeignKey(
        Poll, on_delete=models.CASCADE, related_name="participants", verbose_name=_("poll")
    )
    # Unique within its poll: an imported participant keeps the study's own id as given, and
    # the same panel may be imported into several polls.
    public_id = models.CharField(_("participant id"), max_length=64, default=new_public_id)
    token_hash = models.CharField(
        max_length=64, unique=True, null=True, blank=True, help_text="SHA-256 of the invitation."
    )
    label = models.CharField(
        _("label"), max_length=200, blank=True, help_text=_("The invitation's label.")
    )
    contact = models.CharField(
        _("contact"),
        max_length=254,
        blank=True,
        help_text=_("Seen by the poll's organisers only; never exported."),
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    arm = models.CharField(_("group"), max_length=10, choices=Arm.choices, blank=True)
    position_order = models.JSONField(default=list, blank=True, help_text="Position keys shown.")
    option_order = models.JSONField(default=list, blank=True, help_text="Option keys shown.")
    group = models.PositiveIntegerField(
        _("deliberation group"), null=True, blank=True, help_text=_("Small group within its arm.")
    )
    group_language = models.CharField(
        max_length=10,
        blank=True,
        help_text="The language the small group was formed in (the participant's at assignment; "
        "their language may change later, the group's does not).",
    )
    weight = models.FloatField(null=True, blank=True)
    language = models.CharField(_("language"), max_length=10, default=DEFAULT_LANGUAGE)
    step = models.CharField(_("step"), max_length=12, choices=Step.choices, default=Step.WELCOME)
    page = models.PositiveSmallIntegerField(default=0, help_text="Page inside a questionnaire.")
    consented_at = models.DateTimeField(_("agreed to take part"), null=True, blank=True)
    briefed_at = models.DateTimeField(
        _("briefing started"),
        null=True,
        blank=True,
        help_text=_("The first questionnaire's answers are final from here."),
    )
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    t1_completed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the first questionnaire was finished."
    )
    return_token_hash = models.CharField(
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        help_text="SHA-256 of the personal return link, set when the participant must come back.",
    )
    step_times = models.JSONField(
        default=dict,
        blank=True,
        help_text="{step: seconds spent}: welcome, t1, briefing, deliberation, t2; filled as each "
        "page is submitted (one page counts at most 30 minutes).",
    )
    position_seconds = models.JSONField(
        default=dict, blank=True, help_text="{position key: seconds on its briefing page}"
    )
    flags = models.JSONField(
        _("quality flags"),
        default=list,
        blank=True,
        help_text=_(
            "Same rating across a whole rating page (in either questionnaire), or completed "
            "faster than the poll's fewest plausible seconds."
        ),
    )
    entry_key = models.CharField(
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        help_text="One-time key of the consent form: a repeated consent makes one participant.",
    )
    page_started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the page the participant is on was first shown."
    )
    imported = models.BooleanField(default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ParticipantQuerySet.as_manager()

    class Meta:
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["poll", "public_id"], name="participant_public_id_unique"
            ),
            models.CheckConstraint(
                condition=Q(weight__isnull=True) | Q(weight__gt=0), name="participant_weight_pos"
            ),
            models.CheckConstraint(
                condition=Q(arm="") | Q(arm="treatment") | Q(arm="control"),
                name="participant_arm_valid",
            ),
        ]
        indexes: ClassVar = [models.Index(fields=["poll", "arm", "group"])]

    def __str__(self) -> str:
        return self.public_id


class AnswerQuerySet(models.QuerySet["Answer"]):
    def long_form(self) -> "models.QuerySet[Answer]":
        """Rows of the long export: (participant public id, item key, wave, value, number,
        missing kind, answered at); pseudonymous ids only, never tokens or labels."""
        return self.values_list(
            "participant__public_id",
            "question__key",
            "wave",
            "value",
            "number",
            "missing",
            "answered_at",
        )


class Answer(models.Model):
    """One answer in long form: (participant, question, wave) -> value.

    ``value`` holds the canonical answer (int, float, choice key, list of keys, text; null for
    "don't know"). ``number`` repeats it as a float where it has one (rating, number, the 1-based
    code of a single choice) so results read a numeric column in bulk without parsing JSON.
    ``poll`` is denormalised from the participant so a poll's answers are read without a join.
    ``missing`` says why an answer has no value (don't know, refused, skipped, not asked).
    """

    Missing = MissingKind

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="answers")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="answers")
    wave = models.PositiveSmallIntegerField(choices=Wave.choices)
    value = models.JSONField(null=True, blank=True)
    number = models.FloatField(null=True, blank=True)
    missing = models.CharField(
        max_length=10,
        choices=MissingKind.choices,
        blank=True,
        default="",
        help_text=_(
            "Why the answer has no value (don't know, refused, skipped, not asked); empty: "
            "it has one."
        ),
    )
    answered_at = models.DateTimeField(auto_now=True)

    objects = AnswerQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["participant", "question", "wave"], name="answer_once_per_wave"
            ),
            models.CheckConstraint(condition=Q(wave__in=[1, 2]), name="answer_wave_valid"),
            models.CheckConstraint(
                condition=Q(missing="") | Q(number__isnull=True), name="answer_missing_no_number"
            ),
        ]
        indexes: ClassVar = [models.Index(fields=["poll", "answered_at"])]

    def __str__(self) -> str:
        return f"{self.participant_id}:{self.question_id}:T{self.wave}"


class ReasonQuerySet(models.QuerySet["Reason"]):
    def visible(self) -> "ReasonQuerySet":
        return self.exclude(state=Reason.State.HIDDEN)

    def moderation_queue(self) -> "ReasonQuerySet":
        return self.order_by(
            models.Case(models.When(state=Reason.State.REPORTED, then=0), default=1),
            "-created_at",
        )


class Reason(models.Model):
    class Stance(models.TextChoices):
        FOR = "for", _("for")
        AGAINST = "against", _("against")

    class State(models.TextChoices):
        VISIBLE = "visible", _("visible")
        REPORTED = "reported", _("reported")
        HIDDEN = "hidden", _("hidden")

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="reasons")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="reasons")
    option = models.ForeignKey(Option, on_delete=models.CASCADE, related_name="reasons")
    stance = models.CharField(max_length=8, choices=Stance.choices)
    text = models.TextField(max_length=2000)
    language = models.CharField(
        max_length=10,
        default=DEFAULT_LANGUAGE,
        help_text="The language the reason was written in (the participant's at the time).",
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.VISIBLE)
    report_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ReasonQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["created_at"]
        verbose_name = _("reason")
        verbose_name_plural = _("reasons")
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["participant", "option"], name="reason_once_per_option")
        ]

    def __str__(self) -> str:
        return f"{self.stance}: {self.text[:40]}"


class ReasonReport(models.Model):
    """A participant's report of another's reason as abusive: once per participant and reason."""

    reason = models.ForeignKey(Reason, on_delete=models.CASCADE, related_name="reports")
    participant = models.ForeignKey(
        Participant, on_delete=models.CASCADE, related_name="reason_reports"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["reason", "participant"], name="report_once")
        ]

    def __str__(self) -> str:
        return f"{self.participant_id} reports {self.reason_id}"


class ModerationDecision(models.Model):
    """Who hid or restored a reason, and when: the moderation log."""

    class Action(models.TextChoices):
        HIDE = "hide", _("hide")
        RESTORE = "restore", _("restore")

    reason = models.ForeignKey(Reason, on_delete=models.CASCADE, related_name="decisions")
    action = models.CharField(max_length=8, choices=Action.choices)
    moderator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("moderation decision")
        verbose_name_plural = _("moderation decisions")
        ordering: ClassVar = ["-decided_at"]

    def __str__(self) -> str:
        return f"{self.action} {self.reason_id}"


class ReminderAddress(models.Model):
    """An email address given on the see-you page for one reminder when the participant's
    second questionnaire opens: kept apart from the answers (never exported, never in results),
    and deleted as soon as the reminder is sent, when the participant withdraws and when the
    poll closes. One per participant."""

    participant = models.OneToOneField(
        Participant, on_delete=models.CASCADE, related_name="reminder_address"
    )
    # Denormalised from the participant, so closing a poll deletes its addresses in one query.
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="reminder_addresses")
    email = models.EmailField()
    site = models.CharField(
        max_length=200,
        help_text="The site's address as the participant reached it (e.g. https://polls.example"
        ".org): the reminder's link is built on it, from a host Django's ALLOWED_HOSTS admitted.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"reminder for {self.participant_id}"


class Withdrawal(models.Model):
    """That someone withdrew from a poll, and when: nothing about who, what they answered or
    which group they were in. The link hashes (SHA-256 of the withdrawn participant's return
    and invitation links, as the participant row held them) let those links say "you have
    withdrawn" instead of "this link does not work"; without the link itself they name nobody."""

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="withdrawals")
    withdrawn_at = models.DateTimeField(auto_now_add=True)
    return_token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    invitation_token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["-withdrawn_at"]

    def __str__(self) -> str:
        return f"withdrawal from {self.poll_id}"


@receiver(post_save, sender=Poll)
def forget_reminders_of_closed_poll(sender: type[Poll], instance: Poll, **kwargs: Any) -> None:
    """Closing a poll deletes the reminder addresses given for it, however it is closed
    through the models (the reminder task sweeps up after bulk updates)."""
    if instance.status == Poll.Status.CLOSED:
        ReminderAddress.objects.filter(poll=instance).delete()
