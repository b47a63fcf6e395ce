"""Every OpenAI-style client works against /v1/chat/completions: the official `openai` client,
LlamaIndex's OpenAILike and simonw's `llm`, each streamed and not, against a real uvicorn on
loopback with the fake LLM at the HTTP edge. Citations arrive in the extra fields and, with the
model `rag-news+sources`, as a "Sources:" block in the text every client shows."""

import json

import openai
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import DOC_A, DOC_B
from tests.fake_llm import cite

SURRENDER_QUOTE = "asserting that 430 Ukrainian soldiers had surrendered"
ASSAULT_QUOTE = "Ukrainian troops had fought off eight Russian assaults"
SURRENDER_ANSWER = "430 Ukrainian soldiers surrendered [1]."
ASSAULT_ANSWER = "Ukrainian troops fought off eight Russian assaults [1]."
SURRENDER_Q = "How many Ukrainian soldiers surrendered?"
ASSAULT_Q = "How many assaults were fought off?"


def script_surrender(fake_llm) -> None:
    fake_llm.script(cite(SURRENDER_QUOTE, "430 Ukrainian soldiers surrendered."))


def script_assault(fake_llm) -> None:
    fake_llm.script(cite(ASSAULT_QUOTE, "Ukrainian troops fought off eight Russian assaults."))


def assert_sources(text: str, answer: str, document_id: str, quote_fragment: str) -> None:
    body, sources = text.split("\n\nSources:\n")
    assert body == answer
    first = sources.splitlines()[0]
    assert first.startswith(f"- [1] {document_id} [") and quote_fragment in first


# --- the response shape ------------------------------------------------------------------------
@pytest.fixture
def api(answering):
    with TestClient(create_app(answering)) as client:
        yield client


def sse_events(response) -> list:
    return [line[len("data: "):] if line == "data: [DONE]" else json.loads(line[len("data: "):])
            for line in response.iter_lines() if line.startswith("data: ")]


def test_a_completion_has_usage_fingerprint_and_every_standard_field(api, fake_llm):
    script_surrender(fake_llm)
    body = api.post("/v1/chat/completions", json={
        "model": "rag-news", "messages": [{"role": "user", "content": SURRENDER_Q}]}).json()
    assert {"id", "object", "created", "model", "system_fingerprint", "choices", "usage"} <= set(body)
    assert body["model"] == "rag-news" and body["system_fingerprint"].startswith("fp_")
    assert body["created"] > 1_700_000_000
    assert body["choices"][0] == {"index": 0, "finish_reason": "stop", "logprobs": None,
                                  "message": {"role": "assistant", "content": SURRENDER_ANSWER}}
    # The fake streams the answer without usage: estimated from the prompt the model was shown;
    # the confirm check is a non-streamed call, where the fake reports 1 + 1 tokens.
    prompt = "".join(m["content"] for m in fake_llm.requests[-1]["messages"])
    usage = body["usage"]
    assert len(fake_llm.checks) == 1
    assert usage["prompt_tokens"] == (len(prompt) + 3) // 4 + 1 and usage["completion_tokens"] > 1
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert fake_llm.requests[-1]["stream_options"] == {"include_usage": True}


def test_usage_the_model_server_reports_is_summed_over_the_calls(api, fake_llm):
    """A follow-up's rewrite and the confirm check are non-streamed calls, where the fake reports
    1 + 1 tokens each."""
    fake_llm.script(json.dumps({"question": SURRENDER_Q}), cite(SURRENDER_QUOTE, "430 Ukrainian soldiers surrendered."))
    body = api.post("/v1/chat/completions", json={"messages": [
        {"role": "user", "content": "What happened in Kursk?"},
        {"role": "assistant", "content": "Fighting [1]."},
        {"role": "user", "content": "How many surrendered?"}]}).json()
    answer_prompt = "".join(m["content"] for m in fake_llm.requests[-1]["messages"])
    assert len(fake_llm.checks) == 1
    assert body["usage"]["prompt_tokens"] == 1 + (len(answer_prompt) + 3) // 4 + 1


