"""Retrieval quality alone: hit@5 (a top-5 passage overlaps a gold span) and recall@10 (the share
of a question's gold facts that some top-10 passage overlaps), over answerable questions, on the
eval's own store (the seeds in a fresh store, or a corpus ingested once and reused, as
`rag eval --corpus` keeps it).

    python -m bench.retrieval_quality [--set eval/questions.jsonl] [--corpus ../shared/corpora/bbc]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from rag.config import Settings
from rag.errors import NotFoundError
from rag.evaluation.dataset import load_questions
from rag.evaluation.gold import DocumentTexts, GoldEvidenceSpans, Span
from rag.evaluation.session import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=Path("eval/questions.jsonl"))
    parser.add_argument("--corpus", type=Path, default=None)
    args = parser.parse_args()
    questions = [q for q in load_questions(args.set) if q.answerable]
    with tempfile.TemporaryDirectory() as scratch:
        service, _ = open_store(Settings(), args.corpus, Path(scratch), needs_llm=False)

        def read(document_id: str) -> str:
            try:
                return service.get_document(document_id).text
            except NotFoundError:
                return ""

        texts = DocumentTexts(read)
        hits, recalls = [], []
        for question in questions:
            gold = GoldEvidenceSpans(question, texts)
            passages = service.retrieve(question.question, 10)
            overlapping = [
                {g.fact for g in gold.in_document(p.document_id) if Span(p.document_id, p.start, p.end).overlaps(g.span)}
                for p in passages
            ]
            hits.append(any(overlapping[:5]))
            facts = {e.fact for e in question.evidence}
            recalls.append(len(set().union(*overlapping) & facts) / len(facts) if facts else 1.0)
        service.close()
    print(json.dumps({"set": str(args.set), "corpus": str(args.corpus), "questions": len(questions),
                      "hit_at_5": round(statistics.fmean(hits), 4), "recall_at_10": round(statistics.fmean(recalls), 4)}))


if __name__ == "__main__":
    main()
