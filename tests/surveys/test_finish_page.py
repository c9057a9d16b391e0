"""The finish page: the participant's own answers per option as an SVG dot plot with its words
("from don't know to 5 on a scale of 0 to 10, where …"), in English and Ukrainian, and when
and where the poll's overall results are published."""
# ruff: noqa: RUF001 - the expected texts are Ukrainian and typographic quotes.

import html
import re
from xml.etree import ElementTree

import pytest
from django.test import Client
from django.utils import translation

from surveys.models import Poll
from surveys.templatetags.dotplot import DK, Row, Scale, describe, dotplot, movement_words
from tests.factories import make_poll
from tests.surveys.test_journey import start, walk

pytestmark = pytest.mark.django_db
SVG = "{http://www.w3.org/2000/svg}"
SCALE = Scale(0, 10, "Strongly oppose", "Strongly support")


def finished(language: str) -> tuple[Poll, Client, str]:
    """A treatment participant who answered exit 3 -> 7, aid don't know -> 5, escalate 8 -> 8."""
    poll = make_poll(design={"control_share": 0.0, "group_size": 4})
    client = Client()
    participant = start(client, poll, lang=language)
    walk(client, poll, participant)
    page = client.get(f"/p/{poll.slug}/done/")
    assert page.status_code == 200
    return poll, client, page.content.decode()


def own_plot(page: str) -> ElementTree.Element:
    found = re.search(r'<svg class="dotplot".*?</svg>', page, re.S)
    assert found, "no dot plot on the finish page"
    # The SVG is written in HTML syntax; give it its namespace to parse it as XML.
    source = found.group(0).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    return ElementTree.fromstring(source)


def movements(page: str) -> list[str]:
    listed = re.search(r'<ol class="movements">(.*?)</ol>', page, re.S)
    assert listed
    items = re.findall(r"<li>(.*?)</li>", listed.group(1), re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", item)).strip() for item in items]


def test_every_kind_of_move_reads_as_a_sentence_in_english() -> None:
    with translation.override("en"):
        assert movement_words(3.0, 7.0) == "from 3 to 7"
        assert movement_words(5.0, 5.0) == "unchanged at 5"
        assert movement_words(DK, 7.0) == "from don't know to 7"
        assert movement_words(7.0, DK) == "from 7 to don't know"
        assert movement_words(DK, DK) == "don't know both times"
        assert movement_words(None, 4.0) == "first no answer, then 4"
        assert describe(4.0, 5.0, SCALE) == (
            "from 4 to 5 on a scale of 0 to 10, where 0 means “Strongly oppose” and "
            "10 means “Strongly support”"
        )
        # Without a number there is no scale to speak of.
        assert describe(DK, DK, SCALE) == "don't know both times"


def test_dont_know_is_quoted_in_ukrainian_so_the_sentence_stays_grammatical() -> None:
    with translation.override("uk"):
        assert movement_words(DK, 7.0) == "з «не знаю» до 7"
        assert movement_words(7.0, DK) == "з 7 до «не знаю»"
        assert movement_words(DK, DK) == "обидва рази «не знаю»"
        assert movement_words(3.0, 7.0) == "з 3 до 7"
        scale = Scale(0, 10, "Рішуче проти", "Рішуче за")
        assert describe(DK, 7.0, scale) == (
            "з «не знаю» до 7 за шкалою від 0 до 10, "
            "де 0 означає «Рішуче проти», а 10 — «Рішуче за»"
        )
        assert "з не знаю" not in describe(DK, 7.0, scale)


def test_the_plot_puts_each_answer_on_the_scale_and_dont_know_in_its_own_column() -> None:
    rows = [Row("1", 3.0, 7.0), Row("2", DK, 5.0), Row("3", 8.0, 8.0), Row("4", None, None)]
    with translation.override("en"):
        svg = ElementTree.fromstring(
            str(dotplot(rows, SCALE, title="T <b>", desc="D & d", id="p")).replace(
                "<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1
            )
        )
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "p-title" and svg.get("aria-describedby") == "p-desc"
    assert svg.find(f"{SVG}title").text == "T <b>"  # escaped in the markup, text when parsed
    assert svg.find(f"{SVG}desc").text == "D & d"
    before = [float(c.get("cx")) for c in svg.iter(f"{SVG}circle") if c.get("class") == "before"]
    after = [float(c.get("cx")) for c in svg.iter(f"{SVG}circle") if c.get("class") == "after"]
    assert len(before) == len(after) == 3  # the unanswered row draws nothing
    ticks = {t.text: float(t.get("x")) for t in svg.iter(f"{SVG}text") if t.get("class") == "tick"}
    assert before[0] == ticks["3"] and after[0] == ticks["7"]
    assert before[1] == ticks["?"] and after[1] == ticks["5"]
    assert before[2] == after[2] == ticks["8"]
    # An arrow for the move from 3 to 7 and from don't know to 5; none where nothing moved.
    assert len([p for p in svg.iter(f"{SVG}path") if p.get("class") == "head"]) == 2
    assert "style" not in str(dotplot(rows, SCALE, title="t", desc="d", id="p"))


def test_the_finish_page_draws_the_participants_answers_and_says_them_in_english() -> None:
    _poll, _client, page = finished("en")
    plot = own_plot(page)
    assert plot.get("role") == "img"
    assert plot.find(f"{SVG}title").text.startswith("Your answers to the first and the second")
    assert "open circle marks your first answer" in plot.find(f"{SVG}desc").text
    scale = "on a scale of 0 to 10, where 0 means “Strongly oppose” and 10 means “Strongly support”"
    assert movements(page) == [
        f"Option exit: from 3 to 7 {scale}",
        f"Option aid: from don't know to 5 {scale}",
        f"Option escalate: unchanged at 8 {scale}",
    ]
    assert 'class="dotplot-key"' in page and "First questionnaire" in page


def test_the_finish_page_in_ukrainian_quotes_dont_know() -> None:
    _poll, _client, page = finished("uk")
    scale = (
        "за шкалою від 0 до 10, де 0 означає «Strongly oppose (uk)», а 10 — «Strongly support (uk)»"
    )
    assert movements(page) == [
        f"Option exit (uk): з 3 до 7 {scale}",
        f"Option aid (uk): з «не знаю» до 5 {scale}",
        f"Option escalate (uk): без змін: 8 {scale}",
    ]
    assert "з не знаю" not in html.unescape(page)
    assert own_plot(page).find(f"{SVG}title").text.startswith("Ваші відповіді")
    assert "Перша анкета" in page and "Друга анкета" in page


def test_the_finish_page_says_where_results_will_appear_and_links_them_once_published() -> None:
    poll, client, page = finished("en")
    results_url = f"/p/{poll.slug}/results/"
    assert "will be published after the poll closes" in page
    assert f'href="{results_url}"' in page
    assert "See the results of the poll" not in page

    Poll.objects.filter(pk=poll.pk).update(results_public=True)
    page = client.get(f"/p/{poll.slug}/done/").content.decode()
    assert "The overall results are published" in page
    assert f'<a href="{results_url}">See the results of the poll</a>' in page

    Poll.objects.filter(pk=poll.pk).update(results_public=False, status=Poll.Status.CLOSED)
    page = client.get(f"/p/{poll.slug}/done/?lang=uk").content.decode()
    assert f'<a href="{results_url}">Переглянути результати опитування</a>' in page
