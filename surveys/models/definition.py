"""A poll's definition: poll, sections, positions, options, questions.

Participant-facing texts are stored as ``{language: text}`` mappings: English is required (a
database constraint says so), other languages are optional and fall back to English.
"""

import re
import secrets
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from surveys.definition import schedule

DEFAULT_LANGUAGE = "en"
Texts = dict[str, str]


def localized(texts: Texts | None, language: str) -> str:
    """The text in ``language``, falling back to English, then to nothing."""
    if not texts:
        return ""
    return texts.get(language) or texts.get(DEFAULT_LANGUAGE, "")


def has_english(field: str) -> Q:
    return Q(**{f"{field}__has_key": DEFAULT_LANGUAGE})


def default_languages() -> list[str]:
    return [DEFAULT_LANGUAGE]


def new_public_id() -> str:
    # Pseudonymous and unguessable, short enough to read aloud to a support desk.
    return secrets.token_hex(8)


class MissingKind(models.TextChoices):
    """Why an answer has no substantive value (an empty kind: it has one)."""

    DONT_KNOW = "dont_know", _("don't know")
    REFUSED = "refused", _("refused")
    SKIPPED = "skipped", _("skipped")
    NOT_ASKED = "not_asked", _("not asked")


# The code a file uses for "don't know" when its definition declares no missing-value codes.
DEFAULT_MISSING_CODES: dict[str, str] = {"-99": MissingKind.DONT_KNOW.value}


def missing_code_problem(code: Any, kind: Any) -> str | None:
    """Why ``code: kind`` may not be a missing-value code, or None. Codes are whole numbers
    (kept as their decimal text, the form JSON object keys take) because SPSS and Stata
    declare missing values on numeric variables."""
    text = str(code).strip()
    if isinstance(code, bool) or not re.fullmatch(r"-?[0-9]{1,9}", text):
        return f"missing-value code '{str(code)[:40]}' is not a whole number (e.g. 77, -8)"
    if kind not in MissingKind.values:
        allowed = ", ".join(MissingKind.values)
        return f"missing-value code {text}: kind '{str(kind)[:40]}' is not one of {allowed}"
    return None


def validate_missing_codes(value: Any) -> None:
    """Missing-value codes are a mapping {code: kind}; see ``missing_code_problem``."""
    if not isinstance(value, dict):
        raise ValidationError(
            _('Missing-value codes must be a mapping like {"77": "dont_know"}.'), code="missing"
        )
    for code, kind in value.items():
        problem = missing_code_problem(code, kind)
        if problem:
            raise ValidationError(problem, code="missing")


class Wave(models.IntegerChoices):
    T1 = 1, "T1"
    T2 = 2, "T2"


class PollQuerySet(models.QuerySet["Poll"]):
    def open(self) -> "PollQuerySet":
        return self.filter(status=Poll.Status.OPEN)

    def organised_by(self, user: Any) -> "PollQuerySet":
        """Polls the user manages in the admin: all for an active staff superuser, otherwise
        those they organise; none for anyone inactive or not staff."""
        if not getattr(user, "is_active", False) or not getattr(user, "is_staff", False):
            return self.none()
        return self if user.is_superuser else self.filter(organisers=user)

    def readable_by(self, user: Any) -> "PollQuerySet":
        """Polls whose results the user may read, in the admin and the API alike: all for an
        active superuser, otherwise those they organise (``organised_by``: staff only, so taking
        someone off the staff ends what organising gave them, API tokens included) and those
        granted to them (the researchers' grants live in the results app, as ``Grant.poll``'s
        ``grants``)."""
        if not getattr(user, "is_active", False) or not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        # Two subqueries instead of one join across both relations: no duplicate rows, so no
        # DISTINCT that would get in the way of the admin's annotations and ordering.
        organised = Poll.objects.organised_by(user).values("pk")
        granted = Poll.objects.filter(grants__user=user).values("pk")
        return self.filter(Q(pk__in=organised) | Q(pk__in=granted))


