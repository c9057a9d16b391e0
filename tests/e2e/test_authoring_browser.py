"""A first-time organiser, in Ukrainian, builds a poll in Chromium without typing JSON or a key:
two positions with a source each, four options linked to them in the same save, a section, and
one question of every kind (a rating per option, as the readiness check asks). The poll passes
the readiness check, is previewed and opened; simulated participants complete it, and the
results show treatment against control (issue 13)."""

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from results.simulate import add_simulated_participants
from surveys.models import Poll
from tests.e2e.conftest import axe_violations, watch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TIMEOUT = 90_000  # the shared machine can be slow
OPTIONS = [
    ("Build a tram line", "Побудувати трамвайну лінію", "A"),
    ("Widen the ring road", "Розширити кільцеву дорогу", "A"),
    ("Plant a city park", "Закласти міський парк", "B"),
    ("Keep the budget as it is", "Залишити бюджет як є", "B"),
]


class Checks:
    """axe-core (WCAG A/AA and best practices) and the CSP on every page the test sees."""

    def __init__(self, page: Any, axe: Path) -> None:
        self.page, self.csp = page, watch(page, axe)

    def __call__(self, label: str) -> None:
        violations = axe_violations(self.page)
        assert violations == [], f"{label} {self.page.url}: {violations}"
        assert self.csp == [], f"{label}: {self.csp}"


def open_list(page: Any, prefix: str) -> None:
    details = page.locator(f"#{prefix}-group details.outline-list")
    if details.count() and not details.evaluate("node => node.open"):
        details.locator("summary").first.click()


def new_row(page: Any, prefix: str) -> Any:
    """Press the list's "add another" link; the new row's inputs are named prefix-N-..."""
    open_list(page, prefix)
    index = int(page.locator(f'[name="{prefix}-TOTAL_FORMS"]').input_value())
    page.locator(f"#{prefix}-group .add-row a").click()
    row = page.locator(f"#{prefix}-{index}")
    row.wait_for()
    return row, f"{prefix}-{index}"


def texts(page: Any, name: str, english: str, ukrainian: str) -> None:
    page.fill(f'[name="{name}_en"]', english)
    page.fill(f'[name="{name}_uk"]', ukrainian)


def pick(page: Any, name: str, value: str) -> None:
    select = page.locator(f'[name="{name}"]')
    select.focus()  # the page offers the keys typed in the other lists when a list is entered
    select.select_option(value)


def choices(page: Any, row: Any, prefix: str, labels: list[tuple[str, str]]) -> None:
    """Type the choices' labels; the keys are proposed from the English ones."""
    editor = row.locator(".choices-editor")
    for index, (english, ukrainian) in enumerate(labels):
        if page.locator(f'[name="{prefix}-choices-{index}-label-en"]').count() == 0:
            editor.locator(".add-row").click()
        page.fill(f'[name="{prefix}-choices-{index}-label-en"]', english)
        page.fill(f'[name="{prefix}-choices-{index}-label-uk"]', ukrainian)


def question(page: Any, kind: str, english: str, ukrainian: str) -> tuple[Any, str]:
    row, prefix = new_row(page, "questions")
    page.select_option(f'[name="{prefix}-kind"]', kind)
    pick(page, f"{prefix}-section", "questions_for_you")
    texts(page, f"{prefix}-text", english, ukrainian)
    return row, prefix


def save(page: Any, check: Checks, label: str) -> None:
    page.locator('input[name="_continue"]').click()
    page.wait_for_load_state()
    assert page.locator(".errornote").count() == 0, page.locator(".errorlist").all_inner_texts()
    check(label)


