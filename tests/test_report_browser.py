"""The report of a real run, laid out by a real browser (headless Chromium) at 1,280 px: no
element is wider than the window, numbers are right-aligned and text left-aligned, every
image loads, and each table's first column stays in view when its box scrolls.

Chromium comes from the distribution (Debian's ``chromium``; ``./dev.sh test`` installs it
where it runs as root). Without it the test is skipped, unless ``MOVIE_REC_REQUIRE_BROWSER``
is set (CI sets it), when it fails. The page is loaded from a file with a probe script
added, and Chromium prints the laid-out page (``--dump-dom``) with the probe's findings.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

WIDTH = 1280
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
PROBE = """<script>
window.addEventListener("load", () => {
  const limit = window.innerWidth;
  const describe = (e) => `${e.tagName.toLowerCase()}.${e.className} "${e.textContent.slice(0, 40)}"`;
  const box = (e) => e.getBoundingClientRect();
  const align = (selector) => [...new Set([...document.querySelectorAll(selector)]
    .map((e) => getComputedStyle(e).textAlign))];
  const firstCells = [...document.querySelectorAll("tr > :first-child")];
  document.body.setAttribute("data-probe", JSON.stringify({
    innerWidth: limit,
    pageWidth: document.documentElement.scrollWidth,
    wider: [...document.querySelectorAll("body *")]
      .filter((e) => box(e).width > limit || box(e).right > limit)
      .map((e) => `${describe(e)}: ${Math.round(box(e).width)} px`),
    numbers: align("td.num, th.num"),
    texts: align("td.text, th.text"),
    tables: document.querySelectorAll("table").length,
    cells: document.querySelectorAll("td").length,
    firstColumnFixed: [...new Set(firstCells.map((e) => getComputedStyle(e).position))],
    images: [...document.images].map((image) => image.complete && image.naturalWidth > 0),
  }));
});
</script>"""


def chromium() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def lay_out(report: Path, work: Path) -> dict:
    """The probe's findings on ``report`` laid out by headless Chromium at ``WIDTH`` px."""
    browser = chromium()
    if browser is None:
        message = "Chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("MOVIE_REC_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    probed = work / "probed.html"
    probed.write_text(report.read_text().replace("</body>", f"{PROBE}</body>"))
    result = subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={work / 'profile'}", f"--window-size={WIDTH},900",
         "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    found = re.search(r'data-probe="([^"]*)"', result.stdout)
    assert found, f"the probe did not run:\n{result.stdout[:500]}\n{result.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.slow
def test_the_report_fits_1280_px_with_numbers_right_and_text_left(tiny_run, tmp_path):
    probe = lay_out(tiny_run / "data" / "08_reporting" / "report.html", tmp_path)
    assert probe["innerWidth"] == WIDTH
    assert probe["wider"] == []
    assert probe["pageWidth"] <= WIDTH  # the page itself never scrolls sideways
    assert probe["tables"] >= 8 and probe["cells"] > 500
    assert probe["numbers"] == ["right"]
    assert probe["texts"] == ["left"]
    assert probe["firstColumnFixed"] == ["sticky"]
    assert len(probe["images"]) == 6 and all(probe["images"])
