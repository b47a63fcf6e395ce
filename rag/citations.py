"""Citation checking: the code, not the model, decides whether a quote holds.

A quote holds when it occurs in a retrieved passage, allowing only for differences of
whitespace, quote marks and letter case. A held quote is widened to the sentence(s) it sits
in, so a reader sees the whole statement of fact, and reported with document offsets. A claim
stands only if its cited sentences carry its key content and touch the question.

Small models often state a fact right but quote the wrong sentence. The model's quote is
then treated as a pointer that missed: the claim is re-anchored on the retrieved sentence
that carries most of its content, if one passes the same support test with a higher bar.
A claim with neither is dropped."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.models import Citation, Passage

_QUOTE_MARKS = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": "'",
                              "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"'})
_SENTENCE_END = re.compile(r"[.!?][\"'”’)]*(?=\s)|\n\n")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
MIN_QUOTE_WORDS = 3
MIN_SALVAGED_WORDS = 5
SUPPORT_RATIO = 0.5  # share of a statement's content words its evidence must hold
REANCHOR_RATIO = 0.7  # the same, for a sentence found by the code rather than quoted
REANCHOR_MIN_WORDS = 3  # "The war is over" says too little to be matched to a sentence
_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just me
    more most my no nor not now of off on once only or other our out over own same she should so
    some such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your
    said says say according article articles report reported reports tell told many much""".split()
)


@dataclass(frozen=True)
class DraftClaim:
    """A claim as the model wrote it: unchecked."""

    statement: str
    passage: int  # 1-based, as numbered in the prompt
    quote: str
    also: tuple[tuple[int, str], ...] = ()  # more (passage, quote) cited for the same statement


@dataclass(frozen=True)
class VerifiedClaim:
    statement: str
    citations: list[Citation]


@dataclass(frozen=True)
class _Span:
    passage: Passage
    start: int  # offsets into the passage text
    end: int


def _normalise(text: str) -> tuple[str, list[int]]:
    """Case-folded text with quote marks unified and whitespace runs collapsed, plus the
    original index of every character kept."""
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text.translate(_QUOTE_MARKS).lower()):
        if char.isspace():
            if chars and chars[-1] == " ":
                continue
            char = " "
        chars.append(char)
        origin.append(index)
    return "".join(chars), origin


def _clean_quote(quote: str) -> str:
    quote = quote.strip().strip("\"'“”‘’").strip()
    return re.sub(r"(\.\.\.|…)$", "", quote).strip()


def locate(quote: str, text: str) -> tuple[int, int] | None:
    """Where ``quote`` occurs in ``text`` (only whitespace, quote marks and case may differ)."""
    needle, _ = _normalise(_clean_quote(quote))
    needle = needle.strip()
    if len(needle.split()) < MIN_QUOTE_WORDS:
        return None  # too short to show anything: "the", "Russia said"
    haystack, origin = _normalise(text)
    at = haystack.find(needle)
    if at < 0:
        return None
    return origin[at], origin[at + len(needle) - 1] + 1


def locate_leading_words(quote: str, text: str) -> tuple[int, int] | None:
    """The longest run of the quote's leading whole words found in ``text``: a quote the model
    began verbatim but ran past its length cap (or off the passage) keeps its verified part."""
    words = _clean_quote(quote).split()
    for count in range(len(words) - 1, MIN_SALVAGED_WORDS - 1, -1):
        span = locate(" ".join(words[:count]), text)
        if span:
            return span
    return None