def test_a_stream_with_include_usage_ends_with_a_usage_chunk(api, fake_llm):
    script_assault(fake_llm)
    with api.stream("POST", "/v1/chat/completions", json={
        "model": "rag-news+sources", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": ASSAULT_Q}]}) as response:
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    *chunks, last = events[:-1]
    assert last["choices"] == [] and last["usage"]["total_tokens"] > 0
    assert all(c["usage"] is None and c["system_fingerprint"] == last["system_fingerprint"] for c in chunks)
    assert {c["model"] for c in events[:-1]} == {"rag-news+sources"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert_sources(text, ASSAULT_ANSWER, DOC_B, "eight Russian assaults")
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["citations"][0]["document_id"] == DOC_B


def test_no_usage_chunk_unless_asked_and_no_sources_block_without_citations(api, fake_llm):
    fake_llm.script(cite(ASSAULT_QUOTE, "Kyiv surrendered the whole region at dawn."))  # not in its sentence
    with api.stream("POST", "/v1/chat/completions", json={
        "model": "rag-news+sources", "stream": True, "messages": [{"role": "user", "content": ASSAULT_Q}]}) as response:
        events = sse_events(response)
    assert all("usage" not in c and c["choices"] for c in events[:-1])
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in events[:-1])
    assert "Sources:" not in text and events[-2]["citations"] == []


# --- real clients against a real server --------------------------------------------------------
def test_openai_client_streamed_and_not(live_server, fake_llm):
    client = openai.OpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0)
    script_surrender(fake_llm)
    completion = client.chat.completions.create(
        model="rag-news", messages=[{"role": "user", "content": SURRENDER_Q}])
    assert completion.choices[0].message.content == SURRENDER_ANSWER
    assert completion.usage.total_tokens > 0 and completion.system_fingerprint.startswith("fp_")
    assert completion.model_extra["citations"][0]["document_id"] == DOC_A

    script_assault(fake_llm)
    chunks = list(client.chat.completions.create(
        model="rag-news+sources", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": ASSAULT_Q}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert_sources(text, ASSAULT_ANSWER, DOC_B, "eight Russian assaults")
    assert chunks[-1].usage.completion_tokens > 0
    assert chunks[-2].model_extra["citations"][0]["document_id"] == DOC_B


def test_llamaindex_openai_like_streamed_and_not(live_server, fake_llm):
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(model="rag-news+sources", api_base=f"{live_server}/v1", api_key="unused",
                     is_chat_model=True, max_retries=0, timeout=60)
    script_surrender(fake_llm)
    response = llm.chat([ChatMessage(role="user", content=SURRENDER_Q)])
    assert_sources(response.message.content, SURRENDER_ANSWER, DOC_A, "430 Ukrainian soldiers")
    assert response.raw.model_extra["citations"][0]["document_id"] == DOC_A

    script_assault(fake_llm)
    last = None
    for last in llm.stream_chat([ChatMessage(role="user", content=ASSAULT_Q)]):
        pass
    assert_sources(last.message.content, ASSAULT_ANSWER, DOC_B, "eight Russian assaults")


@pytest.fixture
def llm_user_path(live_server, tmp_path, monkeypatch):
    """simonw's llm with the service as an extra OpenAI model, in a user dir of its own."""
    (tmp_path / "llm").mkdir()
    (tmp_path / "llm" / "extra-openai-models.yaml").write_text(
        f"- model_id: rag-news\n  model_name: rag-news\n  api_base: {live_server}/v1\n"
        f"- model_id: rag-news-sources\n  model_name: rag-news+sources\n  api_base: {live_server}/v1\n"
    )
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    return tmp_path / "llm"


def test_simonw_llm_cli_streamed_and_not(llm_user_path, fake_llm):
    from click.testing import CliRunner
    from llm.cli import cli

    runner = CliRunner()
    script_surrender(fake_llm)  # the reported failure: usage missing from the non-streamed reply
    result = runner.invoke(cli, ["-m", "rag-news-sources", "--no-stream", SURRENDER_Q], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert_sources(result.output.rstrip("\n"), SURRENDER_ANSWER, DOC_A, "430 Ukrainian soldiers")

    script_assault(fake_llm)
    result = runner.invoke(cli, ["-m", "rag-news-sources", ASSAULT_Q], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert_sources(result.output.rstrip("\n"), ASSAULT_ANSWER, DOC_B, "eight Russian assaults")

    logged = json.loads(runner.invoke(cli, ["logs", "--json", "-n", "2"]).output)
    assert all(entry["input_tokens"] > 0 and entry["output_tokens"] > 0 for entry in logged)


def test_simonw_llm_python_api_streamed_and_not(llm_user_path, fake_llm):
    import llm

    model = llm.get_model("rag-news")
    script_surrender(fake_llm)
    response = model.prompt(SURRENDER_Q, stream=False)
    assert response.text() == SURRENDER_ANSWER
    assert response.json()["citations"][0]["document_id"] == DOC_A
    assert response.usage().input > 0

    # llm keeps only the standard fields of a streamed reply: the Sources block carries them.
    script_assault(fake_llm)
    response = llm.get_model("rag-news-sources").prompt(ASSAULT_Q)
    assert_sources("".join(response), ASSAULT_ANSWER, DOC_B, "eight Russian assaults")
    assert response.usage().output > 0
