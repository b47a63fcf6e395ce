"""How far the judge can be trusted where gold cannot decide: its verdicts on a sample of the
citations gold did decide, in the same run, compared with gold's.

The sample is fixed by the citations themselves (a hash of question, statement and quote), so
two runs over the same answers ask about the same citations. Citations gold rejected for reasons
a reader of the quote cannot see (an unanswerable question, a quote missing from its document)
are left out: they say nothing about reading a quote."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

from rag.evaluation.grading import CitationVerdict
from rag.evaluation.judge import SupportJudge


class Disagreement(BaseModel):
    question_id: str
    statement: str
    quote: str
    gold: bool
    judge: bool


class JudgeAgreement(BaseModel):
    sampled: int
    agreement: float | None  # None: nothing to compare
    gold_held: int
    judge_accepted_held: int  # of the citations gold held, those the judge accepted
    gold_rejected: int
    judge_accepted_rejected: int  # of those gold rejected, those the judge accepted
    disagreements: list[Disagreement]

    def describe(self) -> str:
        if self.agreement is None:
            return "judge agreement with gold: no gold-decided citations to compare"
        return (f"judge agreement with gold: {self.agreement:.2f} on {self.sampled} citations "
                f"(accepted {self.judge_accepted_held}/{self.gold_held} gold held, "
                f"{self.judge_accepted_rejected}/{self.gold_rejected} gold rejected)")


def _order(verdict: CitationVerdict) -> str:
    key = "\x1f".join((verdict.question_id, verdict.statement, verdict.document_id, verdict.quote))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def comparable(verdicts: list[CitationVerdict]) -> list[CitationVerdict]:
    """Gold-decided verdicts a judge reading the question, the quote and the statement could reach."""
    return [v for v in verdicts if v.decided_by == "gold" and v.basis in ("gold-span", "fact-missing")]


def judge_agreement(judge: SupportJudge, verdicts: list[CitationVerdict], sample: int) -> JudgeAgreement:
    """The judge's verdicts on up to ``sample`` gold-decided citations, against gold's."""
    unique = {(v.statement, v.quote): v for v in comparable(verdicts)}
    chosen = sorted(unique.values(), key=_order)[:sample]
    pairs = [(bool(v.held), judge.supports(v.quote, v.statement, v.question), v) for v in chosen]
    held = [accepted for gold, accepted, _ in pairs if gold]
    rejected = [accepted for gold, accepted, _ in pairs if not gold]
    return JudgeAgreement(
        sampled=len(pairs),
        agreement=round(sum(gold == accepted for gold, accepted, _ in pairs) / len(pairs), 4) if pairs else None,
        gold_held=len(held), judge_accepted_held=sum(held),
        gold_rejected=len(rejected), judge_accepted_rejected=sum(rejected),
        disagreements=[
            Disagreement(question_id=v.question_id, statement=v.statement, quote=v.quote, gold=gold, judge=accepted)
            for gold, accepted, v in pairs if gold != accepted
        ],
    )
