"""Citation checking: the code, not the model, decides whether a citation holds.

The model cites sentences of the retrieved passages by number, so every quote is a whole
sentence, verbatim, with its document offsets. A claim stands only if its cited sentences
together carry its key content (every number and name, half its content words, something of
what it adds to the question) and touch the question.

Small models often state a fact right but cite the wrong sentence. The citation is then
treated as a pointer that missed: the claim is re-anchored on the retrieved sentence that
carries most of its content, if one passes the same support test (with a higher bar for
sentences the model was neither pointed at nor shown). A claim with neither is dropped.

Where the check cannot vouch for the model's words but their evidence stands (words that only
repeat the question, a misquoted quotation, true words copied from the wrong sentence while the
cited one holds the question), the evidence is quoted in their place."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.models import Citation, Passage
from rag.answer.support import (
    SUPPORT_RATIO, all_names, content_words, echoes_question, misquotes, numbers, supports,
)

_SENTENCE_END = re.compile(r"[.!?][\"'”’)]*(?=\s)|\n\n")
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|without|denied|refused|rejected)\b|n['’]t\b", re.IGNORECASE)
_TITLES = frozenset("Gen Lt Col Maj Capt Sgt Adm Cmdr Gov Sen Rep Pres Mr Mrs Ms Dr Prof St Jr Sr No vs".split())
_INITIALISM = re.compile(r"(?:[A-Z]\.)*[A-Z]")  # "U.S", "J": the word before the stop
_CLAIM_ENDING = re.compile(r"([.!?]?)([\"'”’)]*)$")  # a statement's stop, then any closing quotes
REANCHOR_RATIO = 0.7  # SUPPORT_RATIO, for a sentence found by the code rather than cited
REANCHOR_MIN_WORDS = 3  # "The war is over" says too little to be matched to a sentence


@dataclass(frozen=True)
class CitedSentence:
    passage: int  # 1-based, as numbered in the prompt
    start: int  # offsets into the passage text
    end: int

    def text_in(self, passages: list[Passage]) -> str:
        return passages[self.passage - 1].text[self.start : self.end]


@dataclass(frozen=True)
class DraftClaim:
    """A claim as the model wrote it, with the sentences it cited: unchecked."""

    statement: str
    cited: tuple[CitedSentence, ...]


@dataclass(frozen=True)
class VerifiedClaim:
    statement: str
    citations: list[Citation]


@dataclass(frozen=True)
class _Span:
    passage: Passage
    start: int  # offsets into the passage text
    end: int


def _text(span: _Span) -> str:
    return span.passage.text[span.start : span.end]


def closes_abbreviation(word: str) -> bool:
    """Whether a stop right after ``word`` closes a title or an initialism ("Gen", "U.S")
    rather than a sentence."""
    word = word.lstrip("(\"'“‘")
    return word in _TITLES or bool(_INITIALISM.fullmatch(word))


def _is_sentence_end(text: str, stop: re.Match) -> bool:
    """Whether a stop ends its sentence: not before a lower-case word ("a halt to U.S. military
    aid"), nor after a title or an initialism before a name ("Gen. Colin Powell")."""
    if stop.group()[0] != ".":  # "!", "?" or a blank line
        return True
    if text[stop.end() :].lstrip()[:1].islower():
        return False
    return not closes_abbreviation((text[: stop.start()].rsplit(None, 1)[-1:] or [""])[0])


def inside_quotation(text: str, start: int, stop: re.Match) -> bool:
    """Whether a stop falls inside a quotation that closes later in its paragraph: quoted
    speech of several sentences ("“We’ll have to wait and see. It’s up to them now,” the
    minister said") is one statement with its speaker, and a piece of it names no one. A quotation left
    open to the end of its paragraph (cut by a chunk boundary, or a typo) is not waited for."""
    if stop.group() == "\n\n":
        return False
    so_far = text[start : stop.end()]
    paragraph_end = text.find("\n\n", stop.end())
    rest = text[stop.end() : paragraph_end if paragraph_end >= 0 else len(text)]
    curly_open = so_far.count("“") > so_far.count("”") and "”" in rest
    straight_open = so_far.count('"') % 2 == 1 and '"' in rest
    return curly_open or straight_open


def sentences(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of the text's sentences."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if not _is_sentence_end(text, match) or inside_quotation(text, start, match):
            continue
        spans.append((start, match.end() if match.group() != "\n\n" else match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(a + len(text[a:b]) - len(text[a:b].lstrip()), b) for a, b in spans if text[a:b].strip()]


def _all_sentences(passages: list[Passage]) -> list[_Span]:
    return [_Span(passage, start, end) for passage in passages for start, end in sentences(passage.text)]


def _reanchor(statement: str, question: str, candidates: list[_Span], ratio: float, min_words: int) -> _Span | None:
    claimed = content_words(statement)
    if len(claimed) < min_words:
        return None
    best: tuple[float, _Span] | None = None
    for span in candidates:
        sentence = _text(span)
        if not supports(statement, sentence, question, ratio):
            continue
        overlap = len(claimed & content_words(sentence)) / len(claimed)
        if best is None or overlap > best[0]:
            best = (overlap, span)
    return best[1] if best else None


def _joined(spans: list[_Span]) -> str:
    return " ".join(_text(span) for span in spans)


def _with_names_before(spans: list[_Span], statement: str) -> list[_Span]:
    """Cited sentences that leave a name of the statement to the sentence before them, quoted
    from that sentence on: "The talks would resume in March, he added"
    shows a reader who said it only after "“We are not giving up,” the minister said."."""
    missing = all_names(statement) - content_words(_joined(spans))
    widened = []
    for span in spans:
        starts = [start for start, end in sentences(span.passage.text) if end <= span.start]
        named_before = content_words(span.passage.text[starts[-1] : span.start]) if starts else set()
        if missing & named_before:
            missing -= named_before
            span = _Span(span.passage, starts[-1], span.end)
        widened.append(span)
    return widened


class ClaimVerifier:
    """Checks claims one at a time (as they stream in), numbering citations 1, 2, … in order
    of first use, one number per distinct span."""

    def __init__(self, passages: list[Passage], question: str, shown: list[CitedSentence] | None = None) -> None:
        self.passages = passages
        self.question = question
        self._shown = [_Span(passages[s.passage - 1], s.start, s.end) for s in shown or [] if 1 <= s.passage <= len(passages)]
        self._refs: dict[tuple[str, int, int], int] = {}
        self._statements: set[str] = set()
        self.claims: list[VerifiedClaim] = []

    def add(self, draft: DraftClaim) -> VerifiedClaim | None:
        statement = re.sub(r"\s*\[\d+\]", "", " ".join(draft.statement.split())).strip()
        if not statement or statement in self._statements:
            return None
        if statement.lower().rstrip(".!") == "yes":
            # A bare "Yes" says what the question asks: its evidence must carry all of the
            # question, and not deny it (a lexical check cannot read "has not agreed").
            spans = self._evidence(self.question, draft, ratio=1.0)
            if any(_NEGATION.search(_text(span)) for span in spans):
                spans = []
            # Alone, "Yes" can be checked by no reader: it comes with the sentence it stands on.
            statement = "Yes, " + quoted(_joined(spans), "one article reports")
        else:
            spans = self._evidence(statement, draft)
            pointed = [] if spans else self._pointed_at_answer(draft)
            spans = spans or self._reanchored(statement, draft)
            if spans and pointed:
                # True words copied from the wrong sentence, while the sentence the model
                # pointed at holds the question: that sentence is the answer, quoted.
                spans, statement = pointed, quoted(_joined(pointed), "One article reports")
            elif spans and (echoes_question(statement, self.question) or misquotes(statement, _joined(spans))):
                # The check cannot vouch for these words, but the evidence stands: quote it.
                statement = quoted(_joined(spans), "One article reports")
        if not spans or statement in self._statements:
            return None
        spans = _with_names_before(spans, statement)
        claim = VerifiedClaim(statement, [self._citation(span) for span in spans])
        self._statements.add(statement)
        self.claims.append(claim)
        return claim

    @property
    def citations(self) -> list[Citation]:
        """Every citation of the claims so far, in order."""
        return [c for claim in self.claims for c in claim.citations]

    def _pointed_at_answer(self, draft: DraftClaim) -> list[_Span]:
        """The one sentence the claim cites, if it holds two thirds of the question's content
        words (at least two) and the answer does not cite it yet: "What did Trump say to
        reporters in the Oval Office?" cited to “…,” Trump stated to reporters in the Oval Office."""
        asked = content_words(self.question)
        if len(draft.cited) != 1 or len(asked) < 2 or not 1 <= draft.cited[0].passage <= len(self.passages):
            return []
        cited = draft.cited[0]
        span = _Span(self.passages[cited.passage - 1], cited.start, cited.end)
        if self._key(span) in self._refs:
            return []
        return [span] if 3 * len(asked & content_words(_text(span))) >= 2 * len(asked) else []

    def _reanchored(self, statement: str, draft: DraftClaim) -> list[_Span]:
        """Small models often name the right passage but the wrong sentence of it, or a
        sentence they were shown under the wrong number: the cited passages' other sentences
        are tried at the usual bar, then the shown sentences (with enough content to match),
        then every retrieved sentence at a higher bar."""
        cited = [self.passages[n - 1] for n in dict.fromkeys(c.passage for c in draft.cited)
                 if 1 <= n <= len(self.passages)]
        reanchored = (
            _reanchor(statement, self.question, _all_sentences(cited), SUPPORT_RATIO, min_words=0)
            or _reanchor(statement, self.question, self._shown, SUPPORT_RATIO, REANCHOR_MIN_WORDS)
            or _reanchor(statement, self.question, _all_sentences(self.passages), REANCHOR_RATIO, REANCHOR_MIN_WORDS)
        )
        return [reanchored] if reanchored else []

    def _evidence(self, statement: str, draft: DraftClaim, ratio: float = SUPPORT_RATIO) -> list[_Span]:
        """The cited spans that together carry the statement, or none. A span that shares
        nothing with the statement is left out: it is not needed for it."""
        spans = list({
            (c.passage, c.start): _Span(self.passages[c.passage - 1], c.start, c.end)
            for c in draft.cited if 1 <= c.passage <= len(self.passages)
        }.values())
        if not spans or not supports(statement, " ".join(_text(s) for s in spans), self.question, ratio):
            return []
        claimed = content_words(statement) | numbers(statement)
        needed = [s for s in spans if claimed & (content_words(_text(s)) | numbers(_text(s)))]
        return needed or spans[:1]

    @staticmethod
    def _key(span: _Span) -> tuple[str, int, int]:
        return span.passage.document_id, span.passage.start + span.start, span.passage.start + span.end

    def _citation(self, span: _Span) -> Citation:
        _, start, end = key = self._key(span)
        ref = self._refs.setdefault(key, len(self._refs) + 1)
        return Citation(
            ref=ref, document_id=span.passage.document_id, title=span.passage.title,
            chunk_id=span.passage.chunk_id, quote=_text(span), start=start, end=end,
            metadata=span.passage.metadata,
        )


def verify(
    drafts: list[DraftClaim], passages: list[Passage], question: str, shown: list[CitedSentence] | None = None,
) -> list[VerifiedClaim]:
    """The claims whose cited sentences (or re-anchored ones) support them."""
    verifier = ClaimVerifier(passages, question, shown)
    for draft in drafts:
        verifier.add(draft)
    return verifier.claims


def quoted(sentence: str, source: str) -> str:
    """A statement that quotes a sentence verbatim (line breaks as spaces), stop left out: it
    goes after the markers."""
    return f"{source}: “{' '.join(sentence.split()).rstrip('.')}”"


def render_claim(claim: VerifiedClaim) -> str:
    """One statement with its [n] markers before the closing stop."""
    markers = "".join(f"[{ref}]" for ref in sorted({c.ref for c in claim.citations}))
    # A stop inside closing quotes moves past the markers: 'had “collapsed” [2].', not '“collapsed.” [2].'
    body = claim.statement.rstrip()
    ending = _CLAIM_ENDING.search(body)
    stop, closing = ending.group(1) or ".", ending.group(2)
    return f"{body[: ending.start()]}{closing} {markers}{stop}"


def render(claims: list[VerifiedClaim]) -> tuple[str, list[Citation]]:
    """Answer text with [n] markers after each statement, and the citations it uses."""
    cited = {c.ref: c for claim in claims for c in claim.citations}
    return " ".join(render_claim(c) for c in claims), [cited[ref] for ref in sorted(cited)]
