"""Whether the model's answer holds: a pure accept or reject, with the evidence it rests on.

An answer holds when
- it cites sentences it was shown;
- every word and figure it adds to the question is in those sentences (content words compared
  by stem, figures as written): the answer is taken from the evidence, not merely near it;
- it adds something: an answer to one part of a two-part question that only repeats words of
  the other part adds nothing;
- the cited sentences that carry the answer (its evidence), with their articles' titles, hold
  at least ``min_sentence_share`` of the question's content words: a figure lifted from a
  sentence about something else (a score for an attendance, a loss for a debt) is not given;
- and it bears on the question: the cited articles' retrieved text and titles hold at least
  ``min_question_share`` of the question's content words, so an answer lifted from an article
  about something else is not given, and (``question_figures``) every figure of the question;
- (``type_check``) it holds a figure when its part asks for one ("how many", "how tall"), a figure
  or a word of time when asked "when", more than a time when asked "where";
- (``restated_words``) the words it repeats from the question are in its cited sentences too, or
  in its evidence's titles: an answer that puts the question's subject on another subject's
  fact ("X was founded in 1984" from "Y was founded in 1984") does not hold.
Nothing here rewrites the answer; repairs (rag.answer.repairs) are separate, named steps."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rag.answer.parse import ModelReply
from rag.answer.prompt import NumberedSentences, ShownSentence
from rag.models import Passage
from rag.config import AnswerSettings
from rag.questions import PartPlan
from rag.text import COUNT_WORDS, TIME_WORDS, content_terms, is_number


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str
    evidence: tuple[ShownSentence, ...] = ()  # the cited sentences that carry the answer
    unsupported: tuple[str, ...] = ()  # stems and figures of the answer no cited sentence holds
    question_share: float = 0.0  # of the question's content words in the cited articles' text
    sentence_share: float = 0.0  # ... in the evidence sentences and their articles' titles
    adds_nothing: bool = False  # the answer only repeats words of the question


def _rejected(reason: str, **found) -> Verdict:
    return Verdict(False, reason, **found)


def _terms_of(passages: list[Passage], documents: set[str]) -> set[str]:
    present: set[str] = set()
    for passage in passages:
        if passage.document_id in documents:
            present |= content_terms(passage.text) | content_terms(passage.title or "")
    return present


def _title_terms(sentences: Iterable[ShownSentence], passages: list[Passage]) -> set[str]:
    """The content words of the titles of these sentences' articles."""
    return set().union(*(content_terms(passages[s.passage].title or "") for s in sentences))


def sentence_share(question: str, cited: list[ShownSentence], passages: list[Passage]) -> float:
    """The share of the question's content words that these sentences and their articles'
    titles hold (1.0 for a question with none)."""
    asked = content_terms(question)
    if not asked:
        return 1.0
    held = set().union(*(content_terms(s.text_in(passages)) for s in cited)) | _title_terms(cited, passages)
    return len(asked & held) / len(asked)


def question_share(question: str, passages: list[Passage], documents: set[str]) -> float:
    """The share of the question's content words that the retrieved passages and titles of
    ``documents`` hold (1.0 for a question with none)."""
    asked = content_terms(question)
    return len(asked & _terms_of(passages, documents)) / len(asked) if asked else 1.0


def figures_missing(question: str, passages: list[Passage], documents: set[str]) -> list[str]:
    """The question's figures (a year, a sequel's number, an amount) that the retrieved passages
    and titles of ``documents`` never give: a question about 2006 is not answered by an article
    on 2004."""
    present = _terms_of(passages, documents)
    return sorted(t for t in content_terms(question) if is_number(t) and t not in present)


def expected_type_missing(kind: str | None, answer: str) -> str | None:
    """What the answer lacks that its part asks for (rag.questions.asked_kind): a figure or a
    count word for a figure, a figure or a word of time for a time, something besides a time for
    a place (None when it has it, or the part asks none of these)."""
    has_figure = any(ch.isdigit() for ch in answer)
    if kind == "place" and not content_terms(re.sub(r"\d", " ", TIME_WORDS.sub(" ", answer))):
        return "a place"
    if kind == "figure" and not (has_figure or COUNT_WORDS.search(answer)):
        return "a figure"
    if kind == "time" and not (has_figure or TIME_WORDS.search(answer)):
        return "a time"
    return None


def _as_written(answer: str, terms: set[str]) -> list[str]:
    """The answer's words and figures that give these terms, as the answer writes them."""
    pieces = dict.fromkeys(p for p in answer.replace("\u201c", " ").replace("\u201d", " ").split())
    written = [p.strip(".,;:!?\"'()") for p in pieces if content_terms(p) & terms]
    return written or sorted(terms)


def verify(
    reply: ModelReply, numbered: NumberedSentences, passages: list[Passage], part: PartPlan,
    whole_question: str, settings: AnswerSettings,
) -> Verdict:
    """Whether ``reply`` answers ``part`` of ``whole_question`` from the sentences it cites."""
    question = part.checked
    cited = [numbered.shown[n] for n in reply.sentences if n in numbered.shown]
    if not cited:
        return _rejected("the answer cites no sentence the model was shown")
    added = content_terms(reply.answer) - content_terms(question) - content_terms(whole_question)
    if not added:
        return _rejected("the answer adds nothing to the question", adds_nothing=True)
    texts = {s.number: s.text_in(passages) for s in cited}
    held = set().union(*(content_terms(t) for t in texts.values()))
    unsupported = tuple(sorted(added - held))
    if unsupported:
        return _rejected(
            "the cited sentences do not hold " + ", ".join(_as_written(reply.answer, set(unsupported))),
            unsupported=unsupported,
        )
    evidence = tuple(s for s in cited if content_terms(texts[s.number]) & added)
    if settings.restated_words:
        if restated := content_terms(reply.answer) - added - held - _title_terms(evidence, passages):
            return _rejected(
                "the cited sentences do not say " + ", ".join(_as_written(reply.answer, restated)),
                unsupported=tuple(sorted(restated)),
            )
    if (on_point := sentence_share(question, list(evidence), passages)) < settings.min_sentence_share:
        return _rejected(
            f"the sentences that give the answer hold {on_point:.0%} of the question's words",
            sentence_share=on_point,
        )
    documents = {passages[s.passage].document_id for s in cited}
    if settings.type_check and (lacking := expected_type_missing(part.kind, reply.answer)):
        return _rejected(f"the question asks for {lacking} and the answer gives none")
    share = question_share(question, passages, documents)
    if settings.question_figures and (missing := figures_missing(question, passages, documents)):
        return _rejected(
            "the cited articles never give the question's " + ", ".join(missing), question_share=share,
        )
    if share < settings.min_question_share:
        return _rejected(
            f"the cited articles hold {share:.0%} of the question's words", question_share=share,
        )
    return Verdict(True, "every word the answer adds is in its cited sentences", evidence, (), share, on_point)
