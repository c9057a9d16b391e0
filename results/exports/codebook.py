"""The codebook: every exported variable with its wording, type, measure level, value labels and
missing-value codes. Exports, imports and the data package all read the variables from here, so
the files and their documentation cannot drift apart.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from results import tables
from surveys.definition.spec import QuestionSpec, poll_spec
from surveys.models import Participant, Poll, Question, localized

# Missing answers in the wide layout carry the code of their kind (see ``missing_codes``: the
# definition's codes, or DK_CODE for don't know), declared user-missing in SPSS and written as
# extended missing values (.a don't know, .b refused, .c skipped, .d not asked) in Stata; text
# variables carry the code as text. Empty means not answered.
DK_CODE = -99
DK_TEXT = "-99"
LIST_SEPARATOR = ";"
STEPS = [step.value for step in Participant.Step if step != Participant.Step.DONE]

MEASURE = {
    Question.Kind.RATING: "ordinal",
    Question.Kind.SINGLE: "nominal",
    Question.Kind.KNOWLEDGE: "nominal",
    Question.Kind.NUMBER: "scale",
    Question.Kind.MULTIPLE: "nominal",
    Question.Kind.RANKING: "nominal",
    Question.Kind.TEXT: "nominal",
}
NUMERIC_KINDS = {
    Question.Kind.RATING,
    Question.Kind.SINGLE,
    Question.Kind.KNOWLEDGE,
    Question.Kind.NUMBER,
}


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    type: str  # integer | number | string | boolean | datetime
    measure: str  # nominal | ordinal | scale
    item: str = ""
    wave: int | None = None
    kind: str = ""
    value_labels: dict[int, str] = field(default_factory=dict)
    missing: list[Any] = field(default_factory=list)
    missing_kinds: dict[int, str] = field(default_factory=dict)  # code -> kind
    answer_key: str = ""
    wording: dict[str, str] = field(default_factory=dict)
    notes: str = ""

    @property
    def numeric(self) -> bool:
        return self.type in {"integer", "number"}


def design_variables(poll: Poll) -> list[Variable]:
    positions = list(poll.positions.order_by("order", "id").values_list("key", flat=True))
    sep = f"'{LIST_SEPARATOR}'"
    variables = [
        Variable("participant", "Pseudonymous participant id", "string", "nominal"),
        Variable(
            "arm",
            "Experimental arm",
            "string",
            "nominal",
            notes="treatment (deliberated) or control; empty if never assigned.",
        ),
        Variable("group", "Small group within the arm", "integer", "nominal"),
        Variable(
            "position_order",
            "Order in which the positions were shown",
            "string",
            "nominal",
            notes=f"Position keys separated by {sep}, first shown first ({', '.join(positions)}).",
        ),
        Variable(
            "option_order",
            "Order in which the options were shown",
            "string",
            "nominal",
            notes=f"Option keys separated by {sep}.",
        ),
        Variable("weight", "Survey weight (empty: unweighted)", "number", "scale"),
        Variable("language", "Language the participant answered in", "string", "nominal"),
        Variable(
            "imported",
            "Imported from another tool or paper (1) or answered here (0)",
            "integer",
            "nominal",
            value_labels={0: "answered here", 1: "imported"},
        ),
        Variable("started_at", "Consent time (ISO 8601, UTC)", "datetime", "scale"),
        Variable(
            "completed_at",
            "Completion time (ISO 8601, UTC); empty if unfinished",
            "datetime",
            "scale",
        ),
        Variable(
            "flags",
            "Quality flags",
            "string",
            "nominal",
            notes=f"Flags separated by {sep}, e.g. too_fast, straight_lining.",
        ),
    ]
    variables += [
        Variable(f"seconds_{step}", f"Seconds spent on the {step} step", "number", "scale")
        for step in STEPS
    ]
    variables += [
        Variable(
            f"seconds_position_{key}", f"Seconds spent reading position {key}", "number", "scale"
        )
        for key in positions
    ]
    return variables


# The code a missing answer is exported with when its kind has none declared (an answer given
# here, where the poll declares no code for it).
FALLBACK_CODES = {"dont_know": DK_CODE, "refused": -98, "skipped": -97, "not_asked": -96}
MISSING_LABELS = {
    "dont_know": "Don't know",
    "refused": "Refused",
    "skipped": "Skipped",
    "not_asked": "Not asked",
}


def missing_codes(question: QuestionSpec) -> dict[int, str]:
    """Code -> missing kind for the question's column: the codes its definition declares (the
    question's, else the poll's, ``QuestionSpec.missing_codes``), and -99 for don't know where
    the question offers it and no code says it. Without declared codes, a question that offers
    no "don't know" has no missing code at all (as the web form offers none)."""
    if not (question.missing or question.poll_missing or question.dont_know):
        return {}
    codes = question.missing_codes()
    if question.dont_know and "dont_know" not in codes.values():
        codes[DK_CODE] = "dont_know"
    return dict(sorted(codes.items()))


def choice_labels(question: QuestionSpec) -> dict[int, str]:
    """A choice question's codes (``QuestionSpec.choice_codes``, the one rule) with their
    English labels."""
    labels = dict(question.choices)
    return {code: localized(labels[key], "en") for key, code in question.choice_codes().items()}


def question_variables(question: Question, spec: QuestionSpec) -> list[Variable]:
    kind = Question.Kind(question.kind)
    value_labels: dict[int, str] = {}
    if kind in (Question.Kind.SINGLE, Question.Kind.KNOWLEDGE):
        value_labels = choice_labels(spec)
    elif kind == Question.Kind.RATING:
        if question.min_label:
            value_labels[question.scale_min] = localized(question.min_label, "en")
        if question.max_label:
            value_labels[question.scale_max] = localized(question.max_label, "en")
    numeric = kind in NUMERIC_KINDS
    codes = missing_codes(spec)
    if numeric:
        value_labels.update({code: MISSING_LABELS[k] for code, k in codes.items()})
    type_ = "number" if kind == Question.Kind.NUMBER else "integer" if numeric else "string"
    notes = {
        Question.Kind.SINGLE: "Choice code (1-based, see value labels).",
        Question.Kind.KNOWLEDGE: "Choice code (1-based); the correct one is the answer key.",
        Question.Kind.MULTIPLE: f"Chosen keys separated by '{LIST_SEPARATOR}'.",
        Question.Kind.RANKING: f"Option keys separated by '{LIST_SEPARATOR}', best first.",
        Question.Kind.RATING: f"Scale {question.scale_min} to {question.scale_max}.",
    }.get(kind, "")
    waves = [1, 2] if question.paired else [1 if question.waves == Question.Waves.T1 else 2]
    return [
        Variable(
            name=f"{question.key}_t{wave}",
            label=f"{localized(question.text, 'en')} (T{wave})"[:250],
            type=type_,
            measure=MEASURE[kind],
            item=question.key,
            wave=wave,
            kind=kind,
            value_labels=value_labels,
            missing=list(codes) if numeric else [str(code) for code in codes],
            missing_kinds=codes,
            answer_key=question.answer,
            wording=question.text,
            notes=notes,
        )
        for wave in waves
    ]


def poll_questions(poll: Poll) -> list[Question]:
    return list(poll.questions.select_related("option").order_by("order", "id"))


def wide_variables(poll: Poll, questions: list[Question] | None = None) -> list[Variable]:
    questions = poll_questions(poll) if questions is None else questions
    spec = poll_spec(poll)
    items = [v for q in questions for v in question_variables(q, spec.by_key[q.key])]
    return design_variables(poll) + items


LONG_VARIABLES = [
    Variable("participant", "Pseudonymous participant id", "string", "nominal"),
    Variable("item", "Question key (see the wide variables for wording)", "string", "nominal"),
    Variable(
        "wave",
        "Wave: 1 = T1 (before), 2 = T2 (after)",
        "integer",
        "nominal",
        value_labels={1: "T1", 2: "T2"},
    ),
    Variable(
        "value",
        "Canonical answer: number, choice key, JSON list of keys, or text",
        "string",
        "nominal",
        notes="Empty when the answer is missing (see missing).",
    ),
    Variable("number", "Numeric answer (rating, number, 1-based choice code)", "number", "scale"),
    Variable("dont_know", "Answered don't know", "boolean", "nominal"),
    Variable(
        "missing",
        "Why the answer has no value: dont_know, refused, skipped or not_asked",
        "string",
        "nominal",
        notes="Empty when the answer has a value. Imported codes are kept as their kind.",
    ),
    Variable("answered_at", "When the answer was last saved (ISO 8601, UTC)", "datetime", "scale"),
]


# Stata allows 32 characters; the writer (pyreadstat) names a variable's value-label set after
# it with a number appended, and that name has the same limit, so 4 places are kept for it.
STATA_NAME_LENGTH = 28


def stata_names(names: list[str]) -> dict[str, str]:
    """Each variable's name in the Stata file: names over STATA_NAME_LENGTH are cut, their wave
    suffix kept, and numbered where two cuts would collide."""
    taken = {name.casefold() for name in names if len(name) <= STATA_NAME_LENGTH}
    short = {}
    for name in names:
        if len(name) <= STATA_NAME_LENGTH:
            short[name] = name
            continue
        stem, _, wave = name.rpartition("_")
        suffix = f"_{wave}" if stem and wave in ("t1", "t2") else ""
        stem = stem if suffix else name
        candidate = stem[: STATA_NAME_LENGTH - len(suffix)] + suffix
        number = 1
        while candidate.casefold() in taken:
            mark = f"_{number}{suffix}"
            candidate = stem[: STATA_NAME_LENGTH - len(mark)] + mark
            number += 1
        taken.add(candidate.casefold())
        short[name] = candidate
    return short


def codebook_rows(poll: Poll) -> list[dict[str, Any]]:
    """One flat row per wide variable: the human-readable codebook (CSV)."""
    rows = []
    variables = wide_variables(poll)
    stata = stata_names([v.name for v in variables])
    for v in variables:
        rows.append(
            {
                "variable": v.name,
                "stata_name": stata[v.name],
                "item": v.item,
                "wave": v.wave or "",
                "kind": v.kind,
                "type": v.type,
                "measure": v.measure,
                "label": v.label,
                **{f"wording_{lang}": v.wording.get(lang, "") for lang in poll.languages},
                "value_labels": json.dumps(v.value_labels, ensure_ascii=False)
                if v.value_labels
                else "",
                "missing_codes": LIST_SEPARATOR.join(
                    f"{code}={kind}" for code, kind in v.missing_kinds.items()
                ),
                "answer_key": v.answer_key,
                "notes": v.notes,
            }
        )
    return rows


FRICTIONLESS_TYPES = {
    "integer": "integer",
    "number": "number",
    "string": "string",
    "boolean": "boolean",
    "datetime": "datetime",
}


def table_schema(variables: list[Variable]) -> dict[str, Any]:
    fields = []
    for v in variables:
        spec: dict[str, Any] = {
            "name": v.name,
            "title": v.label,
            "type": FRICTIONLESS_TYPES[v.type],
        }
        if v.notes:
            spec["description"] = v.notes
        if v.value_labels:
            spec["categories"] = [{"value": k, "label": lbl} for k, lbl in v.value_labels.items()]
        if v.missing:
            spec["missingValues"] = ["", *map(str, v.missing)]
        fields.append(spec)
    return {"fields": fields, "missingValues": [""]}


# How the results tables keep small groups out of reach (results.stats.disclosure); the data
# package and the API documentation carry this text with the tables.
DISCLOSURE = """\
Small cells. No results row describes fewer than the poll's minimum subgroup size (k)
participants, and no such group can be recovered by adding or subtracting published numbers.
Rows are cells: an arm (all, treatment, control) whole or split by a breakdown answer or small
group. Cells add up: treatment + control + the unassigned = all; a breakdown's answers + those
who gave none = their arm; an arm's small groups + those in none = the arm. A cell under k is
withheld (primary suppression); then, in every such sum that has a withheld cell, at least one
more cell is withheld (the next smallest; the whole breakdown when only one other answer is
left) until the withheld cells together hold k or more, so the published total minus the
published parts describes no small group (complementary suppression). Participants without a
breakdown answer, without a small group or without an arm are never rows but count as withheld
cells: when fewer than k, they are protected like one. The rule is applied per population:
complete pairs of each item (the row), everyone who answered at each wave (the n_t1/n_t2,
percentage and distribution columns of that wave) and those with a substantive answer at each
wave (the *_valid_* shares, pct_valid and the options rankings), decided together:
in each cell, a wave's answerers are its complete pairs plus those outside them (don't know or
no answer at the other wave), a cell that is never published. Any two numbers about the same
cell, one over the wave's answerers and one over the pairs (percentages against transitions,
a distribution against transitions, a ranking's mean against the item's mean, knowledge shares
against means), differ by exactly those outside, so 1 to k-1 of them withhold that wave's
answerers, with complements across cells as above. The row keeps that wave's columns computed
over its complete pairs instead, and says so: population_t1/population_t2 in items,
item_details, knowledge and rankings, population in distributions, are 'answered' or 'pairs';
over pairs, n_t equals n_pairs and pct_dk, pct_refused and pct_skipped are 0 (a pair has a
substantive answer at both waves). Publishing
them over the pairs loses least: the pairs are the row's own, already protected population,
where withholding would empty most per-arm distributions of a poll in which a few people say
don't know. The knowledge index's pct_correct is empty unless the index and every item describe
those asked. Weighted rows follow the unweighted decision, counting participants with a
positive weight.
Difference-in-differences, gaps, small-group and option rows appear only where the cells they
combine are shown; small-group summaries average only the groups shown; opinion-group sizes
and migration counts follow the same rule. Empty means withheld or undefined, never zero.
Arm sizes (meta n_treatment, n_control) are always published: they reveal no answer."""


# How a measure is defined, referenced and read, for the tables that need more than their
# columns' descriptions (STATISTICS.md style): the data package's schema of the table carries it.
DRI_METHOD = """\
Deliberative Reason Index (DRI). Reference: Niemeyer, S., Veri, F., Dryzek, J. S. and
Bächtiger, A. (2023), "How Deliberation Happens: Enabling Deliberative Reason", American
Political Science Review.

