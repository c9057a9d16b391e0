"""A published Deliberative Poll written in the definition format as its data ships: the data's
own variable names (Q2A, PARTYBEFORE), choice codes (Democrat, 1), its missing-value codes (77,
98, -8), no briefing, 48 proposals. Each refusal a researcher met before has a test here with
the exact message now shown."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from surveys.definition.files import dump_poll, load_definition, save_poll, validate
from surveys.definition.spec import build_spec
from surveys.journey.flow import shown_steps
from surveys.models import Participant, Poll
from tests.factories import make_poll

pytestmark = pytest.mark.django_db

PROPOSALS = 48


def texts(english: str) -> dict[str, str]:
    return {"en": english}


def research_definition(**overrides: Any) -> dict[str, Any]:
    """The paper poll: no positions, 48 proposals rated 0-10, a democracy item outside the
    proposals' family, party as the breakdown, age with bins, the study's missing codes."""
    options = [
        {"key": f"P{i:02d}", "text": texts(f"Proposal {i}"), "axis": i}
        for i in range(1, PROPOSALS + 1)
    ]
    scale = {"min": 0, "max": 10}
    data: dict[str, Any] = {
        "format": 1,
        "slug": "paper-poll",
        "languages": ["en"],
        "title": texts("A published poll"),
        "question": texts("What should be done?"),
        "missing": {77: "dont_know", 98: "refused", -8: "skipped"},
        "design": {"deliberation": "live"},
        "sections": [
            {"key": "Proposals", "title": texts("Proposals")},
            {"key": "About", "title": texts("About you")},
        ],
        "options": [
            {**option, "short_label": texts(f"P{option['axis']}")} if index == 0 else option
            for index, option in enumerate(options)
        ],
        "questions": [
            {
                "key": "Q1",
                "kind": "rating",
                "section": "Proposals",
                "waves": "both",
                "family": "democracy",
                "text": texts("Democracy works"),
                "scale": scale,
            },
            *(
                {
                    "key": f"Q2{option['key']}",
                    "kind": "rating",
                    "section": "Proposals",
                    "waves": "both",
                    "option": option["key"],
                    "text": texts(f"Support for {option['key']}"),
                    "scale": scale,
                }
                for option in options
            ),
            {
                "key": "PARTYBEFORE",
                "kind": "single",
                "section": "About",
                "waves": "t1",
                "breakdown": True,
                "missing": {99: "refused"},
                "text": texts("Party"),
                "choices": [
                    {"key": "Democrat", "label": texts("Democrat")},
                    {"key": "Republican", "label": texts("Republican")},
                    {"key": "1", "label": texts("Independent")},
                    {"key": "strongly-other", "label": texts("Other")},
                ],
            },
            {
                "key": "AGE",
                "kind": "number",
                "section": "About",
                "waves": "t1",
                "bins": [18, 30, 45, 65],
                "text": texts("Age"),
            },
        ],
    }
    data.update(overrides)
    return data


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


def refused(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    """The problem lines ("path: message") of a refused file; nothing was stored."""
    path = write(tmp_path, data)
    with pytest.raises(CommandError) as caught:
        call_command("loadpoll", str(path))
    assert Poll.objects.count() == 0
    prefix = f"{path}: "
    return [line.removeprefix(prefix) for line in str(caught.value).splitlines() if prefix in line]


def question(data: dict[str, Any], key: str) -> dict[str, Any]:
    return next(q for q in data["questions"] if q["key"] == key)


def test_the_paper_poll_loads_as_written_and_round_trips(tmp_path: Path) -> None:
    path = write(tmp_path, research_definition())
    call_command("loadpoll", str(path))
    poll = Poll.objects.get()
    assert poll.positions.count() == 0
    assert poll.options.count() == PROPOSALS
    assert poll.deliberation == "live"
    assert poll.missing == {"77": "dont_know", "98": "refused", "-8": "skipped"}
    party = poll.questions.get(key="PARTYBEFORE")
    assert party.choice_keys() == ["Democrat", "Republican", "1", "strongly-other"]
    assert party.missing == {"99": "refused"}
    assert poll.questions.get(key="Q1").family == "democracy"
    assert poll.questions.get(key="AGE").bins == [18, 30, 45, 65]
    assert poll.options.get(key="P01").short_label == {"en": "P1"}
    # dumppoll writes every new key back, and the dump loads to the same poll.
    first = dump_poll(poll)
    assert first["missing"] == {"77": "dont_know", "98": "refused", "-8": "skipped"}
    assert first["design"]["deliberation"] == "live"
    assert question(first, "AGE")["bins"] == [18, 30, 45, 65]
    assert question(first, "Q1")["family"] == "democracy"
    assert question(first, "PARTYBEFORE")["missing"] == {"99": "refused"}
    assert first["options"][0]["short_label"] == {"en": "P1"}
    assert first["positions"] == []
    dumped = tmp_path / "dumped.yaml"
    call_command("dumppoll", poll.slug, output=str(dumped))
    assert load_definition(dumped) == first
    Poll.objects.all().delete()
    call_command("loadpoll", str(dumped))
    assert dump_poll(Poll.objects.get()) == first


def test_missing_codes_of_a_question_replace_the_polls_and_minus_99_is_the_default() -> None:
    spec = build_spec(make_poll_from(research_definition()))
    assert spec.missing_codes() == {-8: "skipped", 77: "dont_know", 98: "refused"}
    assert spec.by_key["Q1"].missing_codes() == {-8: "skipped", 77: "dont_know", 98: "refused"}
    assert spec.by_key["PARTYBEFORE"].missing_codes() == {99: "refused"}
    assert spec.by_key["Q1"].missing_code("refused") == 98
    assert spec.by_key["PARTYBEFORE"].missing_code("dont_know") is None
    plain = build_spec(make_poll())
    assert plain.missing_codes() == {-99: "dont_know"}
    assert plain.by_key["rate_exit"].missing_codes() == {-99: "dont_know"}
    assert spec.deliberation == "live" and spec.by_key["AGE"].bins == (18, 30, 45, 65)


def make_poll_from(data: dict[str, Any]) -> Poll:
    poll, _ = save_poll(data=validate(data, "<test>"), source="<test>")
    return poll


def test_a_poll_without_positions_has_no_briefing_step() -> None:
    spec = build_spec(make_poll_from(research_definition(design={"deliberation": "async"})))
    assert "briefing" not in shown_steps(spec, "treatment")
    assert shown_steps(spec, "treatment")[:3] == ("welcome", "t1", "deliberation")
    with_briefing = build_spec(make_poll())
    assert "briefing" in shown_steps(with_briefing, "treatment")


def test_one_position_is_refused_saying_none_or_two(tmp_path: Path) -> None:
    position = {
        "key": "A",
        "title": texts("A"),
        "summary": texts("A"),
        "body": texts("A"),
        "sources": [{"title": "A source"}],
    }
    assert refused(tmp_path, research_definition(positions=[position])) == [
        "positions: 1 position; a briefing needs at least 2 (or none: a poll without a briefing)"
    ]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "2A",
            "questions[0].key: '2A' is not a letter first, then only letters, digits or "
            "underscores (e.g. Q2A, party_before)",
        ),
        (
            "Q 2",
            "questions[0].key: 'Q 2' is not a letter first, then only letters, digits or "
            "underscores (e.g. Q2A, party_before)",
        ),
        (
            "with",
            "questions[0].key: 'with' is an SPSS reserved word "
            "(ALL AND BY EQ GE GT LE LT NE NOT OR TO WITH)",
        ),
        ("Q" * 61, "questions[0].key: 61 characters; at most 60 allowed"),
        (
            "q2p01",
            "questions[1].key: 'Q2P01' differs from 'q2p01' (questions[0]) only in case; keys "
            "must differ in letters, since SPSS and Stata match names whatever the case",
        ),
    ],
)
def test_keys_follow_spss_and_stata_rules_and_say_the_rule_in_words(
    tmp_path: Path, key: str, message: str
) -> None:
    data = research_definition()
    data["questions"][0]["key"] = key
    problems = refused(tmp_path, data)
    assert message in problems, problems
    assert not any("^" in problem or "$" in problem for problem in problems)


def test_keys_of_sixty_characters_and_upper_case_keys_are_accepted(tmp_path: Path) -> None:
    data = research_definition()
    data["questions"][0]["key"] = "Q" * 60
    call_command("loadpoll", str(write(tmp_path, data)))
    assert Poll.objects.get().questions.filter(key="Q" * 60).exists()


def test_a_choice_key_with_a_space_or_the_list_separator_is_refused(tmp_path: Path) -> None:
    data = research_definition()
    choices = question(data, "PARTYBEFORE")["choices"]
    choices[0]["key"] = "strongly agree"
    choices[1]["key"] = "a;b"
    rule = (
        "is not a letter or digit first, then only letters, digits, hyphens, dots or "
        "underscores, no spaces (e.g. Democrat, 1, strongly-agree)"
    )
    at = f"questions[{PROPOSALS + 1}].choices"
    assert refused(tmp_path, data) == [
        f"{at}[0].key: 'strongly agree' {rule}",
        f"{at}[1].key: 'a;b' {rule}",
    ]


def test_a_choice_keyed_dk_is_refused_as_the_questionnaires_dont_know(tmp_path: Path) -> None:
    data = research_definition()
    question(data, "PARTYBEFORE")["choices"][3]["key"] = "dk"
    assert refused(tmp_path, data) == [
        f"questions[{PROPOSALS + 1}].choices[3].key: 'dk' is the questionnaire's own don't-know "
        "answer; offer it with dont_know: true, or give this choice another key"
    ]


def test_sixty_options_load_and_sixty_one_are_refused_with_the_count_and_the_limit(
    tmp_path: Path,
) -> None:
    options = [{"key": f"O{i}", "text": texts("x" * 60), "axis": i} for i in range(61)]
    problems = refused(tmp_path, research_definition(options=options))
    assert "options: 61 items; at most 60 allowed" in problems
    # The message names the count and the limit, never the 4 KB list itself.
    assert all(len(problem) < 300 for problem in problems)
    fits = research_definition(options=options[:60], slug="sixty")
    fits["questions"] = [q for q in fits["questions"] if "option" not in q]
    call_command("loadpoll", str(write(tmp_path, fits)))
    assert Poll.objects.get().options.count() == 60


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (
            {"77": "maybe"},
            "missing.77: 'maybe' is not one of: dont_know, refused, skipped, not_asked",
        ),
        (
            {"DK": "dont_know"},
            "missing: 'DK' is not a whole number of at most nine digits (e.g. 77, -8)",
        ),
        ({}, "missing: empty; at least 1 entry needed"),
    ],
)
def test_a_bad_missing_code_names_the_code_and_what_is_allowed(
    tmp_path: Path, missing: dict[str, Any], message: str
) -> None:
    assert message in refused(tmp_path, research_definition(missing=missing))


def test_a_missing_code_that_is_also_an_answer_is_refused(tmp_path: Path) -> None:
    data = research_definition(missing={7: "dont_know", 98: "refused"})
    question(data, "PARTYBEFORE")["missing"] = {2: "refused"}
    assert refused(tmp_path, data) == [
        f"questions[{PROPOSALS + 1}].missing.2: 2 (refused) is also a choice code (1..4); use a "
        "code outside it",
        "missing.7: 7 (dont_know) is also an answer of Q1, Q2P01, Q2P02 and 46 more; use a code "
        "no question can take as an answer (e.g. 77, 98, -8), or give those questions their "
        "own codes",
    ]


def test_a_scale_through_minus_99_needs_its_own_dont_know_code(tmp_path: Path) -> None:
    data = research_definition()
    data.pop("missing")
    first = data["questions"][0]
    first.update(dont_know=True, scale={"min": -100, "max": -90})
    assert refused(tmp_path, data) == [
        "questions[0].missing: -99, the code of don't know when none is declared, is also a "
        "point of the scale -100..-90; declare a missing-value code outside it (missing: "
        "{777: dont_know})"
    ]
    first["missing"] = {777: "dont_know"}
    call_command("loadpoll", str(write(tmp_path, data)))
    assert Poll.objects.get().questions.get(key="Q1").missing == {"777": "dont_know"}


def test_bins_must_increase_and_belong_to_a_number_question(tmp_path: Path) -> None:
    data = research_definition()
    question(data, "AGE")["bins"] = [18, 65, 30]
    question(data, "PARTYBEFORE")["bins"] = [1]
    at = PROPOSALS + 1
    assert refused(tmp_path, data) == [
        f"questions[{at}].bins: not allowed for a single question",
        f"questions[{at + 1}].bins: bins must increase, each bound above the one before: "
        "[18, 65, 30]",
    ]


def test_participant_ids_are_unique_within_a_poll_not_across_polls() -> None:
    first, second = make_poll(), make_poll(slug="second-poll")
    Participant.objects.create(poll=first, public_id="R0001")
    Participant.objects.create(poll=second, public_id="R0001")
    with pytest.raises(IntegrityError), transaction.atomic():
        Participant.objects.create(poll=first, public_id="R0001")
    assert Participant.objects.filter(public_id="R0001").count() == 2


def test_a_poll_added_in_the_admin_has_a_control_arm_of_half_a_file_none() -> None:
    assert Poll._meta.get_field("control_share").default == 0.5
    assert make_poll_from(research_definition()).control_share == 0
