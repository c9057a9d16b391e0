"""The finish page and the public results page in Chromium, on a phone and a desktop, in English
and Ukrainian: the dot plot fits the screen, the words say the same, the link to the results
appears once they are published, and axe-core (best practices included) finds nothing."""

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from results.compute.recompute import recompute_poll
from results.simulate import add_simulated_participants
from surveys.journey.access import cookie_name
from surveys.models import Poll
from tests.e2e.conftest import axe_violations, watch
from tests.e2e.test_journey_browser import SHOTS
from tests.factories import make_poll
from tests.surveys.test_journey import start, walk

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
VIEWPORTS = ({"width": 360, "height": 740}, {"width": 1280, "height": 900})
DONT_KNOW = {"en": "from don't know to 5", "uk": "з «не знаю» до 5"}
PUBLISHED = {"en": "See the results of the poll", "uk": "Переглянути результати опитування"}
HEADING = {"en": "Results of the poll", "uk": "Результати опитування"}


def check(page: Any, refused: list[str], width: int, label: str) -> None:
    """Nothing wider than the screen, axe finds nothing, the policy refused nothing."""
    if SHOTS:
        path = Path(SHOTS) / f"h3-{label}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= width, label
    assert axe_violations(page) == [], label
    assert refused == [], label


def test_the_finish_and_results_pages_fit_phones_and_pass_axe_in_both_languages(
    browser: Any, live_server: Any, axe_script: Path
) -> None:
    poll = make_poll(design={"control_share": 0.5, "group_size": 4, "min_subgroup_size": 5})
    client = Client()
    participant = start(client, poll, lang="en")
    walk(client, poll, participant)
    add_simulated_participants(poll=poll, n=40, seed=3)
    recompute_poll(poll.pk)
    slug, base = poll.slug, live_server.url
    cookie = client.cookies[cookie_name(slug)]

    for viewport in VIEWPORTS:
        width = viewport["width"]
        Poll.objects.filter(pk=poll.pk).update(results_public=False)
        context = browser.new_context(viewport=viewport)
        context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": base}])
        page = context.new_page()
        refused = watch(page, axe_script)
        for language in ("en", "uk"):
            page.goto(f"{base}/p/{slug}/done/?lang={language}")
            assert page.locator("html").get_attribute("lang") == language
            plot = page.locator('svg.dotplot[role="img"]')
            assert plot.count() == 1
            box = plot.bounding_box()
            assert box is not None and box["width"] <= width and box["height"] > 60
            assert DONT_KNOW[language] in page.locator("ol.movements").inner_text()
            assert page.locator(f'a[href="/p/{slug}/results/"]').count() == 1
            check(page, refused, width, f"finish-{language}")

            response = page.goto(f"{base}/p/{slug}/results/?lang={language}")
            assert response is not None and response.status == 404
            assert page.locator("table").count() == 0
            check(page, refused, width, f"results-unpublished-{language}")

        Poll.objects.filter(pk=poll.pk).update(results_public=True)
        for language in ("en", "uk"):
            page.goto(f"{base}/p/{slug}/done/?lang={language}")
            check(page, refused, width, f"finish-published-{language}")
            page.get_by_role("link", name=PUBLISHED[language]).click()
            page.wait_for_load_state()
            assert page.url.split("?")[0] == f"{base}/p/{slug}/results/"
            assert page.locator("h1").inner_text() == HEADING[language]
            assert page.locator("html").get_attribute("lang") == language
            assert page.locator("table.figures").count() == 3
            assert page.locator('svg.dotplot[role="img"]').count() == 3
            assert page.locator("script").count() == 0  # nothing on the page needs script
            check(page, refused, width, f"results-{language}")
        context.close()
