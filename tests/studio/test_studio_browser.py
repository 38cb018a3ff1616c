"""The studio driven in a real browser (Playwright + Debian's chromium): open a sample, break
its YAML and see the located error, fix and save it, start a run with the fake provider, watch
it finish, open a conversation, drop it, see the re-exported dataset leave it out, open the report.

With FOUNTAIN_STUDIO_SCREENSHOTS=docs/images/studio the test also writes the screenshots of
docs/studio.md."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from studio_helpers import ServedStudio, chromium_browser, copy_sample

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install 'fountain[studio]')")

SHOTS = os.environ.get("FOUNTAIN_STUDIO_SCREENSHOTS")
RUN_TIMEOUT_MS = 150_000


def _shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["metadata"]["id"] for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def studio(tmp_path):
    folder = copy_sample(tmp_path)
    served = ServedStudio([folder])
    yield served, folder
    served.stop()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = chromium_browser(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        yield context.new_page()
        browser.close()


@pytest.mark.slow  # a browser, two fake runs and a report in subprocesses: about 35 s on 2 cores
def test_a_user_fixes_a_spec_runs_it_drops_a_conversation_and_the_export_leaves_it_out(studio, page):
    from playwright.sync_api import expect

    served, folder = studio
    original = (folder / "setup.yaml").read_text(encoding="utf-8")
    page.goto(served.url + "/#spec")
    expect(page.locator("#check-state")).to_have_text("valid")
    expect(page.locator("#mermaid svg")).to_be_visible()  # drawn by mermaid's own JavaScript
    expect(page.locator("#prompts")).to_contain_text("talking to the counselor")
    expect(page.locator("#plan")).to_contain_text("seed conversations")
    _shot(page, "spec")

    # Break the YAML: the located error of `fountain validate`, the file on disk untouched.
    page.fill("#setup", original.replace("user_role: COUNSELEE", "user_role: [COUNSELEE"))
    expect(page.locator("#check-state")).to_have_text("1 problem(s)")
    expect(page.locator("#problems")).to_contain_text(f"{folder}/setup.yaml:8:15")
    expect(page.locator("#problems")).to_contain_text("YAML syntax error")
    expect(page.locator("#problems")).to_contain_text("hint:")
    expect(page.locator("#prompts")).to_contain_text("Fix the problems")
    page.click("#problems .loc")  # the location takes the cursor to the line
    assert (
        page.evaluate(
            "(() => { const a = document.getElementById('setup'); "
            "return a.value.slice(a.selectionStart, a.selectionEnd); })()"
        )
        == "assistant_role: COUNSELOR"
    )
    _shot(page, "spec-error")
    assert (folder / "setup.yaml").read_text(encoding="utf-8") == original

    # Fix it and save: the two files are written, nothing else. (Dedup is switched off on the way:
    # it loads the embedder in each run, which would double the test's time on 2 cores.)
    before = sorted(p.name for p in folder.iterdir())
    fixed = original + "\nraters:\n  dedup:\n    enabled: false\n"
    page.fill("#setup", fixed)
    expect(page.locator("#check-state")).to_have_text("valid")
    page.click("#save")
    expect(page.locator("#saved")).to_have_text(re.compile(r"^saved at "))
    assert (folder / "setup.yaml").read_text(encoding="utf-8") == fixed
    assert sorted(p.name for p in folder.iterdir()) == before

    # Run with the fake provider and watch it finish.
    page.click("#tab-run")
    page.select_option("#provider", "fake")
    page.fill("#derivations", "1")
    page.fill("#seed", "1")
    page.click("#start")
    expect(page.locator("#run-state")).to_have_attribute("data-state", "completed", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#counts")).to_contain_text("seeds")
    expect(page.locator("#usage")).to_contain_text("records")
    _shot(page, "run")
    dataset = folder / "output" / "dataset.jsonl"
    ids = _ids(dataset)
    assert ids

    # Open a seed conversation (its derivations hang under it) and drop it.
    page.click("#tab-data")
    seed_id = ids[0]
    record = page.locator(f'.rec[data-id="{seed_id}"]')
    expect(record).to_be_visible()
    assert page.locator(f'.rec[data-id="{seed_id}"] + ul .rec').count() >= 1  # the derivation tree
    record.click()
    expect(page.locator("#detail .msg.user").first).to_be_visible()
    page.click("#drop")
    expect(page.locator("#decision")).to_have_text("review: drop")
    expect(record).to_have_class(re.compile(r"\bdrop\b"))
    _shot(page, "data")
    assert (folder / "output" / "seeds.jsonl").read_text().count(seed_id) >= 1  # the journals are untouched

    # Re-export: the run resumes (nothing paid twice) and the dataset leaves the record out.
    page.click("#reexport")
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while seed_id in _ids(dataset):
        assert time.monotonic() < deadline, "the re-export did not drop the record"
        time.sleep(0.5)
    assert _ids(dataset) == ids[1:]
    expect(page.locator("#run-state")).to_have_attribute("data-state", "completed", timeout=RUN_TIMEOUT_MS)

    # The report of the run opens in a new tab, served from the folder.
    with page.expect_popup(timeout=RUN_TIMEOUT_MS) as popup:
        page.click("#report")
    report = popup.value
    report.wait_for_load_state()
    assert report.url.endswith("/api/folders/0/files/output/report.html")
    expect(report.locator("body")).to_contain_text("conversations")
