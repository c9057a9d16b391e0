"""Poll definition files: load, dump, reload, and precise errors that change nothing."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import CommandError, call_command

from surveys.definitions import (
    DefinitionError,
    dump_poll,
    dump_yaml,
    load_definition,
    save_poll,
    validate,
)
from surveys.models import Answer, Participant, Poll, Question
from tests.factories import make_poll, small_definition

SEED = Path(__file__).resolve().parents[2] / "seeds" / "west-putin-exit.yaml"
pytestmark = pytest.mark.django_db


def write(tmp_path: Path, data: dict[str, Any] | str) -> Path:
    path = tmp_path / "poll.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True))
    return path


def problems_of(tmp_path: Path, data: dict[str, Any] | str) -> str:
    path = write(tmp_path, data)
    with pytest.raises(CommandError) as caught:
        call_command("loadpoll", str(path))
    assert Poll.objects.count() == 0, "a bad file must change nothing"
    return str(caught.value)


def test_seed_poll_loads_dumps_and_reloads_identically(tmp_path: Path) -> None:
    call_command("loadpoll", str(SEED))
    poll = Poll.objects.get()
    first = dump_poll(poll)
    dumped = tmp_path / "dumped.yaml"
    call_command("dumppoll", poll.slug, output=str(dumped))
    Poll.objects.all().delete()
    call_command("loadpoll", str(dumped))
    assert dump_poll(Poll.objects.get()) == first
    assert load_definition(dumped) == first


def test_seed_poll_has_the_items_the_method_needs() -> None:
    call_command("loadpoll", str(SEED))
    poll = Poll.objects.get()
    options = poll.options.count()
    assert 6 <= options <= 8
    ratings = poll.questions.filter(kind="rating", option__isnull=False, waves="both")
    assert ratings.count() == options
    assert poll.questions.filter(kind="ranking", waves="both").count() == 1
    assert 4 <= poll.questions.filter(kind="knowledge").count() <= 6
    assert poll.questions.filter(breakdown=True).exists()
    assert poll.questions.filter(waves="t2").exclude(kind="ranking").count() >= 2
    assert poll.languages == ["en", "uk"]
    for question in poll.questions.all():
        assert set(question.text) == {"en", "uk"}


def test_loading_twice_is_idempotent() -> None:
    call_command("loadpoll", str(SEED))
    before = dump_poll(Poll.objects.get())
    call_command("loadpoll", str(SEED))
    assert Poll.objects.count() == 1
    assert dump_poll(Poll.objects.get()) == before


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (lambda d: d.update(colour="red"), "(top level)", "unknown key"),
        (lambda d: d["options"][0].update(weight=3), "options[0]", "unknown key"),
        (lambda d: d.pop("question"), "(top level)", "'question' is a required property"),
        (lambda d: d["positions"][0].pop("body"), "positions[0]", "'body' is a required"),
        (lambda d: d["design"].update(group_size="eight"), "design.group_size", "not of type"),
        (lambda d: d["questions"][0].update(required="yes"), "questions[0].required", "type"),
        (
            lambda d: d["options"][1].update(key="exit"),
            "options[1].key",
            "duplicate key 'exit'",
        ),
        (
            lambda d: d["questions"][1].update(key="rate_exit"),
            "questions[1].key",
            "duplicate key",
        ),
        (
            lambda d: (
                d.update(options=d["options"][:2])
                or d.update(questions=[q for q in d["questions"] if q.get("option") != "escalate"])
            ),
            "questions[2]",
            "a ranking needs at least three options",
        ),
        (
            lambda d: d["questions"][0].update(waves="t1"),
            "questions[0].waves",
            "a paired item must be asked in both waves",
        ),
        (
            lambda d: d["questions"][3].update(waves="t2"),
            "questions[3].waves",
            "a paired item must be asked in both waves",
        ),
        (
            lambda d: d["positions"][1]["summary"].pop("uk"),
            "positions[1].summary",
            "missing text in uk",
        ),
        (
            lambda d: d["questions"][4]["choices"][1]["label"].pop("uk"),
            "questions[4].choices[1].label",
            "missing text in uk",
        ),
        (
            lambda d: d["questions"][0].update(section="nowhere"),
            "questions[0].section",
            "no section",
        ),
        (lambda d: d["questions"][4].update(answer="odesa"), "questions[4].answer", "not one of"),
        (lambda d: d["options"][0].update(position="Z"), "options[0].position", "no position"),
    ],
)
def test_a_broken_definition_names_file_path_and_problem(
    tmp_path: Path, change: Any, where: str, message: str
) -> None:
    data = small_definition()
    change(data)
    error = problems_of(tmp_path, data)
    assert f"{tmp_path / 'poll.yaml'}: {where}" in error
    assert message in error


def test_a_duplicate_yaml_key_is_refused_with_its_path_and_line(tmp_path: Path) -> None:
    text = yaml.safe_dump(small_definition(), sort_keys=False)
    text = text.replace("slug: small-poll\n", "slug: small-poll\nslug: other-poll\n", 1)
    error = problems_of(tmp_path, text)
    assert "slug: duplicate key 'slug' (line" in error


def test_invalid_yaml_is_reported_not_raised(tmp_path: Path) -> None:
    error = problems_of(tmp_path, "slug: [unclosed\n")
    assert "not valid YAML" in error


def test_a_poll_with_answers_refuses_item_changes_and_says_what_to_do(tmp_path: Path) -> None:
    poll = make_poll()
    participant = Participant.objects.create(poll=poll)
    question = poll.questions.get(key="rate_exit")
    Answer.objects.create(
        poll=poll, participant=participant, question=question, wave=1, value=3, number=3
    )
    data = small_definition()
    data["questions"][0]["text"]["en"] = "Changed wording"
    with pytest.raises(DefinitionError) as caught:
        save_poll(data=validate(data, "x.yaml"), source="x.yaml")
    assert "already has 1 answers" in str(caught.value)
    assert "new slug" in str(caught.value)
    assert Question.objects.get(pk=question.pk).text["en"] == "How much do you support exit?"


def test_a_poll_with_answers_still_accepts_design_changes() -> None:
    poll = make_poll()
    participant = Participant.objects.create(poll=poll)
    Answer.objects.create(
        poll=poll, participant=participant, question=poll.questions.first(), wave=1, value=1
    )
    data = small_definition(status="closed")
    save_poll(data=validate(data, "x.yaml"), source="x.yaml")
    assert Poll.objects.get().status == "closed"


def test_dumppoll_of_an_unknown_slug_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match="No poll with slug 'nope'"):
        call_command("dumppoll", "nope")


def test_dump_of_a_poll_just_saved_in_memory_is_plain_yaml() -> None:
    poll = make_poll()
    poll.access = Poll.Access.INVITATION
    text = dump_yaml(poll)
    assert "access: invitation" in text
