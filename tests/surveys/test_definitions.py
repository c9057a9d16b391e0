"""Poll definition files: load, dump, reload, and precise errors that change nothing."""

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from surveys.admin.authoring import import_definition
from surveys.definition.files import (
    MAX_FILE_BYTES,
    DefinitionError,
    dump_poll,
    dump_yaml,
    load_definition,
    parse_yaml,
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


def assert_changed_definition_refused(
    tmp_path: Path, change: Callable[[dict[str, Any]], Any], where: str, message: str
) -> None:
    """The small definition, broken by ``change``, is refused naming the file, the path and why."""
    data = small_definition()
    change(data)
    error = problems_of(tmp_path, data)
    assert f"{tmp_path / 'poll.yaml'}: {where}" in error
    assert message in error


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
        (
            lambda d: d["design"].update(group_size="eight"),
            "design.group_size",
            "expected a whole number, not 'eight'",
        ),
        (
            lambda d: d["questions"][0].update(required="yes"),
            "questions[0].required",
            "expected true or false, not 'yes'",
        ),
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
    assert_changed_definition_refused(tmp_path, change, where, message)


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


def alias_bomb(levels: int) -> str:
    """The "billion laughs": each level is nine aliases of the one before (9**levels values)."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_once_with_the_path_where_it_blows_up(
    tmp_path: Path,
) -> None:
    text = alias_bomb(9)
    assert len(text.encode()) < 600
    started = time.monotonic()
    error = problems_of(tmp_path, text)
    assert time.monotonic() - started < 2
    assert "a5: expands to more than 100000 values through aliases" in error


def test_an_alias_bomb_through_the_admin_import_is_refused_at_once() -> None:
    user = User.objects.create_user("organiser", is_staff=True)
    started = time.monotonic()
    with pytest.raises(DefinitionError, match="expands to more than"):
        import_definition(text=alias_bomb(7), source="bomb.yaml", by=user)
    assert time.monotonic() - started < 2
    assert not Poll.objects.exists()


def test_aliases_that_stay_small_still_work(tmp_path: Path) -> None:
    text = yaml.safe_dump(small_definition(), sort_keys=False)
    text = text.replace("  min_label:\n", "  min_label: &oppose\n", 1)
    assert "&oppose" in text
    path = write(tmp_path, text)
    assert load_definition(path)["slug"] == "small-poll"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("&a [*a]\n", "[0]: an alias refers to a value that contains it (line 1)"),
        ("[" * 20_000 + "]" * 20_000 + "\n", "(file): nested more than 30 levels deep"),
        ("- " * 20_000 + "x\n", "(file): nested more than 30 levels deep (line 1)"),
        ("a: " + "[" * 40 + "]" * 40 + "\n", "(file): nested more than 30 levels deep"),
        (
            "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 40)),
            "a29[0]: nested more than 30 levels deep (line 29)",
        ),
        ("!!python/object/apply:os.system ['touch /tmp/pwned']\n", "tag:yaml.org,2002:python"),
        ("slug: !!python/name:os.system\n", "slug: the tag tag:yaml.org,2002:python/name"),
        ("sources:\n  - date: 2024-13-45\n", "sources[0].date: '2024-13-45' cannot be read"),
        ("? [a, b]\n: 1\n", "a key must be plain text"),
        ("format: 1" + "0" * 5000 + "\n", "format: '1000"),
    ],
)
def test_yaml_that_would_crash_or_run_code_is_refused_with_its_path(
    tmp_path: Path, text: str, message: str
) -> None:
    error = problems_of(tmp_path, text)
    assert message in error


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (lambda d: d["options"][0].update(axis=10**20), "options[0].axis", "maximum of 1000"),
        (lambda d: d["design"].update(min_seconds=10**20), "design.min_seconds", "maximum"),
        (lambda d: d["design"].update(min_subgroup_size=10**6), "design.min_subgroup_size", "max"),
        (lambda d: d["design"].update(control_share=math.nan), "design.control_share", "finite"),
        (lambda d: d["questions"][0]["scale"].update(max=10**9), "questions[0].scale.max", "100"),
        (lambda d: d["questions"][0]["scale"].update(max=99), "questions[0].scale", "21 points"),
        (
            lambda d: d.update(slug="small-poll\n"),
            "slug",
            "'small-poll\\n' is not lower-case letters and digits in words joined by single "
            "hyphens (e.g. climate-2026)",
        ),
        (
            lambda d: d["questions"][0].update(key="rate\n"),
            "questions[0].key",
            "'rate\\n' is not a letter first, then only letters, digits or underscores",
        ),
        (
            lambda d: d.update(languages=["en", "uk\n"]),
            "languages[1]",
            "'uk\\n' is not a lower-case language code (e.g. en, uk, pt-br)",
        ),
        (
            lambda d: d["positions"][0]["sources"][0].update(url="javascript:alert(1)"),
            "positions[0].sources[0].url",
            "'javascript:alert(1)' is not an http or https address without spaces",
        ),
    ],
)
def test_out_of_range_numbers_and_trailing_newlines_are_refused(
    tmp_path: Path, change: Any, where: str, message: str
) -> None:
    assert_changed_definition_refused(tmp_path, change, where, message)


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    text = yaml.safe_dump(small_definition()) + "#" * MAX_FILE_BYTES + "\n"
    error = problems_of(tmp_path, text)
    assert f"(file): the file has {len(text):,} bytes; the limit is 1,000,000" in error
    with pytest.raises(DefinitionError, match="the limit is 1,000,000"):
        parse_yaml(text, "upload.yaml")
