"""The Content Security Policy in a real Chromium: the pages that lean on third-party scripts
(Chart.js on the results, Swagger UI, Redoc) and a participant page work and the browser
refuses nothing; an injected inline script is refused."""

from typing import Any

import pytest

from surveys.models import Poll
from tests.e2e.conftest import axe_violations, watch
from tests.surveys.admin_fixtures import staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TIMEOUT = 60_000


def test_results_docs_and_participant_pages_work_under_the_policy(
    browser: Any, live_server: Any, computed: Poll
) -> None:
    staff("olga", polls=(computed,))
    base = live_server.url
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    refused = watch(page)

    page.goto(f"{base}/admin/login/?next=/admin/surveys/poll/{computed.pk}/results/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", "x")
    page.click('input[type="submit"]')
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-forest')")
    # The charts' boxes get their item-dependent height from script, not a style attribute.
    height = page.locator(".chart-box[data-height-rem]").first.evaluate(
        "node => node.getBoundingClientRect().height"
    )
    assert height > 100
    assert refused == []

    page.goto(f"{base}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Deliberate research API" in page.locator(".swagger-ui .info .title").inner_text()
    assert refused == []

    page.goto(f"{base}/api/redoc/")
    page.wait_for_selector("#redoc-container h1")
    assert "Deliberate research API" in page.locator("#redoc-container h1").inner_text()
    # Redoc's own styles applied (inserted with the page's nonce): the menu is a side column.
    width = page.locator(".menu-content").evaluate("node => node.getBoundingClientRect().width")
    assert 100 < width < 400
    # Redoc's footer loads its makers' logo from their CDN: the policy keeps the page from
    # calling a third party (Redoc then leaves the logo out). Nothing else is refused.
    assert [m for m in refused if "cdn.redoc.ly/redoc/logo-mini.svg" not in m] == []
    refused.clear()

    page.goto(f"{base}/p/{computed.slug}/")
    assert page.locator("h1").count() == 1
    assert refused == []

    # What the policy is for: markup injected into a page cannot run script or style.
    page.evaluate(
        """() => {
          document.body.insertAdjacentHTML("beforeend",
            '<img src="x" onerror="window.__pwned = 1"><div style="color: red" id="inj">x</div>');
        }"""
    )
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#inj").evaluate("node => getComputedStyle(node).color") != "rgb(255, 0, 0)"
    assert any("Content Security Policy" in message for message in refused)
    context.close()


def test_error_pages_are_accessible_and_refuse_nothing(
    browser: Any, live_server: Any, axe_script: Any
) -> None:
    context = browser.new_context(locale="uk-UA", viewport={"width": 360, "height": 740})
    page = context.new_page()
    refused = watch(page, axe_script)
    response = page.goto(f"{live_server.url}/no-such-page/")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Сторінку не знайдено"
    assert axe_violations(page) == []
    assert refused == []
    context.close()
