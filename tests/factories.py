"""Small keyword-only factories for polls and participants."""

import copy
from typing import Any

from surveys.definition.files import save_poll, validate
from surveys.models import Poll


def texts(english: str) -> dict[str, str]:
    return {"en": english, "uk": f"{english} (uk)"}


def consideration(key: str, scale: dict[str, Any], waves: str = "both") -> dict[str, Any]:
    """A statement of the Deliberative Reason Index's considerations battery."""
    return {
        "key": key,
        "kind": "rating",
        "section": "policy",
        "waves": waves,
        "family": "considerations",
        "text": texts(f"Statement {key}"),
        "scale": scale,
    }


def leaning_question(choices: list[str]) -> dict[str, Any]:
    """The background item that breaks results down, with one choice per key ("left" -> Left)."""
    return {
        "key": "leaning",
        "kind": "single",
        "section": "background",
        "waves": "t1",
        "breakdown": True,
        "text": texts("Your political leaning"),
        "choices": [{"key": c, "label": texts(c.title())} for c in choices],
    }


def small_definition(**overrides: Any) -> dict[str, Any]:
    """A complete, valid poll definition with three options and every common kind of item."""
    options = [
        {"key": key, "text": texts(f"Option {key}"), "position": pos, "axis": axis}
        for axis, (key, pos) in enumerate([("exit", "A"), ("aid", "A"), ("escalate", "B")], 1)
    ]
    rating_scale = {
        "min": 0,
        "max": 10,
        "min_label": texts("Strongly oppose"),
        "max_label": texts("Strongly support"),
    }
    definition: dict[str, Any] = {
        "format": 1,
        "slug": "small-poll",
        "status": "open",
        "languages": ["en", "uk"],
        "title": texts("A small poll"),
        "question": texts("What should be done?"),
        "intro": texts("Welcome."),
        "design": {"control_share": 0.5, "group_size": 4, "min_subgroup_size": 2},
        "sections": [
            {"key": "policy", "title": texts("Policies")},
            {"key": "ranking", "title": texts("Ranking")},
            {"key": "knowledge", "title": texts("Knowledge")},
            {"key": "background", "title": texts("About you")},
            {"key": "evaluation", "title": texts("Looking back")},
        ],
        "positions": [
            {
                "key": key,
                "title": texts(f"Position {key}"),
                "summary": texts(f"Summary {key}"),
                "body": texts(f"Body of **{key}**"),
                "sources": [{"title": f"Source {key}", "publisher": "Publisher"}],
            }
            for key in ("A", "B")
        ],
        "options": options,
        "questions": [
            *(
                {
                    "key": f"rate_{option['key']}",
                    "kind": "rating",
                    "section": "policy",
                    "waves": "both",
                    "dont_know": True,
                    "option": option["key"],
                    "text": texts(f"How much do you support {option['key']}?"),
                    "scale": rating_scale,
                }
                for option in options
            ),
            {
                "key": "rank",
                "kind": "ranking",
                "section": "ranking",
                "waves": "both",
                "text": texts("Rank the options"),
            },
            {
                "key": "k_capital",
                "kind": "knowledge",
                "section": "knowledge",
                "waves": "both",
                "dont_know": True,
                "text": texts("Capital of Ukraine?"),
                "choices": [
                    {"key": "kyiv", "label": texts("Kyiv")},
                    {"key": "lviv", "label": texts("Lviv")},
                ],
                "answer": "kyiv",
            },
            leaning_question(["left", "right"]),
            {
                "key": "balanced",
                "kind": "rating",
                "section": "evaluation",
                "waves": "t2",
                "text": texts("The material was balanced"),
                "scale": rating_scale,
            },
        ],
    }
    definition.update(copy.deepcopy(overrides))
    return definition


def make_poll(**overrides: Any) -> Poll:
    data = validate(small_definition(**overrides), "<test>")
    poll, _ = save_poll(data=data, source="<test>")
    return poll
