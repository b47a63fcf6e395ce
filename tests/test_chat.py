"""/v1/chat/completions and /v1/models: OpenAI's shapes, streaming, follow-ups, grounding."""

import json

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.answer.parse import CitedProseParser
from rag.answer.prompt import number_sentences
from rag.models import Passage
from tests.conftest import DOC_A, DOC_B
from tests.fake_llm import NOT_FOUND_REPLY, cite, cited_reply

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
        "Question: How many Ukrainian soldiers surrendered, according to Gerasimov?")
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


def test_stream_shows_only_verified_claims(api, fake_llm):
    def reply(request):
        good = cite(ASSAULT_QUOTE, "Ukrainian troops fought off eight Russian assaults.")(request)
        return cited_reply(("Kyiv surrendered the whole region at dawn", "1.1")) + " " + good

    fake_llm.script(reply)
    with api.stream("POST", "/v1/chat/completions", json={
        "stream": True, "messages": [{"role": "user", "content": "How many assaults were fought off?"}],
    }) as response:
        content = "".join(e["choices"][0]["delta"].get("content", "") for e in sse_events(response)[:-1])
    assert content == "Ukrainian troops fought off eight Russian assaults [1]."


def test_stream_parser_yields_each_claim_once_complete():
    passages = [Passage(document_id=d, title="", chunk_id=f"{d}-0", text=t, start=0, end=len(t), score=1.0)
                for d, t in (("a", "One fact. Two facts."), ("b", "Third fact here."))]
    numbered = number_sentences(passages)
    assert numbered.text == "[1.1] One fact.\n[1.2] Two facts.\n\n[2.1] Third fact here."
    text = ("The U.S. said first [1.1]. Gen. Smith said second [1.2, 2.1][2.1]. Third [1.1], and more [2.1]. "
            "Fourth [1.2], [2.1]. Uncited tail.")
    parser = CitedProseParser(numbered)
    seen = []
    for index, char in enumerate(text):
        seen += [(draft, index) for draft in parser.feed(char)]
    seen += [(draft, len(text)) for draft in parser.finish()]
    first, second, third, fourth = (draft for draft, _ in seen)
    def quoted(draft):
        return [(c.passage, passages[c.passage - 1].text[c.start : c.end]) for c in draft.cited]

    assert (first.statement, quoted(first)) == ("The U.S. said first", [(1, "One fact.")])
    assert (second.statement, quoted(second)) == ("Gen. Smith said second", [(1, "Two facts."), (2, "Third fact here.")])  # each once
    assert (third.statement, quoted(third)) == ("Third, and more", [(1, "One fact."), (2, "Third fact here.")])
    assert (fourth.statement, quoted(fourth)) == ("Fourth", [(1, "Two facts."), (2, "Third fact here.")])
    assert seen[0][1] < text.index("Gen.")  # the first was ready before the second was written
    assert seen[1][1] < text.index("Third")  # and the second before the third began
    assert seen[2][1] < text.index("Fourth")
    assert seen[3][1] < text.index("Uncited")
    declined = CitedProseParser(numbered)
    assert declined.feed(NOT_FOUND_REPLY) == [] and declined.finish() == [] and declined.declined


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
    assert [m.id for m in client.models.list()] == ["rag-news"]

    fake_llm.script(cite(SURRENDER_QUOTE, "430 Ukrainian soldiers surrendered."))
    completion = client.chat.completions.create(
        model="rag-news", messages=[{"role": "user", "content": "How many Ukrainian soldiers surrendered?"}],
        temperature=0.2, max_tokens=200,
    )
    assert completion.choices[0].message.content == "430 Ukrainian soldiers surrendered [1]."
    assert completion.model_extra["citations"][0]["document_id"] == DOC_A
    assert fake_llm.requests[-1]["temperature"] == 0.2 and fake_llm.requests[-1]["max_tokens"] == 200

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
