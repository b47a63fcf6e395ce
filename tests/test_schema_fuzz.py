"""A bounded schemathesis run against /openapi.json: requests generated from the schema (valid
ones, and ones that break it on purpose), sent to the real app over a real store, must get no 5xx, only statuses the schema
declares, and bodies that match it. The routes that reach the LLM (/v1/ask, chat) are left out:
their answers are another suite's (tests/test_answering.py, tests/test_chat.py)."""

from __future__ import annotations

import time
from itertools import product

import pytest
import schemathesis
from chromadb.api.client import SharedSystemClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from rag.config import Settings
from rag.models import ArticleInput
from tests.conftest import SEEDS, build_service

EXAMPLES = 15  # per operation and mode: the whole run stays well under a minute on two shared cores
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def app(tmp_path_factory, embedder):
    settings = Settings(data_dir=tmp_path_factory.mktemp("fuzz") / "data", seed_dir=SEEDS, seed_on_empty=False,
                        llm_base_url="http://127.0.0.1:9/v1", max_request_bytes=200_000, max_document_bytes=50_000)
    service = build_service(settings, embedder)
    service.ingest(ArticleInput(text="Floods in Valencia.\n\nThe river Turia rose by four metres.", document_id="a"))
    service.ingest(ArticleInput(text="Wheat prices rose in Chicago on Monday.", document_id="b",
                                metadata={"section": "business", "year": 2024}))
    yield create_app(service)
    service.close()
    SharedSystemClient.clear_system_cache()


def test_generated_requests_get_declared_statuses_and_no_5xx(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [
        result.ok() for result in schema.get_all_operations()
        if not result.ok().path.startswith(("/v1/ask", "/v1/chat"))
    ]
    assert len(operations) >= 8, [op.label for op in operations]
    started = time.monotonic()
    unbreakable: list[str] = []
    for operation, mode in product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate(checks=CHECKS)

        try:
            run()
        except Unsatisfiable:  # an operation without parameters or body has nothing to break
            assert mode is GenerationMode.NEGATIVE
            unbreakable.append(operation.label)
    assert time.monotonic() - started < 60
    assert len(unbreakable) < len(operations) / 2, unbreakable
