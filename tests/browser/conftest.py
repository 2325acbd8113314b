"""Headless Chromium (Playwright, sync API) against pytest-django's live server.

One browser per test module; each test logs in through the real login form. Playwright's sync
API runs an event loop in the test thread, which makes Django refuse ORM calls there unless
told it is safe (it is: the loop is Playwright's, not the server's).

Every page of every browser test runs under the site's Content-Security-Policy, and a test fails
when any page reported a violation (``securitypolicyviolation`` events and Chromium's console
"Refused to ..." lines, collected from every context the test opened). Give ``wait_for_function``
a function (``"() => ..."``): Playwright polls a bare expression with ``eval`` inside the page,
which the policy (no ``unsafe-eval``) refuses.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
OUTPUT = Path(os.environ.get("LUSWEB_TEST_OUTPUT", "/tmp/lusweb-test-output"))


#: Logged by every page (an init script runs before the page's own scripts) for each violation.
CSP_LISTENER = """document.addEventListener('securitypolicyviolation', (e) => console.error(
  `CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}:${e.columnNumber} ${e.sample}`));"""
#: The CSP violations of the running test (cleared before each test, checked after it).
csp_violations: list[str] = []


def _on_console(msg: Any) -> None:
    text = str(msg.text)
    if text.startswith("CSP violation") or "Content Security Policy" in text:
        csp_violations.append(f"{text} ({msg.location.get('url')})")


def watch_csp(context: Any) -> Any:
    """Report the CSP violations of every page of ``context`` into :data:`csp_violations`."""
    context.add_init_script(CSP_LISTENER)
    context.on("console", _on_console)
    return context


class CspWatchedBrowser:
    """The Playwright browser, whose new contexts and pages report CSP violations."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser

    def new_context(self, **kwargs: Any) -> Any:
        return watch_csp(self._browser.new_context(**kwargs))

    def new_page(self, **kwargs: Any) -> Any:
        context = watch_csp(self._browser.new_context(**kwargs))
        page = context.new_page()
        page.on("close", lambda _: context.close())
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(CHROMIUM.exists(), f"Chromium not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield CspWatchedBrowser(b)
        finally:
            b.close()


@pytest.fixture(autouse=True)
def no_csp_violations() -> Iterator[list[str]]:
    """Fails the test when any of its pages violated the Content-Security-Policy."""
    csp_violations.clear()
    yield csp_violations
    assert csp_violations == [], "Content-Security-Policy violations:\n" + "\n".join(csp_violations)


@pytest.fixture
def screenshot_dir() -> Path:
    path = OUTPUT / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def login(page: Any, base_url: str, username: str, password: str) -> None:
    """Log in through the login form, as a person would."""
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "/login/" not in page.url, f"login as {username} failed"
