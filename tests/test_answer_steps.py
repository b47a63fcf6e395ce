"""The answer path's switchable steps, and the search filters as the answer endpoints take them,
with the LLM faked at its HTTP edge."""

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import DOC_A, DOC_B
from tests.fake_llm import NOT_FOUND_REPLY, cite
from tests.test_answering import SUDZHA_Q, SUDZHA_QUOTE


@pytest.fixture
def api(answering):
    with TestClient(create_app(answering)) as client:
        yield client


def test_unknown_answer_steps_are_refused():
    from pydantic import ValidationError

    from rag.config import Settings

    with pytest.raises(ValidationError, match="unknown answer step 'rerank'"):
        Settings(answer={"steps": "reanchor,rerank"})
    assert Settings(answer={"steps": ""}).answer.steps == frozenset()
    assert Settings().answer.steps == {"reanchor", "read_on", "confirm"}


def test_answer_settings_come_from_nested_environment_variables(monkeypatch):
    from rag.config import AnswerStep, Settings

    monkeypatch.setenv("RAG_ANSWER__STEPS", "confirm,reanchor")
    monkeypatch.setenv("RAG_ANSWER__CONTEXT_SENTENCES", "12")
    settings = Settings()
    assert settings.answer.steps == {AnswerStep.CONFIRM, AnswerStep.REANCHOR}
    assert settings.answer.context_sentences == 12


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
