"""Authoring on the poll's admin page as a first-time organiser does it: no JSON typed, no key
typed, parts linked in one save, errors as sentences naming the field, only the poll's
languages shown, and a poll with answers read as text (issue 13)."""

import re

import pytest
from django.urls import reverse
from django.utils import translation

from surveys.models import Answer, Participant, Poll, Position, Question
from tests.factories import make_poll
from tests.surveys.admin_fixtures import client_for, form_fields, staff

pytestmark = pytest.mark.django_db


def page(client, poll: Poll) -> tuple[str, dict[str, list[str]]]:
    url = reverse("admin:surveys_poll_change", args=[poll.pk])
    return url, form_fields(client.get(url).content.decode(), "poll_form")


def errors(response) -> list:
    """The form's errors by field, to read when a save is refused."""
    found = [dict(response.context["adminform"].form.errors)]
    for formset in response.context["inline_admin_formsets"]:
        found += [(formset.formset.prefix, e) for e in formset.formset.errors if e]
        found += formset.formset.non_form_errors()
    return found


def add_row(payload: dict[str, list[str]], prefix: str, fields: dict[str, str]) -> str:
    """A new row of an inline list, as the admin's "Add another" button makes it."""
    index = int(payload[f"{prefix}-TOTAL_FORMS"][0])
    payload[f"{prefix}-TOTAL_FORMS"] = [str(index + 1)]
    for name, value in fields.items():
        payload[f"{prefix}-{index}-{name}"] = [value]
    return f"{prefix}-{index}"


def choice_rows(payload: dict[str, list[str]], field: str, labels: list[str]) -> None:
    """Choices typed into the rows editor: English labels only, no keys."""
    payload[f"{field}-rows"] = [str(len(labels))]
    for index, label in enumerate(labels):
        payload[f"{field}-{index}-label-en"] = [label]
        payload[f"{field}-{index}-key"] = [""]


@pytest.fixture
def organiser_and_poll():
    poll = make_poll()
    return client_for(staff("olga", polls=(poll,))), poll


def test_a_position_and_an_option_linked_to_it_are_added_in_one_save_without_typing_keys(
    organiser_and_poll,
) -> None:
    client, poll = organiser_and_poll
    url, payload = page(client, poll)
    add_row(
        payload,
        "positions",
        {
            "key": "C",  # the page's script proposes the next free letter
            "order": "3",
            "title_en": "Wait and see",
            "summary_en": "Neither now.",
            "body_en": "Nothing **yet**.",
            "sources-rows": "1",
            "sources-0-title-en": "A report",
            "sources-0-publisher-en": "The Lab",
            "sources-0-url": "https://example.org/report",
            "sources-0-extra": "",
        },
    )
    add_row(
        payload,
        "options",
        {"key": "", "order": "4", "position": "C", "axis": "9", "text_en": "Hold a referendum"},
    )
    response = client.post(url, payload)
    assert response.status_code == 302, errors(response)
    position = poll.positions.get(key="C")
    assert position.sources == [
        {"title": "A report", "publisher": "The Lab", "url": "https://example.org/report"}
    ]
    option = poll.options.get(axis=9)
    assert option.key == "hold_a_referendum"
    assert option.position == position


def test_a_question_of_each_choice_kind_gets_keys_from_its_texts_and_its_answer_by_a_tick(
    organiser_and_poll,
) -> None:
    client, poll = organiser_and_poll
    url, payload = page(client, poll)
    section = str(poll.sections.get(key="knowledge").key)
    prefix = add_row(
        payload,
        "questions",
        {
            "key": "",
            "order": "20",
            "kind": "knowledge",
            "section": section,
            "waves": "both",
            "text_en": "Which river flows through Kyiv?",
            "required": "on",
        },
    )
    choice_rows(payload, f"{prefix}-choices", ["The Dnipro", "The Danube", "The Dnipro"])
    payload[f"{prefix}-choices-correct"] = ["0"]
    response = client.post(url, payload)
    # Two choices with the same label would get the same key: the second one is numbered.
    assert response.status_code == 302, errors(response)
    question = poll.questions.get(key="which_river_flows_through_kyiv")
    assert question.choice_keys() == ["the_dnipro", "the_danube", "the_dnipro_2"]
    assert question.choices[1]["label"] == {"en": "The Danube"}
    assert question.answer == "the_dnipro"
    # The fields of other kinds are not stored for a knowledge item.
    assert question.scale_min is None and question.min_label == {}


def test_a_rating_without_a_scale_is_refused_with_a_sentence_naming_the_scale(
    organiser_and_poll,
) -> None:
    client, poll = organiser_and_poll
    url, payload = page(client, poll)
    section = poll.sections.get(key="policy").key
    add_row(
        payload,
        "questions",
        {
            "key": "",
            "order": "20",
            "kind": "rating",
            "section": section,
            "waves": "both",
            "text_en": "How fair is it?",
            "scale_min": "",
            "scale_max": "",
        },
    )
    before = Question.objects.count()
    response = client.post(url, payload)
    body = response.content.decode()
    assert response.status_code == 200
    assert "A rating question needs a scale: give its lowest and highest value" in body
    assert "Constraint" not in body and "question_rating_scale" not in body
    assert Question.objects.count() == before


def test_a_new_rating_question_offers_a_0_to_10_scale_with_named_ends(organiser_and_poll) -> None:
    client, poll = organiser_and_poll
    body = client.get(reverse("admin:surveys_poll_change", args=[poll.pk])).content.decode()
    empty = body[body.index('id="questions-empty"') :]
    assert 'name="questions-__prefix__-scale_min" value="0"' in empty
    assert 'name="questions-__prefix__-scale_max" value="10"' in empty
    assert 'value="Strongly oppose"' in empty


