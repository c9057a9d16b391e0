"""The ordered, keyed parts of a poll: sections, positions, options and questions.

They live apart from ``Poll`` (surveys/models/definition.py) only to keep each module short;
``surveys.models`` exports both.
"""

from typing import Any, ClassVar

from django.db import models
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from surveys.models.definition import (
    Poll,
    has_english,
    validate_missing_codes,
    validate_sources,
)


class PollItem(models.Model):
    """Common shape of the ordered, keyed parts of a poll."""

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, verbose_name=_("poll"))
    key = models.CharField(_("key"), max_length=60)
    order = models.PositiveIntegerField(
        _("order"), default=0, help_text=_("Lower numbers come first.")
    )

    class Meta:
        abstract = True
        ordering: ClassVar = ["order", "id"]

    def __str__(self) -> str:
        return self.key


class Section(PollItem):
    title = models.JSONField(_("title"))
    intro = models.JSONField(_("introduction"), default=dict, blank=True)

    class Meta(PollItem.Meta):
        default_related_name = "sections"
        verbose_name = _("section")
        verbose_name_plural = _("sections")
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["poll", "key"], name="section_key_unique"),
            models.CheckConstraint(condition=has_english("title"), name="section_title_en"),
        ]


class Position(PollItem):
    title = models.JSONField(_("title"))
    summary = models.JSONField(_("summary"))
    body = models.JSONField(
        _("text"), help_text=_("**Bold**, *italics*, lists and links work; nothing else is shown.")
    )
    sources = models.JSONField(
        _("sources"),
        default=list,
        blank=True,
        validators=[validate_sources],
        help_text=_("Each source's title, publisher, date and link (http or https)."),
    )

    class Meta(PollItem.Meta):
        default_related_name = "positions"
        verbose_name = _("position")
        verbose_name_plural = _("positions")
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["poll", "key"], name="position_key_unique"),
            models.CheckConstraint(condition=has_english("title"), name="position_title_en"),
            models.CheckConstraint(condition=has_english("body"), name="position_body_en"),
        ]


class Option(PollItem):
    text = models.JSONField(_("text"))
    short_label = models.JSONField(
        _("short label"),
        default=dict,
        blank=True,
        help_text=_("A few words naming the option in charts and tables."),
    )
    position = models.ForeignKey(
        Position,
        on_delete=models.SET_NULL,
        related_name="options",
        null=True,
        blank=True,
        verbose_name=_("position"),
        help_text=_("The position that argues for this option, if any."),
    )
    axis = models.IntegerField(
        _("place on the axis"),
        help_text=_(
            "Where the option stands between the poll's two ends, as a whole number: options "
            "are ordered by it in charts. Each option needs its own number."
        ),
    )
    arguments_for = models.JSONField(_("arguments for"), default=dict, blank=True)
    arguments_against = models.JSONField(_("arguments against"), default=dict, blank=True)

    class Meta(PollItem.Meta):
        default_related_name = "options"
        verbose_name = _("option")
        verbose_name_plural = _("options")
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["poll", "key"], name="option_key_unique"),
            models.UniqueConstraint(fields=["poll", "axis"], name="option_axis_unique"),
            models.CheckConstraint(condition=has_english("text"), name="option_text_en"),
        ]