Inputs, per participant and wave: ratings of the considerations (the paired rating questions of
family 'considerations', any scale) and an ordering of the options (the poll's ranking
question; without one, the ratings of the options, ranked per participant with ties averaged).
A participant enters when they rated every consideration and ordered every option at both
waves, so T1 and T2 describe the same people. Participant weights are not used (a pair has no
weight of its own).

- Pair (i, j): r_C = Spearman correlation of their considerations ratings, r_P = of their
  preference orderings (scipy.stats.spearmanr); d_ij = abs(r_C - r_P) / sqrt(2), the pair's
  distance from the line r_C = r_P.
- Group DRI = (lambda - 2 mean(d)) / lambda over the group's pairs, lambda = sqrt(2) / 2; it
  equals 1 - 2 mean abs(r_C - r_P).
- Individual DRI: the same formula over the pairs that include the participant, within their
  small group (within their arm when they are in none).
- Pairs left out: pairs where r_C or r_P is undefined (one of the two gave one value to every
  item); counted in pairs_left_out, not used.
- Change: dri_t2 - dri_t1 per group, and a paired t-test of individual DRI, T2 against T1
  (scipy.stats.ttest_rel), in dri_change.

Groups: each small group (its members' pairs); each arm and the whole sample ('all') over every
pair of their participants, across groups. The control arm is numbered in batches of the group
size as it arrives, though it never meets: its group rows and its participants' individual DRI
compare each with a batch of the same size, the counterfactual of a small group. Statements on
different scales are each put on 0..1 by their own scale's ends before a participant's ratings
are ranked. Over more than 12,500,000 pairs (an arm of about 5,000 people) the DRI, and the
individual DRI of participants compared with a whole arm, are estimated from a fixed-seed random
sample of 500,000 pairs (standard error about 0.001); the pair counts stay exact and
meta.dri.sampled lists the rows. Small-cell protection counts the participants who enter both
waves' pairs (a participant who gave one value to every statement, or to every option, enters
none). When the index cannot be computed, meta.dri.reason says why.

How to read it. DRI is 1 when every pair's agreement on the considerations matches its agreement
on what to do: people who see the issue alike want the same things, and people who disagree on
the options disagree for reasons they share. It falls as the two part ways: 0 when pairs are
half a correlation off the line on average, negative beyond that (the formal floor is -3, pairs
at opposite corners). The theory predicts it rises from T1 to T2 in groups that deliberated and
not in the control arm; compare the change with the control arm's. The scatter of the pairs'
(r_C, r_P) points on the admin's results page shows where the index comes from: deliberation
should draw the cloud towards the diagonal. Like any correlation, r_C is unstable over few
statements: batteries of about 12 or more statements are usual. The DRI describes consistency,
not agreement: a group can be consistent and divided.
"""
METHODS = {"dri": DRI_METHOD, "dri_change": DRI_METHOD}


def results_schema(table: str) -> dict[str, Any]:
    columns = tables.TABLES[table]
    method = METHODS.get(table)
    return {
        "fields": [{"name": name, "description": text} for name, text in columns.items()],
        "missingValues": [""],
        "description": f"{method}\n{DISCLOSURE}" if method else DISCLOSURE,
    }
