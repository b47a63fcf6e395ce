"""The comparison system: LlamaIndex's stock CitationQueryEngine with its stock prompts, over
the same Chroma collection, embedding model and LLM endpoint as the service."""

from __future__ import annotations

import re
import time

from llama_index.core import VectorStoreIndex
from llama_index.core.query_engine import CitationQueryEngine
from llama_index.llms.openai_like import OpenAILike

from rag.models import Answer, Citation, Passage, Timings
from rag.service import RagService

# The stock engine has no abstention field; these are the ways its answers say "not found".
_NOT_FOUND = re.compile(
    r"\b(not (mentioned|provided|specified|stated|available|included|contain\w*|say)|"
    r"no (information|mention|relevant)|none of the sources|cannot (be )?(answer|determine\w*)|"
    r"(do|does)n['’]t (say|mention|provide|know)|unable to)\b",
    re.IGNORECASE,
)
_SOURCE_LABEL = re.compile(r"^Source \d+:\n")


class CitationQEBackend:
    name = "CitationQueryEngine (stock)"

    def __init__(self, service: RagService) -> None:
        self.service = service
        settings = service.settings
        llm = OpenAILike(
            model=service.llm.model,
            api_base=service.llm.base_url(),
            api_key=settings.llm_api_key.get_secret_value() or "not-needed",
            is_chat_model=True,
            temperature=0.0,
            max_tokens=settings.llm_max_tokens,
            timeout=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
        )
        index = VectorStoreIndex.from_vector_store(service.store.vector_store, embed_model=service.embedder)
        self.engine = CitationQueryEngine.from_args(index, llm=llm, similarity_top_k=settings.top_k)

    def ask(self, question: str) -> Answer:
        started = time.perf_counter()
        response = self.engine.query(question)
        total_ms = (time.perf_counter() - started) * 1000
        text = str(response.response or "").strip()
        sources = response.source_nodes
        citations = []
        for ref in sorted({int(n) for n in re.findall(r"\[(\d+)\]", text)}):
            if not 1 <= ref <= len(sources):
                continue  # a marker pointing at no source: it stays uncited
            node = sources[ref - 1].node
            quote = _SOURCE_LABEL.sub("", node.get_content()).strip()
            document_id = node.ref_doc_id or ""
            start = self.document_text(document_id).find(quote) if document_id else -1
            citations.append(Citation(
                ref=ref, document_id=document_id, title=str(node.metadata.get("title", "")),
                chunk_id=node.node_id, quote=quote, start=max(start, 0),
                end=max(start, 0) + len(quote) if start >= 0 else 0,
            ))
        passages = [
            Passage(document_id=s.node.ref_doc_id or "", title=str(s.node.metadata.get("title", "")),
                    chunk_id=s.node.node_id, text=_SOURCE_LABEL.sub("", s.node.get_content()),
                    start=int(s.node.metadata.get("start", 0)), end=int(s.node.metadata.get("end", 0)),
                    score=float(s.score or 0.0))
            for s in sources
        ]
        abstained = not text or text == "Empty Response" or bool(_NOT_FOUND.search(text))
        return Answer(
            answer=text, abstained=abstained, citations=citations, passages=passages,
            model=self.service.llm.model,
            timings=Timings(retrieve_ms=0.0, generate_ms=round(total_ms, 1), total_ms=round(total_ms, 1)),
        )

    def retrieve(self, question: str, top_k: int) -> list[Passage]:
        retriever = self.engine.retriever
        return [
            Passage(document_id=n.node.ref_doc_id or "", title="", chunk_id=n.node.node_id,
                    text=n.node.get_content(), start=int(n.node.metadata["start"]),
                    end=int(n.node.metadata["end"]), score=float(n.score or 0.0))
            for n in retriever.retrieve(question)[:top_k]
        ]

    def document_text(self, document_id: str) -> str:
        return self.service.get_document(document_id).text