def widen_to_sentences(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow [start, end) to whole sentences of ``text``."""
    sentence_start = 0
    for match in _SENTENCE_END.finditer(text, 0, start):
        sentence_start = match.end()
    following = _SENTENCE_END.search(text, max(end - 1, start))
    sentence_end = following.end() if following and following.group() != "\n\n" else (
        following.start() if following else len(text)
    )
    while sentence_start < start and text[sentence_start].isspace():
        sentence_start += 1
    return sentence_start, max(sentence_end, end)


def _find(number: int, quote: str, passages: list[Passage]) -> _Span | None:
    cited = passages[number - 1] if 1 <= number <= len(passages) else None
    # The cited passage first; a quote found in another retrieved passage is re-pointed there.
    order = ([cited] if cited else []) + [p for p in passages if p is not cited]
    for finder in (locate, locate_leading_words):
        for passage in order:
            span = finder(quote, passage.text)
            if span:
                return _Span(passage, *widen_to_sentences(passage.text, *span))
    return None


def _text(span: _Span) -> str:
    return span.passage.text[span.start : span.end]


def sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.end() if match.group() != "\n\n" else match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(a + len(text[a:b]) - len(text[a:b].lstrip()), b) for a, b in spans if text[a:b].strip()]


def _reanchor(
    statement: str, question: str, passages: list[Passage],
    ratio: float = REANCHOR_RATIO, min_words: int = REANCHOR_MIN_WORDS,
) -> _Span | None:
    claimed = content_words(statement)
    if len(claimed) < min_words:
        return None
    best: tuple[float, _Span] | None = None
    for passage in passages:
        for start, end in sentences(passage.text):
            sentence = passage.text[start:end]
            if not supports(statement, sentence, question, ratio):
                continue
            overlap = len(claimed & content_words(sentence)) / len(claimed)
            if best is None or overlap > best[0]:
                best = (overlap, _Span(passage, start, end))
    return best[1] if best else None


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")) else word


def content_words(text: str) -> set[str]:
    """Lower-cased content words, cut to a crude stem so 'surrendered' meets 'surrender'."""
    words = (_singular(re.sub(r"['’]s$", "", w.lower())) for w in _WORD.findall(text))
    return {w[:6] for w in words if len(w) > 2 and w not in _STOPWORDS}


def unmentioned_names(question: str, passages: list[Passage]) -> list[str]:
    """Names the question uses (capitalised words past its first) that no passage contains:
    "What did Zelensky say?" over articles that never name him cannot be answered from them."""
    words = _WORD.findall(question)[1:]
    names = [re.sub(r"['’]s$", "", w) for w in words if w[:1].isupper() and len(w) > 2]
    present = set().union(*(content_words(p.text) for p in passages)) if passages else set()
    return [name for name in dict.fromkeys(names) if name.lower()[:6] not in present]


# Spelled-out counts, so "8 assaults" meets "eight assaults". "one" is left out: it is more
# often a pronoun ("one article says") than a count.
_NUMBER_WORDS = {
    word: str(value) for value, word in enumerate(
        "zero _ two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    ) if word != "_"
} | {word: str(10 * tens) for tens, word in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)}
_NUMBER_STEMS = {word[:6] for word in _NUMBER_WORDS}  # as content_words cuts them


def numbers(text: str) -> set[str]:
    spelled = {_NUMBER_WORDS[w] for w in _WORD.findall(text.lower()) if w in _NUMBER_WORDS}
    return {n.replace(",", "") for n in _NUMBER.findall(text)} | spelled


def supports(statement: str, evidence: str, question: str, ratio: float = SUPPORT_RATIO) -> bool:
    """Whether the evidence carries the statement's key content and bears on the question."""
    stated = numbers(statement)
    if not stated <= numbers(evidence):
        return False
    claimed = content_words(statement) - _NUMBER_STEMS
    present = content_words(evidence)
    if not claimed and not stated:
        return False
    if claimed and len(claimed & present) / len(claimed) < ratio:
        return False  # a bare figure ("86%", "8") is carried by the figure alone
    asked = content_words(question)
    return not asked or bool(asked & present)


class ClaimVerifier:
    """Checks claims one at a time (as they stream in), numbering citations 1, 2, … in order
    of first use, one number per distinct span."""

    def __init__(self, passages: list[Passage], question: str) -> None:
        self.passages = passages
        self.question = question
        self._refs: dict[tuple[str, int, int], int] = {}
        self._statements: set[str] = set()
        self.claims: list[VerifiedClaim] = []

    def add(self, draft: DraftClaim) -> VerifiedClaim | None:
        statement = re.sub(r"\s*\[\d+\]", "", " ".join(draft.statement.split())).strip()
        if not statement or statement in self._statements:
            return None
        spans = self._evidence(statement, draft)
        if not spans:
            # Small models often name the right passage but the wrong sentence of it: its other
            # sentences are tried at the usual bar, every retrieved sentence at a higher one.
            cited = [self.passages[n - 1] for n in {draft.passage, *(n for n, _ in draft.also)}
                     if 1 <= n <= len(self.passages)]
            reanchored = (_reanchor(statement, self.question, cited, SUPPORT_RATIO, min_words=0)
                          or _reanchor(statement, self.question, self.passages))
            spans = [reanchored] if reanchored else []
        if not spans:
            return None
        claim = VerifiedClaim(statement, [self._citation(span) for span in spans])
        self._statements.add(statement)
        self.claims.append(claim)
        return claim

    def _evidence(self, statement: str, draft: DraftClaim) -> list[_Span]:
        """The cited spans that together carry the statement, or none. A span that shares
        nothing with the statement is left out: it is not needed for it."""
        found = [_find(number, quote, self.passages) for number, quote in ((draft.passage, draft.quote), *draft.also)]
        spans = list({(s.passage.chunk_id, s.start): s for s in found if s is not None}.values())
        if not spans or not supports(statement, " ".join(_text(s) for s in spans), self.question):
            return []
        claimed = content_words(statement) | numbers(statement)
        needed = [s for s in spans if claimed & (content_words(_text(s)) | numbers(_text(s)))]
        return needed or spans[:1]

    def _citation(self, span: _Span) -> Citation:
        start, end = span.passage.start + span.start, span.passage.start + span.end
        ref = self._refs.setdefault((span.passage.document_id, start, end), len(self._refs) + 1)
        return Citation(
            ref=ref, document_id=span.passage.document_id, title=span.passage.title,
            chunk_id=span.passage.chunk_id, quote=_text(span), start=start, end=end,
        )


def verify(drafts: list[DraftClaim], passages: list[Passage], question: str) -> list[VerifiedClaim]:
    """The claims whose quotes hold and support them."""
    verifier = ClaimVerifier(passages, question)
    for draft in drafts:
        verifier.add(draft)
    return verifier.claims


def render_claim(claim: VerifiedClaim) -> str:
    """One statement with its [n] markers before the closing stop."""
    markers = "".join(f"[{ref}]" for ref in sorted({c.ref for c in claim.citations}))
    body = claim.statement.rstrip()
    end = body[-1] if body[-1] in ".!?" else "."
    return f"{body.rstrip('.!?')} {markers}{end}"


def render(claims: list[VerifiedClaim]) -> tuple[str, list[Citation]]:
    """Answer text with [n] markers after each statement, and the citations it uses."""
    cited = {c.ref: c for claim in claims for c in claim.citations}
    return " ".join(render_claim(c) for c in claims), [cited[ref] for ref in sorted(cited)]
