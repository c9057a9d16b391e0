"""The journey's forms without HTTP: answers in canonical form, messages, summaries, drafts."""

import pytest
from django.http import QueryDict
from django.utils import translation

from surveys.definition.spec import PollSpec, poll_spec
from surveys.journey.forms import QuestionnaireForm, ReasonsForm, page_form, reasons_form
from surveys.models import Participant
from tests.factories import make_poll

pytestmark = pytest.mark.django_db
ORDER = ["exit", "aid", "escalate"]


@pytest.fixture
def spec() -> PollSpec:
    return poll_spec(make_poll())


def data(**values: str | list[str]) -> QueryDict:
    query = QueryDict(mutable=True)
    for name, value in values.items():
        query.setlist(name.replace("__", "."), value if isinstance(value, list) else [value])
    return query


def page(spec: PollSpec, step: str, number: int, posted: QueryDict) -> QuestionnaireForm:
    participant = Participant(arm=Participant.Arm.TREATMENT, option_order=ORDER, language="en")
    return page_form(posted, spec=spec, participant=participant, place=(step, number))


def test_a_rating_page_gives_numbers_and_dont_know(spec: PollSpec) -> None:
    posted = {"wave": "1", "q-rate_exit": "3", "q-rate_aid": "dk", "q-rate_escalate": "10"}
    form = page(spec, "t1", 0, data(**posted))
    assert form.is_valid(), form.errors
    given = {q.key: g for q, g in form.given()}
    assert (given["rate_exit"].value, given["rate_exit"].number) == (3, 3.0)
    assert given["rate_aid"].dont_know and given["rate_aid"].value is None
    assert given["rate_escalate"].value == 10


def test_the_summary_counts_missing_and_wrong_answers_and_links_the_first(spec: PollSpec) -> None:
    with translation.override("en"):
        form = page(spec, "t1", 0, data(**{"wave": "1", "q-rate_aid": "11"}))
        assert not form.is_valid()
        assert form.summary() == [
            ("#q-rate_exit", "2 questions need an answer."),
            ("#q-rate_aid", "1 answer needs to be corrected."),
        ]
        errors = form.question_errors()
        assert list(errors) == ["q-rate_exit", "q-rate_aid", "q-rate_escalate"]
        assert "is not on the scale" in errors["q-rate_aid"]


def test_the_summary_is_in_ukrainian_with_its_plural(spec: PollSpec) -> None:
    with translation.override("uk"):
        form = page(spec, "t1", 0, data(wave="1"))
        assert not form.is_valid()
        assert form.summary()[0] == ("#q-rate_exit", "3 запитання потребують відповіді.")


def test_a_field_of_another_page_or_wave_is_named_and_refused(spec: PollSpec) -> None:
    posted = {"wave": "1", "q-rate_exit": "1", "q-rate_aid": "1", "q-rate_escalate": "1"}
    form = page(spec, "t1", 0, data(**posted, **{"q-k_capital": "kyiv", "q-balanced": "3"}))
    assert not form.is_valid()
    messages = [message for _, message in form.summary()]
    assert "“q-k_capital” is on another page of this questionnaire." in messages
    assert "“q-balanced” belongs to the other questionnaire; it is not asked here." in messages
    form = page(spec, "t1", 0, data(**{**posted, "wave": "2"}))
    assert not form.is_valid()
    assert "This form belongs to the other questionnaire. Nothing was saved." in str(form.errors)


def test_a_ranking_is_the_options_in_rank_order(spec: PollSpec) -> None:
    form = page(
        spec,
        "t1",
        1,
        data(**{"wave": "1", "q-rank.exit": "2", "q-rank.aid": "3", "q-rank.escalate": "1"}),
    )
    assert form.is_valid(), form.errors
    [(question, given)] = form.given()
    assert question.key == "rank" and given is not None
    assert given.value == ["escalate", "exit", "aid"]


@pytest.mark.parametrize(
    ("ranks", "message"),
    [
        ({"exit": "1", "aid": "1", "escalate": "2"}, "used more than once: 1"),
        ({"exit": "1", "aid": "", "escalate": "2"}, "Give every option a rank, or none at all."),
        ({"exit": "1", "aid": "9", "escalate": "2"}, "Ranks go from 1 to 3."),
    ],
)
def test_a_rank_is_never_taken_from_another_row_silently(
    spec: PollSpec, ranks: dict[str, str], message: str
) -> None:
    form = page(spec, "t1", 1, data(wave="1", **{f"q-rank__{k}": v for k, v in ranks.items()}))
    assert not form.is_valid()
    assert message in " ".join(form.question_errors().values())


def test_an_unranked_optional_ranking_is_no_answer() -> None:
    spec = poll_spec(make_poll())
    question = spec.by_key["rank"]
    form = page(spec, "t1", 1, data(wave="1"))
    if question.required:
        assert not form.is_valid()
        assert form.unanswered() == {"q-rank"}
    else:
        assert form.is_valid()
        assert form.given() == [(question, None)]


def reasons(posted: QueryDict) -> ReasonsForm:
    return ReasonsForm(posted, option_keys=ORDER, option_texts={"exit": "Offer an exit now"})


def test_a_reason_needs_a_stance_only_when_it_has_text() -> None:
    form = reasons(data(**{"r-exit.text": "Fewer deaths.", "r-aid.stance": "for"}))
    assert not form.is_valid()
    assert form.summary() == [
        (
            "#r-exit-stance",
            "You wrote a reason about “Offer an exit now”: say whether it is for or against.",
        )
    ]
    form = reasons(
        data(**{"r-exit.text": "Fewer deaths.", "r-exit.stance": "for", "r-aid.stance": "for"})
    )
    assert form.is_valid()
    assert [(r.option, r.stance, r.text) for r in form.reasons()] == [
        ("exit", "for", "Fewer deaths.")
    ]


def test_drafts_come_back_as_typed_valid_or_not() -> None:
    form = reasons(data(**{"r-exit.text": "Half typed", "r-escalate.stance": "against"}))
    assert form.drafts() == {
        "exit": ("", "Half typed"),
        "aid": ("", ""),
        "escalate": ("against", ""),
    }


def test_the_reasons_form_names_options_in_the_participant_language(spec: PollSpec) -> None:
    participant = Participant(option_order=ORDER, language="uk")
    form = reasons_form(data(**{"r-exit.text": "x"}), spec=spec, participant=participant)
    assert not form.is_valid()
    assert "Option exit (uk)" in form.summary()[0][1]