def build(page: Any, base: str, check: Checks) -> None:
    page.goto(f"{base}/admin/surveys/poll/add/")
    check("add poll")
    assert "Додати опитування" in page.content()  # the page speaks Ukrainian
    page.fill('[name="slug"]', "misto-2027")
    page.check('input[name="languages"][value="uk"]')
    texts(page, "title", "The city budget", "Міський бюджет")
    texts(page, "question", "What should the city build?", "Що має збудувати місто?")
    # The control share is left as offered: half of the participants.
    assert page.locator('[name="control_share"]').input_value() == "0.5"
    save(page, check, "new poll")

    row, prefix = new_row(page, "sections")
    texts(page, f"{prefix}-title", "Questions for you", "Питання до вас")
    assert page.locator(f'[name="{prefix}-key"]').input_value() == "questions_for_you"

    for english, ukrainian in (
        ("Build for transport", "Будувати для транспорту"),
        ("Build green", "Будувати зелене"),
    ):
        row, prefix = new_row(page, "positions")
        texts(page, f"{prefix}-title", english, ukrainian)
        texts(page, f"{prefix}-summary", f"{english}, in short.", f"{ukrainian}, коротко.")
        texts(page, f"{prefix}-body", f"The case: {english}.", f"Аргументи: {ukrainian}.")
        page.fill(f'[name="{prefix}-sources-0-title-en"]', "City report")
        page.fill(f'[name="{prefix}-sources-0-title-uk"]', "Звіт міста")
        page.fill(f'[name="{prefix}-sources-0-url"]', "https://example.org/report")
    assert page.locator('[name="positions-1-key"]').input_value() == "B"

    for axis, (english, ukrainian, position) in enumerate(OPTIONS, 1):
        row, prefix = new_row(page, "options")
        texts(page, f"{prefix}-text", english, ukrainian)
        pick(page, f"{prefix}-position", position)
        page.fill(f'[name="{prefix}-axis"]', str(axis))

    for index, (english, ukrainian, _position) in enumerate(OPTIONS):
        row, prefix = question(page, "rating", f"Support: {english}?", f"Підтримуєте: {ukrainian}?")
        pick(page, f"{prefix}-option", page.locator(f'[name="options-{index}-key"]').input_value())
        assert page.locator(f'[name="{prefix}-scale_max"]').input_value() == "10"
    question(page, "ranking", "Rank the options", "Упорядкуйте варіанти")
    row, prefix = question(page, "single", "Do you drive?", "Чи ви кермуєте?")
    assert row.locator("fieldset.kind-rating").is_hidden()
    choices(page, row, prefix, [("Yes", "Так"), ("No", "Ні")])  # noqa: RUF001 (Ukrainian)
    row, prefix = question(page, "multiple", "How do you travel?", "Як ви подорожуєте?")
    choices(
        page,
        row,
        prefix,
        [("By bus", "Автобусом"), ("By bike", "Велосипедом"), ("On foot", "Пішки")],
    )
    row, prefix = question(page, "number", "How old are you?", "Скільки вам років?")
    page.fill(f'[name="{prefix}-number_min"]', "16")
    question(page, "text", "Anything else?", "Щось іще?")
    row, prefix = question(
        page, "knowledge", "Who sets the city budget?", "Хто ухвалює бюджет міста?"
    )
    choices(
        page, row, prefix, [("The city council", "Міська рада"), ("The mayor alone", "Лише мер")]
    )
    row.locator(f'[name="{prefix}-choices-correct"][value="0"]').check()
    save(page, check, "built poll")


def test_a_new_organiser_builds_opens_and_reads_a_poll_in_ukrainian(
    browser: Any, live_server: Any, axe_script: Path
) -> None:
    organiser = User.objects.create_user("oksana", password="oksana-pass-123", is_staff=True)
    organiser.user_permissions.add(Permission.objects.get(codename="add_poll"))
    base = live_server.url
    context = browser.new_context(locale="uk-UA", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    check = Checks(page, axe_script)
    page.set_default_timeout(TIMEOUT)
    page.set_default_navigation_timeout(TIMEOUT)
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "oksana")
    page.fill("#id_password", "oksana-pass-123")
    page.click('input[type="submit"]')
    page.wait_for_url(f"{base}/admin/")

    build(page, base, check)
    poll = Poll.objects.get(slug="misto-2027")
    kinds = sorted(set(poll.questions.values_list("kind", flat=True)))
    assert kinds == sorted(
        ["rating", "ranking", "single", "multiple", "number", "text", "knowledge"]
    )
    assert poll.positions.count() == 2 and poll.options.filter(position__isnull=False).count() == 4
    assert poll.questions.get(kind="knowledge").answer == "the_city_council"
    assert poll.control_share == 0.5

    page.goto(f"{base}/admin/surveys/poll/{poll.pk}/checklist/")
    assert page.locator("#checklist-heading").inner_text().startswith("Готово до відкриття")
    check("readiness")

    page.goto(f"{base}/admin/surveys/poll/{poll.pk}/preview/")
    page.select_option('[name="step"]', "briefing")
    page.select_option('[name="language"]', "uk")
    page.locator(".preview-controls button").click()
    frame = page.frame_locator(".preview-frame")
    assert "Будувати для транспорту" in frame.locator("body").inner_text()
    check("preview")

    page.goto(f"{base}/admin/surveys/poll/{poll.pk}/change/")
    page.locator("a.lifecycle-open").click()
    check("confirm opening")
    page.locator('.lifecycle-confirm input[type="submit"]').click()
    page.wait_for_load_state()
    assert Poll.objects.get(pk=poll.pk).status == Poll.Status.OPEN

    add_simulated_participants(poll=poll, n=60, seed=3)
    page.goto(f"{base}/admin/surveys/poll/{poll.pk}/results/")
    page.locator("#recompute button").click()
    page.wait_for_selector("#chart-did", timeout=TIMEOUT)
    # Treatment against control first: the difference in differences of each option (and of
    # the knowledge index), each option named in Ukrainian.
    labels = page.locator('section[aria-labelledby="did-heading"] tbody th').all_inner_texts()
    options = [ukrainian for _english, ukrainian, _position in OPTIONS]
    assert sorted(label for label in labels if label in options) == sorted(options), labels
    check("results")
    context.close()
