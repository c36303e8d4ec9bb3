"""The chat in a real browser: Debian's chromium driven by Playwright against `python app.py` on the
seeds (see test_app_e2e.start_app). Requests that leave 127.0.0.1 are blocked and counted. A PDF made
at test time is uploaded and asked about: its citation shows the page and links to the PDF at that
page; a screenshot of that Sources panel is saved as $TMPDIR/rag-sources-pdf.png for a person to look at.

Skips when chromium (or Playwright) is missing, unless CI=true: then it fails, so CI cannot pass
without having run it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest
from fixture_files import pdf_bytes
from test_app_e2e import ANSWERABLE, start_app, stop_app

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCRIPT_QUESTION = "<script>alert(1)</script> What about NATO?"
LIGHTHOUSE_PAGES = [
    "Miral Harbour Report\nThe old harbour of Lake Miral was rebuilt in 1998 by the town council after the storm.",
    "Grey herons nest in the tall reeds along the eastern shore of Lake Miral every spring.",
    "The Miral lighthouse keeper rings the brass fog bell forty times an hour during winter storms.",
]
SCREENSHOT = Path(tempfile.gettempdir()) / "rag-sources-pdf.png"
UPLOAD_SCREENSHOT = Path(tempfile.gettempdir()) / "rag-upload-box.png"
LOCAL = ("http://127.0.0.1", "http://localhost", "ws://127.0.0.1", "data:", "blob:", "about:")


def _missing() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    if not shutil.which("chromium"):
        return ("Debian's chromium is not installed (apt-get install -y chromium); "
                "Playwright's own browsers are not used")
    return ""


@pytest.fixture(scope="module")
def browser():
    reason = _missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the browser test cannot run: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def app(browser, tmp_path_factory):
    app = start_app(tmp_path_factory.mktemp("browser-app"))
    yield app
    stop_app(app)


@pytest.fixture
def page(browser, app):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.dialogs, page.external = [], []

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    def route(r):
        if r.request.url.startswith(LOCAL):
            r.continue_()
        else:
            page.external.append(r.request.url)
            r.abort()

    page.on("dialog", on_dialog)
    page.route("**/*", route)
    page.goto(app.url)
    page.wait_for_selector("#question textarea", timeout=30_000)
    yield page
    assert page.dialogs == [], f"a script ran: {page.dialogs}"
    assert page.external == [], f"the page tried to reach the internet: {page.external}"
    context.close()


def ask(page, question: str) -> None:
    """Type `question`, press Enter and wait until its answer (a new bot message) is on the page."""
    bots = page.locator("#chat .message.bot, #chat [data-testid='bot']")
    before = bots.count()
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")
    page.wait_for_function(  # a new bot message, and no longer Gradio's placeholder while it is processing
        "n => document.querySelectorAll(\"#chat .message.bot, #chat [data-testid='bot']\").length > n"
        " && !/Loading content|processing \\|/.test(document.querySelector('#chat').innerText)",
        arg=before, timeout=60_000)
    page.wait_for_timeout(300)


def test_answer_has_citation_and_highlighted_sentence(page):
    ask(page, ANSWERABLE)
    chat = page.locator("#chat")
    assert "[1]" in chat.inner_text() and "Mirage 2000-5" in chat.inner_text()
    mark = page.locator("#sources-box mark").first
    mark.wait_for(state="visible")
    assert "Mirage 2000-5 fighter jets" in mark.inner_text()
    sources = page.locator("#sources-box").inner_text()
    assert "Diplomatic Bluebook 2025" in sources and "line 14" in sources and "score" in sources
    assert "Other retrieved passages" in sources
    # the other passages are collapsed until asked for
    assert not page.locator("#sources-box details.src-more").get_attribute("open")


def test_script_in_a_question_is_shown_as_text(page):
    ask(page, SCRIPT_QUESTION)
    shown = page.get_by_text(SCRIPT_QUESTION, exact=True)
    shown.wait_for(state="visible")
    assert page.locator("#chat script").count() == 0
    assert SCRIPT_QUESTION in page.locator("#chat").inner_text()
    page.wait_for_timeout(500)  # give a script every chance to fire (the fixture checks for dialogs)


def test_abstention_follow_up_and_new_chat(page):
    ask(page, "What is the capital of Peru?")
    assert "The documents do not answer this." in page.locator("#chat").inner_text()
    sources = page.locator("#sources-box")
    assert "Closest passages" in sources.inner_text()
    assert sources.locator("details.src-more").get_attribute("open") is not None
    ask(page, "When was the European Peace Facility set up?")
    ask(page, "And in 2021?")
    page.locator("#chat").get_by_text(re.compile(r"Read as: .*2021")).wait_for(timeout=30_000)  # a busy CI is slow
    assert re.search(r"Read as: .*2021", page.locator("#chat").inner_text())
    page.click("#new-chat")
    page.wait_for_function("() => !document.querySelector('#chat .message.bot')", timeout=10_000)
    assert "Ask a question: the passages behind the answer appear here" in sources.inner_text()


def test_empty_question_leaves_the_last_answer_alone(page):
    """An empty question shows a toast; no reply is added (it would merge into the last answer's bubble)."""
    ask(page, "When was the European Peace Facility set up?")
    bots = page.locator("#chat .message.bot, #chat [data-testid='bot']")
    count, last = bots.count(), bots.last.inner_text()
    sources = page.locator("#sources-box").inner_text()
    page.fill("#question textarea", "   ")
    page.press("#question textarea", "Enter")
    page.get_by_text("Please type a question first.").wait_for(state="visible", timeout=10_000)
    assert bots.count() == count and bots.last.inner_text() == last
    assert page.locator("#sources-box").inner_text() == sources


def test_example_question_runs_on_click(page):
    page.get_by_text("Which fighter jets did France announce for Ukraine?").click()
    page.locator("#sources-box mark").first.wait_for(state="visible", timeout=30_000)
    assert "[1]" in page.locator("#chat").inner_text()


def test_upload_good_and_bad_files_then_ask_about_the_new_one(page, app, tmp_path):
    good = tmp_path / "sea otters.md"
    good.write_text("# Sea Otters\n\nSea otters hold hands while they sleep <img src=x onerror=alert(1)> so that "
                    "they do not drift apart.\n", encoding="utf-8")
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\x89PNG\x00\x00\x00")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    page.get_by_text("Add your own documents").click()
    page.set_input_files("#upload input[type=file]", [str(good), str(binary), str(pdf)])
    status = page.locator("#upload-status")
    status.get_by_text("Added 1 document").wait_for(timeout=120_000)
    text = status.inner_text()
    assert "sea_otters.md" in text and "photo.txt" in text and "binary" in text and "report.pdf" in text
    assert (app.docs / "sea_otters.md").exists() and not (app.docs / "photo.txt").exists()
    assert "3 documents" in page.locator("#index-info").inner_text()
    page.get_by_text("Settings").click()
    page.get_by_label("Only this document").click()
    page.get_by_text("Sea Otters — sea_otters.md").wait_for(state="visible")  # the filter offers it at once
    page.keyboard.press("Escape")
    ask(page, "Why do sea otters hold hands while they sleep?")
    sources = page.locator("#sources-box").inner_text()
    assert "sea_otters.md" in sources and "<img src=x onerror=alert(1)>" in sources


def test_a_pdf_citation_shows_its_page_and_opens_the_pdf_there(page, app, tmp_path):
    pdf = tmp_path / "Miral harbour.pdf"
    pdf.write_bytes(pdf_bytes(LIGHTHOUSE_PAGES))
    renamed = tmp_path / "lighthouse notes.txt"  # a PDF under a text name: saved as a PDF
    renamed.write_bytes(pdf_bytes(["Lighthouse Notes\nThe Miral lamp was converted to electricity in 1952.",
                                   "Its lens was made in Paris and weighs two tonnes."]))
    page.get_by_text("Add your own documents").click()
    assert "PDF" not in page.locator("#upload label").first.inner_text()  # the label stays short
    assert "PDF, Word (.docx), HTML" in page.locator("#upload-info").inner_text()
    page.locator("#upload").screenshot(path=str(UPLOAD_SCREENSHOT))
    page.set_input_files("#upload input[type=file]", [str(pdf), str(renamed)])
    status = page.locator("#upload-status")
    status.get_by_text("Added 2 documents").wait_for(timeout=180_000)
    assert "Miral_harbour.pdf" in status.inner_text() and "lighthouse_notes.pdf" in status.inner_text()
    assert "lighthouse notes.txt is a PDF file: saved as lighthouse_notes.pdf" in status.inner_text()
    ask(page, "How often does the Miral lighthouse keeper ring the fog bell?")
    card = page.locator("#sources-box .src-cited").first
    card.wait_for(state="visible")
    assert "forty times an hour" in card.locator("mark").first.inner_text()
    meta = card.locator(".src-meta").inner_text()
    assert "Miral_harbour.pdf" in meta and "p. 3" in meta and "line" not in meta
    link = card.locator("a.src-link")
    href = link.get_attribute("href")
    assert href == "source/Miral_harbour.pdf#page=3"
    assert link.get_attribute("target") == "_blank" and "noopener" in link.get_attribute("rel").split()
    page.locator("#sources-box").screenshot(path=str(SCREENSHOT))
    # the link, resolved against the page, serves the PDF itself
    url = page.evaluate("h => new URL(h, document.baseURI).href", href)
    assert url == f"{app.url}source/Miral_harbour.pdf#page=3"
    served = httpx.get(url.split("#")[0], timeout=10)
    assert served.status_code == 200 and served.headers["content-type"] == "application/pdf"
    assert served.content == (app.docs / "Miral_harbour.pdf").read_bytes()
    with page.context.expect_page(timeout=15_000) as opened:
        link.click()
    tab = opened.value
    assert tab.url == url  # a new tab at the page of the PDF
    tab.close()
    page.screenshot(path=str(SCREENSHOT.with_name("rag-page-pdf.png")), full_page=True)
