"""How far the support judge behind citation precision and recall can be trusted: its verdicts
on statements labelled by hand (``eval/judge_pairs.jsonl``), true and false, against sentences
of the seed articles."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from rag.evaluation.dataset import load_jsonl
from rag.evaluation.judge import SupportJudge


class JudgePair(BaseModel):
    evidence: list[str] = Field(min_length=1, description="Cited sentences, verbatim from a seed article.")
    statement: str = Field(min_length=1, description="What an answer might say, citing them.")
    supported: bool = Field(description="Whether the evidence states everything the statement says.")
    kind: str = Field(description='What the pair tests: "paraphrase", "wrong speaker", …')


class JudgeAgreement(BaseModel):
    pairs: int
    agreement: float
    supported_pairs: int
    supported_accepted: int  # true statements the judge accepted
    unsupported_pairs: int
    unsupported_accepted: int  # false statements the judge accepted
    disagreements: list[JudgePair]

    def describe(self) -> str:
        lines = [
            f"judge agreement with the labelled pairs: {self.agreement:.2f} ({self.pairs} pairs)",
            f"  supported statements accepted:   {self.supported_accepted}/{self.supported_pairs}",
            f"  unsupported statements accepted: {self.unsupported_accepted}/{self.unsupported_pairs}",
        ]
        lines += [
            f"  {'accepted' if not pair.supported else 'rejected'} ({pair.kind}): {pair.statement}"
            for pair in self.disagreements
        ]
        return "\n".join(lines)


def load_pairs(path: Path) -> list[JudgePair]:
    return load_jsonl(path, JudgePair, "judge pair")


def check_judge(judge: SupportJudge, pairs: list[JudgePair]) -> JudgeAgreement:
    verdicts = [(judge.supports(pair.evidence, pair.statement), pair) for pair in pairs]
    on_true = [accepted for accepted, pair in verdicts if pair.supported]
    on_false = [accepted for accepted, pair in verdicts if not pair.supported]
    disagreements = [pair for accepted, pair in verdicts if accepted != pair.supported]
    return JudgeAgreement(
        pairs=len(pairs), agreement=round(1 - len(disagreements) / len(pairs), 4),
        supported_pairs=len(on_true), supported_accepted=sum(on_true),
        unsupported_pairs=len(on_false), unsupported_accepted=sum(on_false),
        disagreements=disagreements,
    )