class Poll(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        OPEN = "open", _("open")
        CLOSED = "closed", _("closed")

    class Access(models.TextChoices):
        OPEN = "open", _("open link")
        INVITATION = "invitation", _("invitation only")

    slug = models.SlugField(_("slug"), unique=True, max_length=80)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    languages = models.JSONField(
        _("languages"),
        default=default_languages,
        help_text=_("The languages participants may choose; English is always one."),
    )
    title = models.JSONField(_("title"), help_text=_("The poll's name, as participants see it."))
    question = models.JSONField(
        _("question"),
        help_text=_("The question the poll asks, stated neutrally, without taking a side."),
    )
    intro = models.JSONField(
        _("welcome text"),
        default=dict,
        blank=True,
        help_text=_("Shown on the welcome page. **Bold**, *italics*, lists and links work."),
    )

    class Deliberation(models.TextChoices):
        ASYNC = "async", _("online, at each participant's own pace")
        LIVE = "live", _("live, in small groups at a set time")
        BOTH = "both", _("live and online")

    control_share = models.FloatField(
        _("control share"),
        default=0.5,
        help_text=_(
            "The share of participants who answer both questionnaires without the briefing and "
            "deliberation, to compare with those who have them: 0.5 is half. 0: no control group."
        ),
    )
    deliberation = models.CharField(
        _("deliberation"),
        max_length=5,
        choices=Deliberation.choices,
        default=Deliberation.ASYNC,
        help_text=_("How the treatment group deliberates between the two questionnaires."),
    )
    missing = models.JSONField(
        _("missing-value codes"),
        default=dict,
        blank=True,
        validators=[validate_missing_codes],
        help_text=_(
            'Codes that mean a missing answer, for every question: {"77": "dont_know", '
            '"98": "refused", "-8": "skipped"}. A question\'s own codes override these.'
        ),
    )
    counterbalance_positions = models.BooleanField(
        _("alternate the order of the positions"),
        default=True,
        help_text=_("Half of the participants read the positions in the other order."),
    )
    randomise_option_order = models.BooleanField(
        _("shuffle the options"),
        default=True,
        help_text=_("Each participant sees the options in an order of their own."),
    )
    group_size = models.PositiveSmallIntegerField(
        _("group size"), default=8, help_text=_("People per deliberation group, 2 to 50.")
    )
    access = models.CharField(
        _("who may take part"), max_length=12, choices=Access.choices, default=Access.OPEN
    )
    min_subgroup_size = models.PositiveSmallIntegerField(
        _("smallest group shown"),
        default=5,
        help_text=_("Subgroups with fewer participants are not shown in results."),
    )
    min_seconds = models.PositiveIntegerField(
        _("fewest plausible seconds"),
        default=300,
        help_text=_("Completing faster than this is flagged as implausible."),
    )
    results_public = models.BooleanField(
        _("results shown while open"),
        default=False,
        help_text=_("Show aggregate results to participants before the poll closes."),
    )
    organisers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        related_name="organised_polls",
        blank=True,
        verbose_name=_("organisers"),
        help_text=_("Staff who edit and run this poll, and read its results."),
    )
    # The schedule (all optional; none of them set: the poll runs in one sitting).
    t1_opens = models.DateTimeField(
        _("first questionnaire opens"),
        null=True,
        blank=True,
        help_text=_("Before this moment the poll's link shows when it opens. Empty: at once."),
    )
    t1_closes = models.DateTimeField(
        _("first questionnaire closes"),
        null=True,
        blank=True,
        help_text=_("After this moment nobody new can start. Empty: open until the poll closes."),
    )
    t2_opens = models.DateTimeField(
        _("second questionnaire opens"),
        null=True,
        blank=True,
        help_text=_(
            "One date for everyone, both groups. Participants who finish the first "
            "questionnaire earlier get a personal return link for this date."
        ),
    )
    t2_after = models.DurationField(
        _("second questionnaire opens after"),
        null=True,
        blank=True,
        help_text=_(
            "Instead of a date: the time from each participant's first questionnaire to their "
            "second, e.g. '7 00:00:00' for seven days. Fill in this or the date, not both."
        ),
    )
    # What the welcome page tells before anyone agrees: who runs the poll, how to reach them,
    # how long it takes (how to withdraw follows from the schedule and the contact).
    run_by = models.JSONField(
        _("run by"),
        default=dict,
        blank=True,
        help_text=_('{language: text}: who runs the poll, e.g. {"en": "The Civic Lab, Kyiv"}.'),
    )
    contact_email = models.EmailField(
        _("contact email"),
        blank=True,
        help_text=_("Where participants write with questions or to withdraw; on the welcome page."),
    )
    duration_minutes = models.PositiveSmallIntegerField(
        _("minutes to take part"),
        null=True,
        blank=True,
        help_text=_("About how long the whole poll takes, both questionnaires together."),
    )
    deliberation_closes = models.DateTimeField(
        _("deliberation closes"),
        null=True,
        blank=True,
        help_text=_(
            "Shown to the deliberating group as the end of the discussion. It must come "
            "before the second questionnaire opens."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = PollQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["-created_at"]
        verbose_name = _("poll")
        verbose_name_plural = _("polls")
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(control_share__gte=0) & Q(control_share__lt=1),
                name="poll_control_share_range",
            ),
            models.CheckConstraint(
                condition=Q(group_size__gte=2) & Q(group_size__lte=50),
                name="poll_group_size_range",
            ),
            models.CheckConstraint(condition=Q(min_subgroup_size__gte=1), name="poll_min_k"),
            models.CheckConstraint(condition=has_english("title"), name="poll_title_en"),
            models.CheckConstraint(condition=has_english("question"), name="poll_question_en"),
            models.CheckConstraint(
                condition=Q(t2_opens__isnull=True) | Q(t2_after__isnull=True),
                name="poll_t2_one_rule",
            ),
        ]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        problems = schedule.problems(schedule.Schedule.of(self))
        if problems:
            raise ValidationError(problems)

    def has_answers(self) -> bool:
        return self.answers.exists()

    def results_visible_to_participants(self) -> bool:
        """Participants see aggregate results once the poll closes, or earlier if chosen."""
        return self.status == Poll.Status.CLOSED or self.results_public

    @property
    def run_by_text(self) -> str:
        """Who runs the poll, in the active language: participant pages render inside
        ``translation.override(the participant's language)``."""
        return localized(self.run_by, translation.get_language() or DEFAULT_LANGUAGE)


SOURCE_URL = URLValidator(schemes=["http", "https"])


def source_url_problem(url: Any) -> str | None:
    """Why ``url`` may not be a source's link, or None. A source's url becomes a link on the
    briefing page and in the admin preview, where ``javascript:`` would run in the admin's
    origin: only http and https addresses are links."""
    if url is None or url == "":
        return None
    if not isinstance(url, str):
        return "a source's url must be text"
    try:
        SOURCE_URL(url)
    except ValidationError:
        return f"'{url[:100]}' is not an http or https address"
    return None


def validate_sources(value: Any) -> None:
    """Sources are a list of {title, publisher, url, date}; see ``source_url_problem``."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValidationError(
            _("Sources must be a list of {title, publisher, url, date}."), code="sources"
        )
    for number, source in enumerate(value, 1):
        problem = source_url_problem(source.get("url"))
        if problem:
            raise ValidationError(
                _("Source %(number)s: %(problem)s."),
                code="source_url",
                params={"number": number, "problem": problem},
            )
