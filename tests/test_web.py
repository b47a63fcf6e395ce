"""The web page in a real headless Chromium (Playwright), against a real uvicorn serving
create_app over the seeded service, the LLM faked at its HTTP edge.

Screenshots go to $RAG_SCREENSHOT_DIR (default: the test's tmp_path)."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import Request
from playwright.sync_api import Browser, Page, expect, sync_playwright

from api.app import create_app
from rag.service import ArticleInput
from tests.conftest import DOC_A, DOC_B, build_answering, serving
from tests.fake_llm import NOT_FOUND_REPLY, PausedStream, cite, reply, sentence_number

CHROMIUM = os.environ.get("RAG_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: install Debian's `chromium` (make install does) "
                                                "or point RAG_CHROMIUM at one"),
]

SURRENDER_QUOTE = "asserting that 430 Ukrainian soldiers had surrendered"
ASSAULT_QUOTE = "Ukrainian troops had fought off eight Russian assaults"
LOSSES_QUOTE = "continues to suffer significant losses"
ARTICLE = (
    "Floods in Valencia\n\n"
    "The river Turia rose by four metres overnight, officials said. Schools in the old town stayed "
    "closed on Tuesday while crews cleared the streets of mud.\n\n"
    "The regional government asked for national help on Wednesday."
)

STREAMING = re.compile(r"\bstreaming\b")

expect.set_options(timeout=20_000)  # an answer embeds and retrieves on a shared two-core machine


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("RAG_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page: Page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"web-{name}.png"))


@pytest.fixture
def page(browser: Browser, live_server: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server)
    page = context.new_page()
    errors: list[str] = []
    requested: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/")
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"
    # Offline: every script, style, font and call goes to the service itself.
    assert requested and all(url.startswith(f"{live_server}/") for url in requested), requested


def ask(page: Page, question: str) -> None:
    page.locator("#question").fill(question)
    page.locator("#question").press("Enter")


def final_chunk(response) -> dict:
    """The last chunk of a streamed chat completion, the one with the grounding."""
    events = [line[len("data: "):] for line in response.text().splitlines() if line.startswith("data: ")]
    return json.loads(events[-2])  # the last is [DONE]


def answered(page: Page, question: str) -> dict:
    """Ask, wait for the whole answer, and return its final chunk."""
    with page.expect_response("**/v1/chat/completions") as response:
        ask(page, question)
    final = final_chunk(response.value)
    expect(page.locator(".turn.answer").last).not_to_have_class(STREAMING)
    return final


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width[0]} px wide in {width[1]}"


def assaults_and_losses(request: dict) -> str:
    """A reply citing two sentences, all but its closing brace: the model still writing."""
    numbers = [int(sentence_number(request, ASSAULT_QUOTE)), int(sentence_number(request, LOSSES_QUOTE))]
    return reply(numbers, "eight assaults, with significant losses")[:-1]


ANSWER_SHOWN = re.compile(r"^eight assaults, with significant losses\s*1\s*2\.$")


def test_answer_is_shown_once_checked_and_a_citation_opens_the_article_with_its_quote_highlighted(page, live_server, fake_llm, shots):
    resume = threading.Event()
    fake_llm.script(PausedStream(assaults_and_losses, "}", resume))
    controls = page.locator("#ask").bounding_box()
    try:
        with page.expect_response("**/v1/chat/completions") as response:
            ask(page, "How many Russian assaults did Ukrainian troops fight off, with what losses?")
            answer = page.locator(".turn.answer")
            # The answer is on the page while the model's reply is still open.
            expect(answer.locator(".answer-text")).to_have_text(ANSWER_SHOWN)
            screenshot(page, shots, "streaming")
            resume.set()
    finally:
        resume.set()
    final = final_chunk(response.value)
    assert not final["abstained"] and len(final["citations"]) == 2
    expect(answer).not_to_have_class(STREAMING)
    expect(answer.locator(".answer-text")).to_have_text(ANSWER_SHOWN)
    assert page.locator("#ask").bounding_box() == controls  # the controls never moved
    expect(page.locator("#ask-button")).to_be_enabled()

    for citation in final["citations"]:
        page.locator(f".answer-text button.chip[data-ref='{citation['ref']}']").click()
        mark = page.locator("#article-text mark#highlight")
        expect(mark).to_have_text(citation["quote"])
        expect(mark).to_be_in_viewport()
        expect(page.locator("#article-title")).to_have_text(citation["title"])
        text = httpx.get(f"{live_server}/v1/documents/{citation['document_id']}").json()["text"]
        assert text[citation["start"]:citation["end"]] == mark.text_content() == citation["quote"]
    screenshot(page, shots, "citation")

    # The retrieved passages are one click away, and each opens its article at its span.
    page.locator("details.passages summary").click()
    passages = page.locator("details.passages li")
    expect(passages).to_have_count(len(final["passages"]))
    passages.first.locator("button").click()
    expect(page.locator("mark#highlight")).to_have_text(final["passages"][0]["text"])


def test_follow_up_sends_the_history_and_new_conversation_starts_over(page, fake_llm, shots):
    fake_llm.script(cite(SURRENDER_QUOTE, "430 Ukrainian soldiers surrendered."))
    first = answered(page, "How many Ukrainian soldiers surrendered?")
    first_answer = page.locator(".turn.answer .answer-text").last.text_content()
    assert first["citations"][0]["document_id"] == DOC_A

    fake_llm.script(
        json.dumps({"question": "Who claimed that 430 Ukrainian soldiers had surrendered?"}),
        cite(SURRENDER_QUOTE, "Gerasimov claimed 430 Ukrainian soldiers had surrendered."),
    )
    with page.expect_request("**/v1/chat/completions") as sent:
        second = answered(page, "Who claimed that?")
    messages = sent.value.post_data_json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "How many Ukrainian soldiers surrendered?"
    assert messages[1]["content"] == "430 Ukrainian soldiers surrendered [1]."
    assert first_answer == "430 Ukrainian soldiers surrendered 1."  # the markers shown as chips
    assert messages[2]["content"] == "Who claimed that?"
    assert "How many Ukrainian soldiers surrendered?" in fake_llm.requests[-2]["messages"][-1]["content"]
    assert second["rewritten_question"] == "Who claimed that 430 Ukrainian soldiers had surrendered?"
    expect(page.locator(".rewritten").last).to_have_text(f"Answered as: {second['rewritten_question']}")
    expect(page.locator(".turn")).to_have_count(4)
    screenshot(page, shots, "conversation")

    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".turn")).to_have_count(0)
    expect(page.locator("#empty-log")).to_be_visible()
    expect(page.locator("#question")).to_be_focused()
    fake_llm.script(cite(ASSAULT_QUOTE, "Ukrainian troops fought off eight Russian assaults."))
    with page.expect_request("**/v1/chat/completions") as sent:
        answered(page, "How many assaults were fought off?")
    assert sent.value.post_data_json["messages"] == [{"role": "user", "content": "How many assaults were fought off?"}]


def test_an_abstention_is_shown_with_its_reason(page, fake_llm, shots):
    fake_llm.script(NOT_FOUND_REPLY)
    final = answered(page, "What did Gerasimov say about the ceasefire talks?")
    assert final["abstained"] and final["abstain_reason"]
    answer = page.locator(".turn.answer")
    expect(answer).to_have_class(re.compile(r"\babstained\b"))
    expect(answer.locator(".answer-status")).to_have_text("No answer in the articles")
    expect(answer.locator(".abstain-reason")).to_have_text(f"Why: {final['abstain_reason']}")
    expect(answer.locator(".answer-text button.chip")).to_have_count(0)
    screenshot(page, shots, "abstention")


def test_upload_lists_the_document_and_delete_asks_first(page, answering, tmp_path, shots):
    page.get_by_role("button", name="Documents").click()
    items = page.locator("#document-list li")
    expect(items).to_have_count(2)
    expect(page.locator(f"li[data-id='{DOC_B}']")).to_contain_text("chunks")

    assert "unexpectedly visited" in answering.get_document(DOC_A).title
    page.locator("#doc-search").fill("UNEXPECTEDLY Visited")  # any case
    expect(items).to_have_count(1)
    expect(items.first).to_have_attribute("data-id", DOC_A)
    page.locator("#doc-search").fill("")
    expect(items).to_have_count(2)

    article = tmp_path / "valencia-floods.txt"
    article.write_text(ARTICLE)
    page.locator("#upload").set_input_files(str(article))
    uploaded = page.locator("li[data-id='valencia-floods']")
    expect(uploaded).to_contain_text("Floods in Valencia")
    expect(page.locator("#documents-status")).to_contain_text("created")
    assert "valencia-floods" in [d.id for d in answering.list_documents()]

    # Dropped on the zone, as from a file manager; and a refused file shows the API's reason.
    dropped = page.evaluate_handle("""(text) => {
        const data = new DataTransfer();
        data.items.add(new File([text], "dropped-note.md", {type: "text/markdown"}));
        return data;
    }""", "# A dropped note\n\nThe council met on Monday and approved the budget.")
    page.locator("#drop-zone").dispatch_event("drop", {"dataTransfer": dropped})
    expect(page.locator("li[data-id='dropped-note']")).to_be_visible()
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\x89PNG\x00\x01\x02")
    page.locator("#upload").set_input_files(str(binary))
    expect(page.locator("#documents-error")).to_have_text("photo.txt is a binary file, not text")
    screenshot(page, shots, "documents")

    uploaded.get_by_role("button", name="Delete").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("valencia-floods")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(uploaded).to_be_visible()

    uploaded.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(uploaded).to_have_count(0)
    expect(page.locator("#documents-status")).to_have_text("Deleted Floods in Valencia")
    assert "valencia-floods" not in [d.id for d in answering.list_documents()]


def test_an_article_shows_its_metadata(page, answering):
    answering.ingest(ArticleInput(text=ARTICLE, document_id="valencia-floods", metadata={
        "date": "2024-10-30", "source": "Example Wire", "section": "world", "author": "A. Reporter",
        "url": "https://example.org/valencia",
    }))
    page.reload()
    page.get_by_role("button", name="Documents").click()
    page.locator("li[data-id='valencia-floods'] .document-open").click()
    expect(page.locator("#article-title")).to_have_text("Floods in Valencia")
    meta = page.locator("#article-meta")
    expect(meta.locator("[data-meta='date'] dd")).to_have_text("2024-10-30")
    expect(meta.locator("[data-meta='source'] dd")).to_have_text("Example Wire")
    expect(meta.locator("[data-meta='section'] dd")).to_have_text("world")
    expect(meta.locator("[data-meta='author'] dd")).to_have_text("A. Reporter")
    expect(meta.locator("[data-meta='url'] a")).to_have_attribute("href", "https://example.org/valencia")
    expect(page.locator("#article-text")).to_contain_text("The river Turia rose by four metres overnight")
    expect(page.locator("#article-text mark")).to_have_count(0)

    page.get_by_role("button", name="Documents").click()
    page.locator(f"li[data-id='{DOC_A}'] .document-open").click()
    expect(page.locator("#article-title")).to_have_text(answering.get_document(DOC_A).title)
    expect(page.locator("#article-meta [data-meta]")).to_have_count(1)  # no metadata: the id alone


def test_a_document_id_with_a_slash_keeps_it_in_the_url(page):
    # The same module the page runs (imports are cached): each segment encoded, the slash kept.
    path = page.evaluate("async () => (await import('/web/app.js')).documentPath('business/001 é?')")
    assert path == "/v1/documents/business/001%20%C3%A9%3F"


def test_phone_width_has_no_sideways_scroll(browser, live_server, fake_llm, shots):
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server,
                                  is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    try:
        page.goto("/")
        no_horizontal_scroll(page)
        fake_llm.script(cite(SURRENDER_QUOTE, "Gerasimov claimed that 430 Ukrainian soldiers had surrendered."))
        final = answered(page, "How many Ukrainian soldiers surrendered, according to Gerasimov?")
        no_horizontal_scroll(page)
        screenshot(page, shots, "phone-answer")

        page.locator(".answer-text button.chip").first.tap()
        expect(page.locator("#article-text mark")).to_have_text(final["citations"][0]["quote"])
        expect(page.locator("#article-text mark")).to_be_in_viewport()
        expect(page.locator(".chat")).to_be_hidden()
        no_horizontal_scroll(page)
        screenshot(page, shots, "phone-article")

        page.get_by_role("button", name="Back to the answer").tap()
        expect(page.locator(".answer-text button.chip").first).to_be_in_viewport()
        page.get_by_role("button", name="Documents").tap()
        expect(page.locator("#document-list li")).to_have_count(2)
        no_horizontal_scroll(page)
        screenshot(page, shots, "phone-documents")
    finally:
        context.close()


def test_the_keyboard_alone_asks_and_opens_a_citation(page, fake_llm, shots):
    def tab_to(selector: str, key: str = "Tab", limit: int = 30) -> None:
        for _ in range(limit):
            page.keyboard.press(key)
            if page.evaluate("(s) => document.activeElement.matches(s)", selector):
                outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
                assert outline != "none", f"{selector} shows no focus"
                return
        pytest.fail(f"{key} never reached {selector}")

    fake_llm.script(cite(ASSAULT_QUOTE, "Ukrainian troops fought off eight Russian assaults."))
    tab_to("#question")
    page.keyboard.type("How many assaults were fought off?")
    with page.expect_response("**/v1/chat/completions") as response:
        page.keyboard.press("Enter")
    quote = final_chunk(response.value)["citations"][0]["quote"]
    expect(page.locator(".turn.answer")).not_to_have_class(STREAMING)
    expect(page.locator("#question")).to_be_focused()

    tab_to(".answer-text button.chip", key="Shift+Tab")  # back from the ask box to the answer
    page.keyboard.press("Enter")
    expect(page.locator("#article-text mark")).to_have_text(quote)
    screenshot(page, shots, "keyboard")
    page.keyboard.press("Shift+Tab")  # from the article's title to "Back to the answer"
    page.keyboard.press("Enter")
    expect(page.locator(".answer-text button.chip")).to_be_focused()


# --- the API key ---------------------------------------------------------------------------------
def test_the_page_asks_for_the_api_key_once_and_sends_it(browser, embedder, fake_llm, tmp_path, shots):
    # The service's own key check (RAG_API_KEY); the middleware only records what the page sent.
    keyed = build_answering(tmp_path / "keyed", embedder, fake_llm, api_key="sesame")
    app = create_app(keyed)
    seen: list[str | None] = []

    @app.middleware("http")
    async def record_key(request: Request, call_next):
        if request.url.path.startswith("/v1/"):
            seen.append(request.headers.get("authorization"))
        return await call_next(request)

    with serving(app) as url:
        context = browser.new_context(base_url=url)
        page = context.new_page()
        try:
            page.goto("/")
            dialog = page.locator("#key-dialog")
            expect(dialog).to_be_visible()
            expect(dialog).to_contain_text("an API key is required")
            page.locator("#key-input").fill("open-up")
            page.locator("#key-input").press("Enter")
            expect(dialog).to_contain_text("refused the key")
            page.locator("#key-input").fill("sesame")
            screenshot(page, shots, "api-key")
            page.locator("#key-input").press("Enter")
            expect(dialog).to_be_hidden()
            page.get_by_role("button", name="Documents").click()
            expect(page.locator("#document-list li")).to_have_count(2)
            assert page.evaluate("localStorage.getItem('rag-news.api-key')") == "sesame"

            fake_llm.script(cite(ASSAULT_QUOTE, "Ukrainian troops fought off eight Russian assaults."))
            answered(page, "How many assaults were fought off?")
            page.locator(".answer-text button.chip").first.click()
            expect(page.locator("#article-text mark")).to_be_visible()

            page.reload()  # kept: not asked again
            page.get_by_role("button", name="Documents").click()
            expect(page.locator("#document-list li")).to_have_count(2)
            expect(dialog).to_be_hidden()
        finally:
            context.close()
    assert seen[:2] == [None, "Bearer open-up"]
    assert set(seen[2:]) == {"Bearer sesame"} and len(seen) >= 5


def test_a_read_only_key_sees_no_upload_and_no_delete(browser, embedder, fake_llm, tmp_path):
    keyed = build_answering(tmp_path / "keyed", embedder, fake_llm, api_key="editor", read_only_api_key="reader")
    try:
        with serving(create_app(keyed)) as url:
            for key, can_write in (("reader", False), ("editor", True)):
                context = browser.new_context(base_url=url)
                context.add_init_script(f"localStorage.setItem('rag-news.api-key', '{key}')")
                page = context.new_page()
                try:
                    page.goto("/")
                    page.get_by_role("button", name="Documents").click()
                    expect(page.locator("#document-list li")).to_have_count(2)
                    expect(page.get_by_role("button", name=re.compile("^Delete"))).to_have_count(2 if can_write else 0)
                    expect(page.locator("#drop-zone")).to_be_visible() if can_write else expect(page.locator("#drop-zone")).to_be_hidden()
                finally:
                    context.close()
    finally:
        keyed.close()


def test_a_long_article_keeps_its_title_and_back_link_in_view(page, answering):
    paragraphs = "\n\n".join(f"Paragraph {n}: the river Turia rose again and crews cleared mud from street {n}."
                             for n in range(80))
    answering.ingest(ArticleInput(text=f"Floods in Valencia\n\n{paragraphs}", document_id="long-floods"))
    page.reload()
    page.get_by_role("button", name="Documents").click()
    page.locator("li[data-id='long-floods'] .document-open").click()
    expect(page.locator("#article-text")).to_contain_text("street 79")
    page.locator("#article").evaluate("panel => { panel.scrollTop = panel.scrollHeight; }")
    expect(page.locator("#article-text")).to_contain_text("street 79")
    assert page.locator("#article").evaluate("panel => panel.scrollTop") > 500
    expect(page.locator("#article-title")).to_have_text("Floods in Valencia")
    expect(page.locator("#article-title")).to_be_in_viewport()
    expect(page.locator("#article .back")).to_be_in_viewport()
