"""The seed poll's content: sources said for what they are, time-bound claims stamped with their
time, and no knowledge item answered by the wording of another question."""

import re
from pathlib import Path
from typing import Any

import pytest

from surveys.definition.files import load_definition, save_poll
from surveys.models import Participant

SEED = Path(__file__).resolve().parents[2] / "seeds" / "west-putin-exit.yaml"
ARTICLE = re.compile(r"^(the|a|an) ", re.I)


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    return load_definition(SEED)


def test_every_source_has_a_title_date_and_description_in_every_language(
    seed: dict[str, Any],
) -> None:
    for position in seed["positions"]:
        assert position["sources"], position["key"]
        for source in position["sources"]:
            for field in ("title", "date", "about"):
                texts = source.get(field)
                assert isinstance(texts, dict), (position["key"], field)
                assert set(texts) == set(seed["languages"]), (position["key"], field)
                assert all(text.strip() for text in texts.values())
            # A translated title keeps the original, so the source can still be found.
            assert source["title"]["en"] in source["title"]["uk"]
            assert source["title"]["uk"] != source["title"]["en"]


def test_the_undated_source_says_it_is_undated_and_the_dated_one_gives_its_month(
    seed: dict[str, Any],
) -> None:
    dates = {p["key"]: p["sources"][0]["date"] for p in seed["positions"]}
    assert dates["A"] == {"en": "March 2022", "uk": "березень 2022 року"}
    assert dates["B"]["en"].startswith("undated")
    assert dates["B"]["uk"].startswith("без дати")
    about = {p["key"]: p["sources"][0]["about"]["en"] for p in seed["positions"]}
    assert "news digest" in about["A"]
    assert "volunteer opinion" in about["B"]


def shown_before_or_beside_knowledge(seed: dict[str, Any]) -> list[str]:
    """Texts a participant reads in the questionnaire: every question's text and choices and
    every option (the ranking lists them)."""
    texts: list[str] = []
    for option in seed["options"]:
        texts += option["text"].values()
    for question in seed["questions"]:
        texts += question["text"].values()
        for choice in question.get("choices", []):
            texts += choice["label"].values()
    return texts


def test_no_knowledge_answer_appears_in_the_wording_of_the_questionnaire(
    seed: dict[str, Any],
) -> None:
    shown = shown_before_or_beside_knowledge(seed)
    for question in seed["questions"]:
        if question["kind"] != "knowledge":
            continue
        answer = next(c for c in question["choices"] if c["key"] == question["answer"])
        for label in answer["label"].values():
            core = ARTICLE.sub("", label).lower()
            users = [text for text in shown if core in text.lower() and text != label]
            assert users == [], (question["key"], core, users)


def paragraphs(markdown: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n|\n\s*- ", markdown) if p.strip()]


# Facts that were true when the sources were written (March 2022), in each language.
TIME_BOUND = {
    "en": ("Blinken", "turned down every", "reasonable basis", "75%", "oligarchs", "Belarus"),
    "uk": ("Блінкен", "відкидав кожен", "обґрунтовані підстави", "75%", "олігарх", "Білорусь"),
}


def test_time_bound_claims_are_stamped_with_their_time(seed: dict[str, Any]) -> None:
    texts: list[tuple[str, str]] = []
    for position in seed["positions"]:
        texts += [(lang, text) for lang, text in position["body"].items()]
    for option in seed["options"]:
        for field in ("arguments_for", "arguments_against"):
            texts += [(lang, text) for lang, text in option[field].items()]
    checked = 0
    for language, text in texts:
        for paragraph in paragraphs(text):
            if any(marker in paragraph for marker in TIME_BOUND[language]):
                checked += 1
                assert "2022" in paragraph or "написання" in paragraph or "writing" in paragraph, (
                    paragraph
                )
    assert checked >= 16
    english = " ".join(text for language, text in texts if language == "en")
    for present in ("has so far turned down", "sees a reasonable basis", "sanctions cover only"):
        assert present not in english


@pytest.mark.django_db
def test_the_ukrainian_briefing_shows_the_sources_in_ukrainian(
    rf: Any, seed: dict[str, Any]
) -> None:
    from surveys.journey.views import render_step

    poll, _ = save_poll(data=seed, source=str(SEED))
    participant = Participant(poll=poll, arm="treatment", position_order=["B", "A"], language="uk")
    request = rf.get("/admin/preview/")
    html = render_step(
        request, poll=poll, participant=participant, step="briefing", page=0, preview=True
    ).content.decode()
    assert (
        "<cite>Забуті уроки переговорів (англійською: Forgotten Negotiation Lessons)</cite>" in html
    )
    assert "автора й видання не вказано" in html
    assert "без дати; за згаданими подіями" in html
    assert "думка волонтера" in html
    assert "{&#x27;en&#x27;" not in html
    english = Participant(poll=poll, arm="treatment", position_order=["A", "B"], language="en")
    html = render_step(
        request, poll=poll, participant=english, step="briefing", page=0, preview=True
    ).content.decode()
    assert "(March 2022)" in html
    assert "A news digest in English." in html
