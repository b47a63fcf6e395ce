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
from difflib import SequenceMatcher

from rag.models import Citation, Passage

_SENTENCE_END = re.compile(r"[.!?][\"'”’)]*(?=\s)|\n\n")
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|without|denied|refused|rejected)\b|n['’]t\b", re.IGNORECASE)
_TITLES = frozenset("Gen Lt Col Maj Capt Sgt Adm Cmdr Gov Sen Rep Pres Mr Mrs Ms Dr Prof St Jr Sr No vs".split())
_INITIALISM = re.compile(r"(?:[A-Z]\.)*[A-Z]")  # "U.S", "J": the word before the stop
_CLAIM_ENDING = re.compile(r"([.!?]?)([\"'”’)]*)$")  # a statement's stop, then any closing quotes
_QUOTATION = re.compile(r"[“\"]([^”\"]+)[”\"]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
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
    aid"), nor after a title or an initialism before a name ("Gen. Valery Gerasimov")."""
    if stop.group()[0] != ".":  # "!", "?" or a blank line
        return True
    if text[stop.end() :].lstrip()[:1].islower():
        return False
    return not closes_abbreviation((text[: stop.start()].rsplit(None, 1)[-1:] or [""])[0])


def inside_quotation(text: str, start: int, stop: re.Match) -> bool:
    """Whether a stop falls inside a quotation that closes later in its paragraph: quoted
    speech of several sentences ("“We’ll have to wait and see. It’s up to Russia now,” Trump
    said") is one statement with its speaker, and a piece of it names no one. A quotation left
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


# "The two articles say…" counts the sources, not something they report.
_SOURCE_COUNT = re.compile(
    r"\b(?:two|three|four|five)\s+(?=(?:news\s+)?(?:articles|reports|sources|stories)\b)", re.IGNORECASE
)


def numbers(text: str) -> set[str]:
    text = _SOURCE_COUNT.sub("", text)
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
    if not named(statement) <= present | asked:
        return False  # "Dmitry Peskov met Valery Gerasimov" on a sentence where Putin did
    # What the statement adds to the question is its answer: evidence sharing only the
    # question's words ("Ukraine's offensive", "Kursk") does not carry "began in August".
    added = _added(statement, question)
    if added and not added & ({word[:5] for word in present} | numbers(evidence)):
        return False
    return not asked or bool(asked & present)


_TWO_WORD_START = re.compile(r"\W*[A-Z][^\W\d_]+(?:['’]s)? [A-Z]")


def named(statement: str) -> set[str]:
    """Stems of the capitalised words the statement uses past its first word (and the first
    when a second follows it: "Dmitry Peskov"), the names of people, places and days a
    sentence must hold to carry it. A lone first word is more often "Later" or "Another" than
    a name."""
    words = [re.sub(r"['’]s$", "", w) for w in _WORD.findall(statement)]
    first = 0 if _TWO_WORD_START.match(statement) else 1
    return {
        content for word in words[first:]
        if word[:1].isupper() and len(word) > 2 and word.lower() not in _STOPWORDS
        for content in content_words(word)
    }


_CAPITALISED = re.compile(r"\b[A-Z][^\W\d_]+")
# Words that open a sentence without naming anyone ("One article…", "Later, …").
_OPENERS = content_words("One Another Both Later Earlier Meanwhile However While Since Although Yes")


def all_names(statement: str) -> set[str]:
    """Stems of every capitalised word, the first one too: stricter than ``named``, for checks
    that must not let "Trump said…" stand on a sentence where Vance did."""
    return content_words(" ".join(_CAPITALISED.findall(statement))) - _OPENERS


def _added(statement: str, question: str) -> set[str]:
    """The statement's content words and figures the question does not already hold, on
    shorter stems so "retaken" meets "retaking"."""
    claimed = content_words(statement) - _NUMBER_STEMS
    return {word[:5] for word in claimed - content_words(question)} | (numbers(statement) - numbers(question))


def echoes_question(statement: str, question: str) -> bool:
    """Whether the statement only repeats words of the question ("Witkoff is still on his way",
    asked "still on his way, or already arrived?"): no word of it can be checked against the
    evidence."""
    return not _added(statement, question)


def _longest_shared_run(statement: str, quotation: str) -> str:
    """The longest run of words the two share, in order (case and punctuation aside)."""
    ours, theirs = re.findall(r"\w+", statement.lower()), re.findall(r"\w+", quotation.lower())
    match = SequenceMatcher(None, ours, theirs, autojunk=False).find_longest_match(0, len(ours), 0, len(theirs))
    return " ".join(ours[match.a : match.a + match.size])


def misquotes(statement: str, evidence: str) -> bool:
    """Whether the statement takes words from a quotation in its evidence (at least two, and
    half of the quotation's) without their exact run: "almost entirely destroyed" written from
    “almost completely destroyed” puts words in someone's mouth; quoting a part is fine."""
    stated = content_words(statement)
    for quotation in _QUOTATION.findall(evidence):
        words = content_words(quotation)
        shared = words & stated
        if len(shared) >= 2 and 2 * len(shared) >= len(words) and not shared <= content_words(_longest_shared_run(statement, quotation)):
            return True
    return False


def _joined(spans: list[_Span]) -> str:
    return " ".join(_text(span) for span in spans)


def _with_names_before(spans: list[_Span], statement: str) -> list[_Span]:
    """Cited sentences that leave a name of the statement to the sentence before them, quoted
    from that sentence on: "Any captured prisoners should be treated as terrorists, he added"
    shows a reader who said it only after "“The previous status … must be restored,” Putin said."."""
    missing = all_names(statement) - content_words(_joined(spans))
    widened = []
    for span in spans:
        before = [start for start, end in sentences(span.passage.text) if end <= span.start]
        if missing and before and missing & content_words(span.passage.text[before[-1] : span.start]):
            missing -= content_words(span.passage.text[before[-1] : span.start])
            span = _Span(span.passage, before[-1], span.end)
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
