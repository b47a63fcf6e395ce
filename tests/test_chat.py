"""/v1/chat/completions and /v1/models: OpenAI's shapes, streaming, follow-ups, grounding."""

import json

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import DOC_A, DOC_B
from tests.fake_llm import cite, cited_reply

SURRENDER_QUOTE = "asserting that 430 Ukrainian soldiers had surrendered"
ASSAULT_QUOTE = "Ukrainian troops had fought off eight Russian assaults"



def rewrite(question: str) -> str:
    return json.dumps({"question": question})


@pytest.fixture
def api(answering):
    with TestClient(create_app(answering)) as client:
        yield client


def sse_events(response) -> list:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            payload = line[len("data: "):]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def test_models(api):
    assert api.get("/v1/models").json()["data"][0]["id"] == "rag-news"


def test_non_streamed_completion_has_the_standard_shape_and_citations(api, fake_llm):
    fake_llm.script(cite(SURRENDER_QUOTE, "430 Ukrainian soldiers surrendered."))
    body = api.post("/v1/chat/completions", json={
        "model": "rag-news", "messages": [{"role": "user", "content": "How many Ukrainian soldiers surrendered?"}],
    }).json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    message = body["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "430 Ukrainian soldiers surrendered [1]."}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["citations"][0]["document_id"] == DOC_A and body["abstained"] is False
    assert body["rewritten_question"] == "How many Ukrainian soldiers surrendered?"
    assert len(fake_llm.requests) == 1  # no history: no rewrite


def test_follow_up_is_rewritten_from_the_history(api, fake_llm):
    fake_llm.script(
        rewrite("How many Ukrainian soldiers surrendered, according to Gerasimov?"),
        cite(SURRENDER_QUOTE, "430 Ukrainian soldiers surrendered."),
    )
    body = api.post("/v1/chat/completions", json={"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What did Gerasimov claim about Kursk?"},
        {"role": "assistant", "content": "He claimed Russia regained over 86% of the territory [1]."},
        {"role": "user", "content": "And how many surrendered?"},
    ]}).json()
    assert body["rewritten_question"] == "How many Ukrainian soldiers surrendered, according to Gerasimov?"
    rewrite_request, answer_request = fake_llm.requests
    conversation = rewrite_request["messages"][-1]["content"]
    assert "What did Gerasimov claim about Kursk?" in conversation and "And how many surrendered?" in conversation
    assert answer_request["messages"][-1]["content"].endswith(
        "Question: How many Ukrainian soldiers surrendered, according to Gerasimov?\nReply:")
    assert "430" in body["choices"][0]["message"]["content"]


def test_streamed_completion_ends_with_citations_and_done(api, fake_llm):
    fake_llm.script(cite(ASSAULT_QUOTE, "Ukrainian troops fought off eight Russian assaults."))
    with api.stream("POST", "/v1/chat/completions", json={
        "stream": True, "messages": [{"role": "user", "content": "How many assaults were fought off?"}],
    }) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert content == "Ukrainian troops fought off eight Russian assaults [1]."
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["citations"][0]["document_id"] == DOC_B and "eight Russian assaults" in final["citations"][0]["quote"]


def test_stream_shows_only_a_verified_answer(api, fake_llm):
    fake_llm.script(cited_reply(("Kyiv surrendered the whole region at dawn", "1")))
    with api.stream("POST", "/v1/chat/completions", json={
        "stream": True, "messages": [{"role": "user", "content": "How many assaults were fought off?"}],
    }) as response:
        events = sse_events(response)
    content = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert "Kyiv" not in content and content == "The articles do not contain the answer to this question."
    assert events[-2]["citations"] == [] and events[-1] == "[DONE]"


@pytest.mark.parametrize("body, fragment", [
    ({"messages": []}, "messages"),
    ({}, "messages"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "role"),
    ({"messages": [{"role": "user", "content": "   "}]}, "empty"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}, "last message"),
    ({"messages": [{"role": "user"}]}, "content"),
    ({"messages": "hello"}, "messages"),
])
def test_malformed_requests_are_4xx_with_a_message(api, body, fragment):
    response = api.post("/v1/chat/completions", json=body)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]


def test_llm_down_is_503_streamed_or_not(api, fake_llm):
    for stream in (False, True):
        fake_llm.script(httpx.ConnectError("refused"))
        response = api.post("/v1/chat/completions", json={
            "stream": stream, "messages": [{"role": "user", "content": "How many surrendered?"}]})
        assert response.status_code == 503 and "cannot reach the LLM" in response.json()["detail"]


def test_official_openai_client_against_uvicorn(live_server, fake_llm):
    client = openai.OpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == ["rag-news", "rag-news+sources"]

    fake_llm.script(cite(SURRENDER_QUOTE, "430 Ukrainian soldiers surrendered."))
    completion = client.chat.completions.create(
        model="rag-news", messages=[{"role": "user", "content": "How many Ukrainian soldiers surrendered?"}],
        temperature=0.2, max_tokens=200,
    )
    assert completion.choices[0].message.content == "430 Ukrainian soldiers surrendered [1]."
    assert completion.model_extra["citations"][0]["document_id"] == DOC_A
    assert fake_llm.requests[-1]["temperature"] == 0.2 and fake_llm.requests[-1]["max_tokens"] == 96  # an answer's cap (answer_max_tokens)

    fake_llm.script(cite(ASSAULT_QUOTE, "Ukrainian troops fought off eight Russian assaults."))
    stream = client.chat.completions.create(
        model="rag-news", stream=True,
        messages=[{"role": "user", "content": "How many assaults were fought off?"}],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Ukrainian troops fought off eight Russian assaults [1]."
    assert chunks[-1].model_extra["citations"][0]["document_id"] == DOC_B

    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="rag-news", messages=[{"role": "user", "content": " "}])
