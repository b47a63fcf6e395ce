"""How often the answer path is right when the sentences that answer are among those it shows:
`rag eval`, with the model shown, for each question and each part of a two-part question, the
gold evidence sentences its retrieved passages hold, the other places filled as the selector
ranks them (the same number of sentences as always). The gap to a plain `rag eval` run is what
choosing the sentences costs; what is still wrong is the model's reading and the verification.

    python -m bench.gold_shown --set eval/bbc_dev2.jsonl --corpus ../shared/corpora/bbc --out eval/results/dev2-gold-shown
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import REPO
from rag.answer.prompt import NumberedSentences, SentenceSelector, number_sentences
from rag.config import Settings
from rag.evaluation.dataset import EvalQuestion, load_questions
from rag.evaluation.gold import DocumentTexts, GoldEvidenceSpans
from rag.evaluation.session import run_eval
from rag.models import Passage
from rag.questions import plan_question
from rag.service import RagService


class GoldShownSelector:
    """The selector's choice, with the question's gold sentences moved to the front of it."""

    def __init__(self, ranked_by: SentenceSelector, limit: int, questions: list[EvalQuestion], texts: DocumentTexts) -> None:
        self._ranked_by = ranked_by
        self._limit = limit
        self._gold: dict[str, GoldEvidenceSpans] = {}
        for question in questions:
            for asked in {question.question, *(p.standing for p in plan_question(question.question).parts)}:
                self._gold[" ".join(asked.split())] = GoldEvidenceSpans(question, texts)
        self.forced = 0  # asks whose gold sentence the selector alone would not have shown

    def select(self, question: str, passages: list[Passage]) -> NumberedSentences:
        ranked = self._ranked_by.ranked(question, passages)
        gold = self._gold.get(" ".join(question.split()))

        def is_gold(candidate) -> bool:
            passage = passages[candidate.passage]
            start, end = passage.start + candidate.start, passage.start + candidate.end
            return bool(gold) and any(
                g.span.start < end and start < g.span.end for g in gold.in_document(passage.document_id)
            )

        first = [r for r in ranked if is_gold(r[0])][: self._limit]
        chosen = (first + [r for r in ranked if r not in first])[: self._limit]
        self.forced += any(r not in ranked[: self._limit] for r in first)
        return number_sentences(passages, [c for c, _ in chosen], [v for _, v in chosen])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", type=Path, default=REPO / "eval" / "bbc_dev2.jsonl")
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpora" / "bbc")
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "results" / "gold-shown")
    args = parser.parse_args()
    settings = Settings()
    questions = load_questions(args.set)
    selectors: list[GoldShownSelector] = []

    def build(built_settings: Settings) -> RagService:
        service = RagService.from_settings(built_settings)
        texts = DocumentTexts(lambda document_id: service.get_document(document_id).text)
        selector = GoldShownSelector(service.pipeline.selector, settings.answer.context_sentences, questions, texts)
        service.pipeline = service.answer_pipeline(settings.answer, selector)
        selectors.append(selector)
        return service

    report, _ = run_eval(
        settings, args.set, REPO / "eval" / "config.toml", args.out, url=None, baseline=None,
        retrieval_only=False, limit=None, progress=print, corpus=args.corpus, build=build,
    )
    print(report)
    print(f"asks whose gold sentence was moved into view: {sum(s.forced for s in selectors)}")


if __name__ == "__main__":
    main()
