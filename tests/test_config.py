from pathlib import Path

import pytest
from pydantic import ValidationError

from rag.config import Settings, settings_table


def test_defaults_are_offline_and_embedded():
    settings = Settings()
    assert settings.llm_base_url == "" and settings.chroma_url == ""
    assert settings.chroma_path == Path("data") / "chroma"
    assert all(field.description for field in Settings.model_fields.values())


def test_environment_with_prefix(monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "7")
    monkeypatch.setenv("RAG_DATA_DIR", "/srv/news")
    settings = Settings()
    assert settings.top_k == 7 and settings.data_dir == Path("/srv/news")


def test_openai_api_key_is_honoured_and_rag_key_wins(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    assert Settings().llm_api_key.get_secret_value() == "sk-openai"
    monkeypatch.setenv("RAG_LLM_API_KEY", "sk-rag")
    assert Settings().llm_api_key.get_secret_value() == "sk-rag"
    assert "sk-rag" not in repr(Settings())


def test_invalid_values_are_refused(monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "0")
    with pytest.raises(ValidationError):
        Settings()


def test_the_configuration_doc_lists_every_setting_as_settings_describes_it():
    doc = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert settings_table() in doc, "docs/configuration.md is stale: paste `python -m rag.config` into it"