def test_an_english_only_poll_shows_no_ukrainian_inputs_and_keeps_stored_ukrainian(
    organiser_and_poll,
) -> None:
    client, poll = organiser_and_poll
    Poll.objects.filter(pk=poll.pk).update(languages=["en"])
    url, payload = page(client, poll)
    body = client.get(url).content.decode()
    hidden = re.findall(r'<div class="translation" data-language="uk" hidden>', body)
    visible = re.findall(r'<div class="translation" data-language="uk">', body)
    assert hidden and not visible
    # A new rating's named ends come in the poll's languages only.
    empty = body[body.index('id="questions-empty"') :]
    assert 'value="Strongly oppose"' in empty and "Рішуче проти" not in empty
    assert client.post(url, payload).status_code == 302
    # Saving the page erased no Ukrainian text the poll already had.
    assert poll.positions.get(key="A").title["uk"] == "Position A (uk)"


def test_saving_the_seed_like_sources_unchanged_keeps_them_exactly(organiser_and_poll) -> None:
    client, poll = organiser_and_poll
    sources = [
        {
            "title": {"en": "Report", "uk": "Звіт (англійською: Report)"},
            "publisher": "The Week",
            "date": {"en": "March 2022", "uk": "березень 2022 року"},
            "about": {"en": "A digest.", "uk": "Огляд."},
            "url": "https://example.org/a",
        }
    ]
    Position.objects.filter(poll=poll, key="A").update(sources=sources)
    url, payload = page(client, poll)
    assert client.post(url, payload).status_code == 302
    assert poll.positions.get(key="A").sources == sources


def test_a_poll_with_answers_shows_its_texts_per_language_never_as_json(
    organiser_and_poll,
) -> None:
    client, poll = organiser_and_poll
    Position.objects.filter(poll=poll, key="A").update(
        body={"en": "First **line**.\nSecond line.", "uk": "Перший рядок."}
    )
    Question.objects.filter(poll=poll, key="rank").update(help={"en": "Line one.\nLine two."})
    participant = Participant.objects.create(poll=poll, arm=Participant.Arm.TREATMENT)
    question = poll.questions.get(key="rate_exit")
    Answer.objects.create(participant=participant, poll=poll, question=question, wave=1, value=5)
    body = client.get(reverse("admin:surveys_poll_change", args=[poll.pk])).content.decode()
    assert '{"en"' not in body and "\\n" not in body and "[{" not in body
    assert "<p>First <strong>line</strong>." in body  # markdown, formatted and sanitised
    assert "<dt>uk</dt><dd><p>Перший рядок.</p></dd>" in body
    assert "<p>Line one.<br>Line two.</p>" in body  # plain text: its lines kept
    assert "Kyiv" in body  # a knowledge item's choices, in words


def test_the_seed_like_poll_page_has_every_list_closed_with_its_count(organiser_and_poll) -> None:
    client, poll = organiser_and_poll
    body = client.get(reverse("admin:surveys_poll_change", args=[poll.pk])).content.decode()
    for prefix, count in (("sections", 5), ("positions", 2), ("options", 3), ("questions", 7)):
        heading = body[body.index(f'id="{prefix}-heading"') :][:300]
        assert f'<span class="outline-count">({count})</span>' in heading
    assert body.count('<details class="outline-list">') == 4
    assert '<details class="outline-list" open' not in body


def test_the_checklist_warns_but_does_not_block_a_poll_without_a_control_group(
    organiser_and_poll,
) -> None:
    from surveys.definition.readiness import check_poll

    client, poll = organiser_and_poll
    Poll.objects.filter(pk=poll.pk).update(control_share=0)
    poll.refresh_from_db()
    readiness = check_poll(poll)
    assert readiness.ready and [check.key for check in readiness.warnings] == ["control"]
    body = client.get(reverse("admin:surveys_poll_checklist", args=[poll.pk])).content.decode()
    assert '<li class="check check-warn" id="check-control">' in body
    assert "No control group: the results cannot compare" in body
    assert "Ready to open, with 1 warning to read first" in body


def test_the_organiser_pages_speak_ukrainian(organiser_and_poll) -> None:
    client, poll = organiser_and_poll
    url = reverse("admin:surveys_poll_change", args=[poll.pk])
    with translation.override("en"):  # the request's Ukrainian stays in the request
        body = client.get(url, headers={"accept-language": "uk"}).content.decode()
        checklist = reverse("admin:surveys_poll_checklist", args=[poll.pk])
        checks = client.get(checklist, headers={"accept-language": "uk"}).content.decode()
    for words in ("Розділи (сторінки анкет)", "Ключ", "Частка контрольної групи", "Готовність"):
        assert words in body, words
    assert "Готово до відкриття" in checks
    assert "Щонайменше дві позиції або жодної" in checks  # noqa: RUF001 (Ukrainian)


def test_an_organiser_makes_a_rating_a_statement_of_the_reason_index_by_its_family(
    organiser_and_poll,
) -> None:
    client, poll = organiser_and_poll
    url, payload = page(client, poll)
    body = client.get(url).content.decode()
    assert "statements of the Deliberative Reason Index" in body
    add_row(
        payload,
        "questions",
        {
            "key": "",
            "order": "30",
            "kind": "rating",
            "section": poll.sections.get(key="policy").key,
            "waves": "both",
            "text_en": "Rewarding aggression invites more of it.",
            "scale_min": "0",
            "scale_max": "10",
            "min_label_en": "Strongly disagree",
            "max_label_en": "Strongly agree",
            "family": "considerations",
        },
    )
    response = client.post(url, payload)
    assert response.status_code == 302, errors(response)
    question = poll.questions.get(text__en="Rewarding aggression invites more of it.")
    assert question.family == "considerations"
    assert question.paired
