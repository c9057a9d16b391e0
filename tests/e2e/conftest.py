"""Browser tests: Debian's Chromium through Playwright, axe-core from npm (tests/e2e/package.json).

axe-core is installed here with ``npm ci`` on first use, so CI needs only node and npm.
"""

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# WCAG 2.x A/AA plus axe's best practices, on every page a test visits.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
AXE_RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
  return result.violations.map(v => ({id: v.id, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}));
}"""


def watch(page: Any, axe: Path | None = None) -> list[str]:
    """Load axe-core into every document of ``page`` and collect CSP violations.

    axe arrives as an init script: Playwright injects those through the DevTools protocol, which
    the page's Content Security Policy does not govern (a <script> tag with the code would be
    refused, as it should be). Chromium reports every refused script, style, frame or worker
    as a console error naming the policy; the returned list fills with them.
    """
    if axe is not None:
        page.add_init_script(path=str(axe))
    violations: list[str] = []

    def on_console(message: Any) -> None:
        # axe inserts <style> elements of its own while it measures; those refusals are the
        # test tool's, reported at the injected file's path, not the page's.
        if axe is not None and message.location.get("url") == str(axe):
            return
        if "Content Security Policy" in message.text:
            violations.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    return violations


def axe_violations(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(AXE_RUN, AXE_TAGS)


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what}; CI must run the browser tests.")
    pytest.skip(what)


@pytest.fixture(scope="session")
def axe_script() -> Path:
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            _missing("npm is not installed, so axe-core cannot be installed")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, capture_output=True
        )
    return AXE


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