class Question(PollItem):
    class Kind(models.TextChoices):
        RATING = "rating", _("rating scale")
        SINGLE = "single", _("single choice")
        MULTIPLE = "multiple", _("multiple choice")
        RANKING = "ranking", _("ranking of the options")
        NUMBER = "number", _("number")
        TEXT = "text", _("free text")
        KNOWLEDGE = "knowledge", _("knowledge item")

    class Waves(models.TextChoices):
        T1 = "t1", "T1"
        T2 = "t2", "T2"
        BOTH = "both", _("T1 and T2 (paired)")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    section = models.ForeignKey(
        Section,
        on_delete=models.CASCADE,
        related_name="questions",
        verbose_name=_("section"),
        help_text=_("The page of the questionnaire it is on."),
    )
    waves = models.CharField(
        _("asked in"),
        max_length=4,
        choices=Waves.choices,
        default=Waves.BOTH,
        help_text=_("T1: the first questionnaire; T2: the second, after the deliberation."),
    )
    required = models.BooleanField(_("required"), default=True)
    dont_know = models.BooleanField(
        _("offer “Don't know”"),
        default=False,
        help_text=_("Participants may answer that they don't know."),
    )
    breakdown = models.BooleanField(
        _("break results down by it"),
        default=False,
        help_text=_("Single choice only: results are also shown per answer to this question."),
    )
    text = models.JSONField(_("text"))
    help = models.JSONField(_("help text"), default=dict, blank=True)
    option = models.ForeignKey(
        Option,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="ratings",
        verbose_name=_("option rated"),
    )
    scale_min = models.IntegerField(_("lowest value"), null=True, blank=True)
    scale_max = models.IntegerField(_("highest value"), null=True, blank=True)
    min_label = models.JSONField(_("lowest value's label"), default=dict, blank=True)
    max_label = models.JSONField(_("highest value's label"), default=dict, blank=True)
    choices = models.JSONField(
        _("choices"),
        default=list,
        blank=True,
        help_text=_("The answers offered, each with its label and its key in data files."),
    )
    answer = models.CharField(
        _("correct answer"),
        max_length=60,
        blank=True,
        help_text=_("Knowledge items: the key of the correct choice."),
    )
    number_min = models.FloatField(_("smallest number"), null=True, blank=True)
    number_max = models.FloatField(_("largest number"), null=True, blank=True)
    arms = models.JSONField(
        _("groups asked"),
        default=list,
        blank=True,
        help_text=_(
            "Second-questionnaire questions only: tick the groups asked, e.g. only the "
            "treatment group for questions about the briefing. None ticked: everyone."
        ),
    )
    missing = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_missing_codes],
        help_text='{code: kind}, e.g. {"77": "dont_know"}: overrides the poll\'s codes.',
    )
    family = models.CharField(
        _("family"),
        max_length=40,
        blank=True,
        help_text=_(
            "Questions of one family are adjusted together for multiple comparisons (Holm, "
            "Benjamini-Hochberg). Rating questions of the family “considerations”, asked at "
            "both waves, are the statements of the Deliberative Reason Index."
        ),
    )
    bins = models.JSONField(
        default=list,
        blank=True,
        help_text="Number questions: the lower bounds of the groups of a breakdown, e.g. "
        "[18, 30, 45, 65].",
    )

    class Meta(PollItem.Meta):
        default_related_name = "questions"
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["poll", "key"], name="question_key_unique"),
            models.CheckConstraint(condition=has_english("text"), name="question_text_en"),
            models.CheckConstraint(
                condition=~Q(kind="rating")
                | (Q(scale_min__isnull=False) & Q(scale_max__gt=models.F("scale_min"))),
                name="question_rating_scale",
            ),
            models.CheckConstraint(
                condition=~Q(kind="knowledge") | ~Q(answer=""), name="question_knowledge_key"
            ),
            models.CheckConstraint(
                condition=Q(breakdown=False) | Q(kind="single"), name="question_breakdown_single"
            ),
        ]

    def in_wave(self, wave: int) -> bool:
        return self.waves == Question.Waves.BOTH or self.waves == f"t{wave}"

    @property
    def paired(self) -> bool:
        return self.waves == Question.Waves.BOTH

    def choice_keys(self) -> list[str]:
        return [choice["key"] for choice in self.choices]


@receiver(post_save, sender=Section)
@receiver(post_save, sender=Position)
@receiver(post_save, sender=Option)
@receiver(post_save, sender=Question)
@receiver(post_delete, sender=Section)
@receiver(post_delete, sender=Position)
@receiver(post_delete, sender=Option)
@receiver(post_delete, sender=Question)
def touch_poll(sender: type[PollItem], instance: PollItem, **kwargs: Any) -> None:
    """An edited item bumps its poll's ``updated_at``, the version of the cached markup."""
    Poll.objects.filter(pk=instance.poll_id).update(updated_at=timezone.now())
