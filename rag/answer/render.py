"""Claims rendered once, at the end of the pipeline: each part's statement with [n] markers that
number its evidence, the citations those markers name, and each part's status. A part the
articles do not answer is said so in the answer text itself, so a half answer never reads as a
whole one."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rag.answer.prompt import ShownSentence
from rag.models import Answer, Citation, PartAnswer, Passage, Timings, TraceStep
from rag.questions import QuestionPlan

NOT_FOUND = "The articles do not contain the answer to this question."


def missing_part(asked: str) -> str:
    """The statement for a part of a two-part question that the articles do not answer."""
    return f"The articles do not answer this part: “{' '.join(asked.split()).rstrip(' ?')}?”"


@dataclass(frozen=True)
class Claim:
    """An accepted answer to one part: its words and the shown sentences that carry them."""

    answer: str
    evidence: tuple[ShownSentence, ...]
    steps: tuple[str, ...] = ()  # the named steps whose output it is

    def with_step(self, step: str) -> Claim:
        return replace(self, steps=(step, *self.steps))


class Rendering:
    """The answer as its parts are decided: ``add`` returns the text to show now."""

    def __init__(self, plan: QuestionPlan) -> None:
        self._plan = plan
        self._parts: list[PartAnswer | None] = [None] * len(plan.parts)
        self._citations: list[Citation] = []
        self._shown: list[str] = []
        self._pending: list[str] = []  # missing parts shown once a later part is answered
        self._steps: list[str] = []

    def add(self, index: int, outcome: Claim | str, passages: list[Passage]) -> str:
        asked = self._plan.parts[index].asked
        if isinstance(outcome, Claim):
            text, refs = self._statement(outcome, passages)
            self._parts[index] = PartAnswer(question=asked, answered=True, text=text, refs=refs)
            self._steps += [s for s in outcome.steps if s not in self._steps]
            pieces, self._pending = [*self._pending, text], []
        else:
            text = missing_part(asked) if self._plan.two_part else NOT_FOUND
            self._parts[index] = PartAnswer(question=asked, answered=False, text=text, reason=outcome)
            if not self._shown:  # nothing answered yet: it may be that nothing will be
                self._pending.append(text)
                return ""
            pieces = [text]
        piece = " ".join(pieces)
        piece = f" {piece}" if self._shown else piece
        self._shown.append(piece)
        return piece

    def answer(self, passages: list[Passage], model: str, timings: Timings, trace: list[TraceStep] | None) -> Answer:
        parts = [p for p in self._parts if p is not None]
        if not any(p.answered for p in parts):
            return Answer(
                answer=NOT_FOUND, abstained=True, abstain_reason=parts[0].reason if parts else None,
                parts=parts, citations=[], passages=passages, model=model, timings=timings, trace=trace,
            )
        return Answer(
            answer="".join(self._shown), abstained=False, parts=parts, steps=self._steps,
            citations=self._citations, passages=passages, model=model, timings=timings, trace=trace,
        )

    def _statement(self, claim: Claim, passages: list[Passage]) -> tuple[str, list[int]]:
        """The claim as text with [n] markers, numbering its sentences after the citations so far
        (a sentence already cited keeps its number)."""
        refs = list(dict.fromkeys(self._ref(sentence, passages) for sentence in claim.evidence))
        markers = "".join(f"[{n}]" for n in refs)
        return f"{claim.answer.rstrip(' .')} {markers}.", refs

    def _ref(self, sentence: ShownSentence, passages: list[Passage]) -> int:
        passage = passages[sentence.passage]
        start, end = passage.start + sentence.start, passage.start + sentence.end
        for citation in self._citations:
            if (citation.document_id, citation.start, citation.end) == (passage.document_id, start, end):
                return citation.ref
        self._citations.append(Citation(
            ref=len(self._citations) + 1, document_id=passage.document_id, title=passage.title,
            chunk_id=passage.chunk_id, quote=sentence.text_in(passages), start=start, end=end,
            metadata=passage.metadata,
        ))
        return self._citations[-1].ref
