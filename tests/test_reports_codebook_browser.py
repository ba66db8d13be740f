"""The HTML codebook in real headless Chromium: offline, no console errors, search filters, links resolve.

Runs on the committed ``codebooks/html`` (kept identical to a fresh generation by
tests/test_reports_codebook.py). Chromium is Debian's package at /usr/bin/chromium; nothing is downloaded.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
HTML = ROOT / "codebooks" / "html"

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="Debian chromium not installed (CI installs it)")


# Load every link in a hidden iframe and return the <h1><code> text of each (None if it did not load).
HEADINGS = """async hrefs => Promise.all(hrefs.map(h => new Promise(resolve => {
  const f = document.createElement("iframe");
  f.style.display = "none";
  f.onload = () => {
    const code = f.contentDocument && f.contentDocument.querySelector("h1 code");
    resolve(code ? code.textContent : null);
    f.remove();
  };
  f.src = h;
  document.body.appendChild(f);
})))"""


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # file access from files lets the test read each linked page's heading from an iframe (one page load
        # per link, all at once) instead of navigating 58 times; the pages themselves need no such access.
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--allow-file-access-from-files"])
        yield b
        b.close()


def test_index_offline_search_and_links(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))

    page.goto((HTML / "index.html").as_uri())
    items = page.locator("#variables li")
    total = items.count()
    assert total == len(list((HTML / "variables").glob("*.html"))) == 58
    assert page.locator("#count").inner_text() == f"{total} of {total} variables"

    def shown() -> list[str]:
        return page.eval_on_selector_all("#variables li", "els => els.filter(e => e.offsetParent !== null)"
                                                          ".map(e => e.querySelector('code').textContent)")

    page.fill("#search", "citizenship")
    assert shown() == ["citizen", "citizenship", "citizenship_group", "naturalised"]
    assert page.locator("#count").inner_text() == f"4 of {total} variables"
    page.fill("#search", "gndr")  # a source variable name finds the target it feeds
    assert shown() == ["sex"]
    page.fill("#search", "no-such-variable-xyz")
    assert shown() == []
    assert page.locator("#none").is_visible()
    page.fill("#search", "")
    page.screenshot(path=str(tmp_path / "codebook-index.png"), full_page=False)

    hrefs = page.eval_on_selector_all("#variables a", "els => els.map(e => e.href)")
    assert len(hrefs) == total
    names = [re.search(r"/variables/([a-z0-9_]+)\.html$", h).group(1) for h in hrefs]  # type: ignore[union-attr]
    assert all((HTML / "variables" / f"{n}.html").is_file() for n in names)
    assert page.evaluate(HEADINGS, hrefs) == names
    page.goto((HTML / "coverage.html").as_uri())
    page.click("table.matrix a[href='variables/sex.html#ess-8']")
    assert page.url.endswith("/variables/sex.html#ess-8")
    assert page.locator("section.entry:target h3").inner_text().startswith("ESS 8")
    page.screenshot(path=str(tmp_path / "codebook-sex.png"), full_page=False)

    assert errors == []
    assert requests and all(u.startswith("file://") for u in requests), [u for u in requests if not u.startswith("file")]
    assert (tmp_path / "codebook-index.png").stat().st_size > 10_000
    page.close()
