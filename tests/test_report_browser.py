"""The report page in a real browser (headless Chromium from Debian's packages; ``.ci/run`` installs it):
it renders, the console stays clean, no request leaves the page, and a click on a header sorts the table.

The screenshots are saved as test artefacts in ``$GENBENCH_TEST_ARTIFACTS`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from genbench.reporting.make import write_report

from .browser import Browser, find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH: `apt-get install chromium` (.ci/run installs it) to run browser tests",
)
ARTIFACTS = Path(os.environ.get("GENBENCH_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))


def column_values(browser: Browser, session: str, header: str) -> list[str]:
    """The sort keys (``data-v``) of the column headed ``header`` of the first table, top to bottom."""
    script = (
        "(function(h){var t=document.querySelector('table.sortable');"
        "var i=Array.prototype.findIndex.call(t.tHead.rows[0].cells,function(c){return c.textContent.trim()===h;});"
        "return Array.prototype.map.call(t.tBodies[0].rows,function(r){return r.cells[i].getAttribute('data-v');});"
        f"}})({json.dumps(header)})"
    )
    return list(browser.evaluate(session, script))


def test_the_report_renders_offline_without_errors_and_sorts(digits_run: Path, toy_run: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    page = tmp_path / "report.html"
    write_report([digits_run], page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with Browser(CHROMIUM) as browser:
        session = browser.open(page.as_uri())
        assert browser.evaluate(session, "document.title") == "genbench report: digits-run"
        assert browser.problems() == []
        # every request is the page itself or one of its own data: URIs; nothing leaves the page
        requests = browser.requests()
        assert requests[0] == page.as_uri()
        assert all(url == page.as_uri() or url.startswith("data:image/") for url in requests), requests
        # it renders: every picture decoded, every chart laid out
        images = browser.evaluate(
            session, "Array.prototype.map.call(document.images,function(i){return i.complete&&i.naturalWidth>0;})"
        )
        assert len(images) >= 40 and all(images)  # 8 ok cells: samples and figures; 4 thumbnails
        charts = browser.evaluate(
            session,
            "Array.prototype.map.call(document.querySelectorAll('svg'),function(s){return s.getBBox().width;})",
        )
        assert len(charts) > 20 and all(w > 100 for w in charts)
        browser.screenshot(session, ARTIFACTS / "report.png", full_page=False)

        # a real click on the FID header sorts the rows by it, ascending, then descending; empty cells last
        browser.click(session, "table.sortable th:nth-child(7)")
        assert browser.evaluate(session, "document.querySelector('table.sortable th:nth-child(7)').textContent") == (
            "FID (domain)"
        )
        ascending = column_values(browser, session, "FID (domain)")
        numbers = [float(v) for v in ascending if v]
        assert numbers == sorted(numbers) and ascending[len(numbers) :] == [""] * (len(ascending) - len(numbers))
        browser.click(session, "table.sortable th:nth-child(7)")
        descending = [float(v) for v in column_values(browser, session, "FID (domain)") if v]
        assert descending == sorted(numbers, reverse=True)
        assert browser.problems() == []

    both = tmp_path / "both.html"
    write_report([digits_run, toy_run], both)
    with Browser(CHROMIUM) as browser:
        session = browser.open(both.as_uri())
        assert browser.problems() == []
        assert all(url == both.as_uri() or url.startswith("data:image/") for url in browser.requests())
        columns = browser.evaluate(
            session,
            "Array.prototype.map.call(document.querySelectorAll('#comparison + .runs > .card'),"
            "function(c){return Math.round(c.getBoundingClientRect().left);})",
        )
        assert len(columns) == 2 and columns[0] < columns[1]  # the two runs side by side
        browser.screenshot(session, ARTIFACTS / "report-two-runs.png")
    with Image.open(ARTIFACTS / "report.png") as shot:
        assert shot.size == (1400, 1000)
