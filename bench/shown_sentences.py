"""How often the sentences shown to the model hold the gold evidence, by how they are chosen: no
LLM is asked, so a choice of sentences is measured in a minute rather than an eval run.

For each answerable question of the set: retrieve the answer's passages, choose sentences with
the SentenceSelector under each weighting, and count the question as covered when, for every
gold fact, some shown sentence overlaps one of that fact's gold spans.

    python -m bench.shown_sentences [--set eval/bbc_dev.jsonl] [--corpus DIR] [--neighbours 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import REPO
from rag.answer.prompt import SentenceSelector
from rag.config import Settings
from rag.evaluation.dataset import load_questions
from rag.evaluation.gold import DocumentTexts, GoldEvidenceSpans, Span
from rag.evaluation.session import open_store

WEIGHTINGS = {  # (term weight, rank weight, kind weight)
    "closeness only": (0.0, 0.0, 0.0),
    "closeness + question words": (1.0, 0.0, 0.0),
    "closeness + question words + rank": (1.0, 0.2, 0.0),
    "+ the kind asked for": (1.0, 0.2, 0.1),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", type=Path, default=REPO / "eval" / "bbc_dev.jsonl")
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpora" / "bbc")
    parser.add_argument("--passages", type=int, nargs="+", default=[5, 8])
    parser.add_argument("--shown", type=int, nargs="+", default=[6, 8, 10])
    parser.add_argument(
        "--neighbours", type=int, default=0,
        help="also read this many chunks before and after each retrieved passage (RAG_CONTEXT_NEIGHBOURS)",
    )
    args = parser.parse_args()
    questions = [q for q in load_questions(args.set) if q.answerable]
    with tempfile.TemporaryDirectory() as scratch:
        service, _ = open_store(Settings(), args.corpus, Path(scratch), needs_llm=False)
        texts = DocumentTexts(lambda document_id: service.get_document(document_id).text)
        print(f"{len(questions)} answerable questions of {args.set.name}: share whose shown sentences hold every gold fact\n")
        print("| passages | sentences shown | " + " | ".join(WEIGHTINGS) + " |")
        print("|---|---|" + "---|" * len(WEIGHTINGS))
        for k in args.passages:
            retrieved = [
                (q, service.retriever.with_neighbours(service.retrieve(q.question, k), args.neighbours))
                for q in questions
            ]
            for shown in args.shown:
                shares = []
                for term_weight, rank_weight, kind_weight in WEIGHTINGS.values():
                    selector = SentenceSelector(service.embedder, shown, term_weight, rank_weight, kind_weight)
                    covered = sum(_covered(q, passages, selector, texts) for q, passages in retrieved)
                    shares.append(f"{covered / len(questions):.2f}")
                print(f"| {k} | {shown} | " + " | ".join(shares) + " |", flush=True)
        service.close()


def _covered(question, passages, selector: SentenceSelector, texts: DocumentTexts) -> bool:
    gold = GoldEvidenceSpans(question, texts)
    spans = []
    for sentence in selector.select(question.question, passages).shown.values():
        passage = passages[sentence.passage]
        spans.append(Span(passage.document_id, passage.start + sentence.start, passage.start + sentence.end))
    gold_spans = [g for document_id in {s.document_id for s in spans} for g in gold.in_document(document_id)]
    return all(
        any(span.overlaps(g.span) for span in spans for g in gold_spans if g.fact == fact)
        for fact in {e.fact for e in question.evidence}
    )


if __name__ == "__main__":
    main()
