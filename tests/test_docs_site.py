"""The docs site builds with `mkdocs build --strict` and reads offline in headless Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium import DevTools, open_offline, problems

# The docs toolchain is installed where the site is built: the newest Python (see the
# docs group in pyproject.toml); the 3.10 and lowest-versions runs do not have it.
pytest.importorskip("mkdocstrings", reason="the docs group is installed on Python >= 3.11.5")

ROOT = Path(__file__).resolve().parent.parent

# What the page shows: its title, the text of the article, and the API entries.
PAGE_STATE = """JSON.stringify({
  title: document.title,
  text: (document.querySelector("article") || document.body).innerText,
  headings: [...document.querySelectorAll("article h1, article h2")].map(h => h.innerText),
  api: [...document.querySelectorAll(".doc-heading")].map(c => c.innerText),
})"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The site, built once from docs/ with --strict (a broken link fails the build)."""
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, build.stderr
    yield out


def read_page(browser: DevTools, page: Path) -> dict[str, object]:
    """Open one built page offline; fail on errors, requests off the site, or no content."""
    browser.events.clear()  # each page is judged on its own events
    open_offline(browser, page.as_uri())
    state: dict[str, object] = json.loads(browser.evaluate(PAGE_STATE))
    assert problems(browser) == []
    fetched = {
        e["params"]["request"]["url"]
        for e in browser.events
        if e["method"] == "Network.requestWillBeSent"
    }
    outside = {u for u in fetched if not u.startswith(("file://", "data:"))}
    assert outside == set(), f"{page} fetched {outside}"
    return state


@pytest.mark.browser
def test_overview_reads_offline(site: Path, browser: DevTools) -> None:
    """The home page renders in Chromium with no error and no request off the machine."""
    state = read_page(browser, site / "index.html")
    assert "agent_usage" in str(state["title"])
    assert "Exact per-invoke token and cost accounting" in str(state["text"])


@pytest.mark.browser
def test_api_page_is_generated_from_the_docstrings(site: Path, browser: DevTools) -> None:
    """mkdocstrings rendered every public name, with its docstring, into the API page."""
    import agent_usage

    state = read_page(browser, site / "api" / "index.html")
    shown = " ".join(str(x) for x in state["api"])  # type: ignore[attr-defined]
    for name in agent_usage.__all__:
        assert name in shown, f"{name} missing from the API page"
    first_line = (agent_usage.EventLog.__doc__ or "").strip().splitlines()[0].replace("`", "")
    assert first_line in str(state["text"])


@pytest.mark.browser
def test_every_reference_page_has_content(site: Path, browser: DevTools) -> None:
    """Every page of the nav exists and shows more than a stub."""
    pages = sorted(p for p in site.glob("*/index.html") if p.parent.name not in {"search"})
    assert len(pages) >= 15
    for page in pages:
        state = read_page(browser, page)
        assert "To be written" not in str(state["text"]), page
        assert len(str(state["text"])) > 400, page
