"""The answer path's switchable steps, and the search filters as the answer endpoints take them,
with the LLM faked at its HTTP edge."""

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import DOC_A, DOC_B
from tests.fake_llm import NOT_FOUND_REPLY, cite, reply, sentences_in
from tests.test_answering import SUDZHA_Q, SUDZHA_QUOTE, SURRENDER_Q, SURRENDER_QUOTE, assert_citations_hold


@pytest.fixture
def api(answering):
    with TestClient(create_app(answering)) as client:
        yield client


def test_unknown_answer_steps_are_refused():
    from pydantic import ValidationError

    from rag.config import Settings

    with pytest.raises(ValidationError, match="unknown answer step 'rerank'"):
        Settings(answer_steps="reanchor,rerank")
    assert Settings(answer_steps="").answer_step_set == frozenset()
    assert Settings().answer_step_set == {"reanchor", "answer_parts"}


def test_filters_reach_ask_and_chat_over_http(api, fake_llm):
    # The seeds carry no section: a filter on one leaves nothing, and the model is never asked.
    body = api.post("/v1/ask", json={"question": SUDZHA_Q, "where": {"section": "sport"}}).json()
    assert body["abstained"] and body["passages"] == [] and fake_llm.requests == []
    fake_llm.script(cite(SUDZHA_QUOTE, "Sudzha"))
    body = api.post("/v1/ask", json={"question": SUDZHA_Q, "document_ids": [DOC_B]}).json()
    assert {p["document_id"] for p in body["passages"]} == {DOC_B}
    fake_llm.script("Which town did the Russian Defense Ministry say it retook?", NOT_FOUND_REPLY)
    reply = api.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": SUDZHA_Q}], "document_ids": [DOC_A],
    }).json()
    assert reply["passages"] and {p["document_id"] for p in reply["passages"]} == {DOC_A}
    bad = api.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}],
                                                 "date_from": "2005-02-01", "date_to": "2005-01-01"})
    assert bad.status_code == 422 and "date_from is after date_to" in bad.json()["detail"]


def test_ask_again_asks_without_the_sentences_whose_answer_did_not_hold(answering, fake_llm):
    wrong = "Ukrainian soldiers surrendered"  # only repeats the question: rejected
    answering.answerer._steps = frozenset({"ask_again"})
    fake_llm.script(cite(SURRENDER_QUOTE, wrong, shift=1), cite(SURRENDER_QUOTE, "430"))
    answer = answering.ask(SURRENDER_Q)
    assert not answer.abstained and answer.steps == ["ask_again"] and answer.answer == "430 [1]."
    assert_citations_hold(answering, answer)
    first, second = (sentences_in(r) for r in fake_llm.requests[-2:])
    # The second prompt shows every sentence of the first but the one the rejected reply cited,
    # numbered afresh from 1.
    assert len(second) == len(first) - 1 and list(second) == [str(n) for n in range(1, len(first))]
    quoted = next(number for number, text in first.items() if SURRENDER_QUOTE in text)
    rejected = first[str(int(quoted) + 1)]
    assert rejected not in second.values() and set(second.values()) < set(first.values())


def test_ask_again_is_not_asked_when_the_model_declines_or_the_step_is_off(answering, fake_llm):
    answering.answerer._steps = frozenset({"ask_again"})
    fake_llm.script(NOT_FOUND_REPLY)
    assert answering.ask(SURRENDER_Q).abstained and len(fake_llm.requests) == 1
    answering.answerer._steps = frozenset()
    fake_llm.script(cite(SURRENDER_QUOTE, "500"))
    answer = answering.ask(SURRENDER_Q)
    assert answer.abstained and len(fake_llm.requests) == 2  # one question, one request
    answering.answerer._steps = frozenset({"ask_again"})
    fake_llm.script(cite(SURRENDER_QUOTE, "500"), reply([1], "501"))
    answer = answering.ask(SURRENDER_Q)  # a second reply that does not hold either
    assert answer.abstained and "500" in answer.abstain_reason and len(fake_llm.requests) == 4
