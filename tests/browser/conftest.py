"""Browser tests: Debian's headless Chromium, driven by Playwright, on the portal served by pytest-django's live server.

`make browser-deps` installs what they need: /usr/bin/chromium, the playwright package and axe-core.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from tests.factories import PASSWORD
from tests.twofactor import code_for, secret_on_page

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
# Root needs --no-sandbox; the rest keep Chromium off a network it cannot reach anyway.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 5_000  # per action, navigation or expectation: a page of this portal takes milliseconds
# What axe reports at these impacts fails the test; "moderate" and "minor" are left to review.
BLOCKING_IMPACTS = ("serious", "critical")
expect.set_options(timeout=TIMEOUT_MS)


# The driver and the browser live as long as this package's tests, once for all of them ("session" for the
# browser tests). Not the whole pytest session: between calls Playwright's sync API marks an event loop as running
# in the main thread, and Django then refuses ORM calls there (SynchronousOnlyOperation) unless
# DJANGO_ALLOW_ASYNC_UNSAFE is set. That is allowed here only, and the rest of the suite keeps Django's check.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver (shipped in its wheel), once the browser and axe-core are known to be there."""
    missing = [str(path) for path in (CHROMIUM, AXE) if not path.exists()]
    if missing:
        pytest.fail(f"browser tests need {', '.join(missing)}: run `make browser-deps`", pytrace=False)
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as driver:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for all the browser tests; each test gets its own context (cookies, storage)."""
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
    yield chromium
    chromium.close()


@pytest.fixture
def portal(live_server: LiveServer, settings: Any) -> str:
    """The live server's address, which Tiers also takes as its own for the test."""
    settings.TIERS_BASE_URL = live_server.url
    return live_server.url


@pytest.fixture
def page(browser: Browser, portal: str) -> Iterator[Page]:
    """A fresh browser tab on the live server, English unless the test switches, with short timeouts."""
    context = browser.new_context(base_url=portal, locale="en-GB", accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Log in through the real login form, from the login page or after going there.

    Operators and organisation admins then pass the second factor as a person would: enrolling
    with the key the page shows (then leaving the recovery codes page), or giving the current code
    of the device they already have.
    """
    if "/accounts/login/" not in page.url:
        page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("main form button[type=submit]").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))
    if "/accounts/2fa/" in page.url:
        code = code_for(username, secret_on_page(page.content()))
        page.locator("input[name=code]").fill(code)
        with page.expect_navigation():
            page.locator("main form button[type=submit]").first.click()
        done = page.locator("#recovery-codes-done")
        if done.count():
            done.click()
        expect(page).not_to_have_url(re.compile(r"/accounts/2fa/"))


def switch_language(page: Page, code: str) -> None:
    """Choose the language with the switcher in the page header, as a reader would."""
    page.locator("#language-select").select_option(code)
    page.locator("form.language button[type=submit]").click()
    expect(page.locator("html")).to_have_attribute("lang", code)


AXE_RUN = """async (impacts) => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations
    .filter((violation) => impacts.includes(violation.impact))
    .map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      targets: violation.nodes.map((node) => node.target.join(" ")),
    }));
}"""


def assert_accessible(page: Page) -> None:
    """Run axe-core on the page as it stands; fail listing every serious or critical violation."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the driver, not as an inline <script>: the portal's CSP forbids those.
        page.evaluate(AXE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = page.evaluate(AXE_RUN, list(BLOCKING_IMPACTS))
    report = "\n".join(
        f"- {found['id']} ({found['impact']}): {found['help']}; on {', '.join(found['targets'])}"
        for found in violations
    )
    assert not violations, f"axe finds serious or critical violations on {page.url}:\n{report}"
