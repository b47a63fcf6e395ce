"""What a statement needs from its evidence, read lexically: its numbers, its names, enough of
its content words, something of what it adds to the question, and a quotation's exact words.
The answer's citation check (``rag.answer.verify``) stands on these rules; the eval does not."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from rag.models import Passage

_QUOTATION = re.compile(r"[“\"]([^”\"]+)[”\"]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
SUPPORT_RATIO = 0.5  # share of a statement's content words its evidence must hold
_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just me
    more most my no nor not now of off on once only or other our out over own same she should so
    some such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your
    said says say according article articles report reported reports tell told many much""".split()
)


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
        return False  # a meeting attributed to two people on a sentence where a third met them
    # What the statement adds to the question is its answer: evidence sharing only the
    # question's words (the event and the place asked about) does not carry the month it began.
    added = _added(statement, question)
    if added and not added & ({word[:5] for word in present} | numbers(evidence)):
        return False
    return not asked or bool(asked & present)


_TWO_WORD_START = re.compile(r"\W*[A-Z][^\W\d_]+(?:['’]s)? [A-Z]")


def named(statement: str) -> set[str]:
    """Stems of the capitalised words the statement uses past its first word (and the first
    when a second follows it: "Gordon Brown"), the names of people, places and days a
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
    """Whether the statement only repeats words of the question ("the envoy is still on his way",
    asked "is the envoy still on his way, or already arrived?"): no word of it can be checked against the
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
