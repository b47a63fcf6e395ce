"""Text analysis under everything that reads articles or answers: sentences with their offsets,
words, a normalised form for comparing text copied by different hands, and stems.

Only analysis lives here, no rule about what a claim, a citation or an answer needs: the answer
path and the eval may both stand on it without one grading the other by its own rules."""

from __future__ import annotations

import re
import unicodedata

import pysbd
import Stemmer

# Typographic quotes and dashes as their plain forms: text pasted from a web page and text typed
# by hand differ in these more than in anything else.
_PLAIN = str.maketrans({
    "“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"', "″": '"',
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": "'",
    "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-",
})
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_TOKEN = re.compile(r"[^\W_]+|[^\w\s]")


def normalise(text: str) -> str:
    """NFKC, plain quotes and dashes, runs of whitespace as one space, trimmed."""
    return normalised_with_offsets(text)[0]


def normalised_with_offsets(text: str) -> tuple[str, list[int]]:
    """The normalised text and, for each of its characters, the offset in ``text`` it came from."""
    out: list[str] = []
    offsets: list[int] = []
    for index, char in enumerate(text):
        for piece in unicodedata.normalize("NFKC", char).translate(_PLAIN):
            if piece.isspace():
                if not out or out[-1] == " ":
                    continue
                piece = " "
            out.append(piece)
            offsets.append(index)
    if out and out[-1] == " ":
        out.pop()
        offsets.pop()
    return "".join(out), offsets


def find_all(haystack: str, needle: str) -> list[tuple[int, int]]:
    """Every (start, end) in ``haystack`` where ``needle`` occurs, compared after normalisation
    (case kept); offsets refer to ``haystack`` as given."""
    target = normalise(needle)
    if not target:
        return []
    flat, offsets = normalised_with_offsets(haystack)
    spans, at = [], flat.find(target)
    while at >= 0:
        last = offsets[at + len(target) - 1]
        spans.append((offsets[at], last + 1))
        at = flat.find(target, at + 1)
    return spans


def words(text: str) -> list[str]:
    """The lower-cased words and numbers of the text, in order ("mayor's" is one word)."""
    return _WORD.findall(normalise(text).lower())


def stems(items: list[str]) -> list[str]:
    """English (Snowball) stems, so "announced" meets "announce" and "economists" meets
    "economist" (but not "economy")."""
    return Stemmer.Stemmer("english").stemWords(items)


def _stemmed_tokens(text: str) -> list[str]:
    tokens = _TOKEN.findall(normalise(text).lower())
    return stems(tokens)


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether the phrase occurs in the text as whole tokens, case and inflection aside: "12%"
    in "over 12% of it", "economist" in "two economists", but "12" not in "120"."""
    needle = _stemmed_tokens(phrase)
    if not needle:
        return False
    hay = _stemmed_tokens(text)
    width = len(needle)
    return any(hay[i : i + width] == needle for i in range(len(hay) - width + 1))


def sentences(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of the text's sentences, found by pySBD's rules (abbreviations,
    initials, quoted speech), trimmed of surrounding whitespace."""
    spans, cursor = [], 0
    for piece in pysbd.Segmenter(language="en", clean=False).segment(text):
        body = piece.strip()
        if not body:
            continue
        start = text.find(body, cursor)
        if start < 0:  # pySBD kept the text as it was; a miss would be its bug, so skip it
            continue
        spans.append((start, start + len(body)))
        cursor = start + len(body)
    return spans


# Function words, and the words of reporting ("said", "according"), which carry no fact of their
# own: comparing two texts by what they state means leaving these out.
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just me
    more most my no nor not now of off on once only or other our out over own same she should so
    some such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom whose why will with would you
    your yes said says say saying according told tell article articles story stories report
    reported reports news many much""".split()
)


# A figure, its thousands groups included even when written with a space after the comma.
_NUMBER = re.compile(r"\d{1,3}(?:, ?\d{3})+(?:\.\d+)?(?!\d)|\d+(?:[.,]\d+)*")


def content_terms(text: str) -> set[str]:
    """The stems of the text's words that are not function words, and its figures without
    thousands separators ("125,508" and "125508" are one figure, "1.2bn" holds 1.2)."""
    flat = normalise(text).lower()
    figures = {n.replace(",", "").replace(" ", "") for n in _NUMBER.findall(flat)}
    plain = [w.removesuffix("'s") for w in _WORD.findall(_NUMBER.sub(" ", flat))]
    kept = [w for w in plain if w not in STOPWORDS and len(w) > 1]
    return figures | set(stems(kept))


def is_number(term: str) -> bool:
    return any(ch.isdigit() for ch in term)


# Words that give a count or a time without a digit ("eight weeks", "on Monday").
COUNT_WORDS = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
    r"hundred|thousand|million|billion|trillion|dozen|half|double|twice|triple|fourfold|none|no)\b", re.I,
)
TIME_WORDS = re.compile(
    r"\b(?:january|february|march|april|may|june|july|august|september|october|november|december|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|yesterday|tomorrow|tonight|"
    r"morning|afternoon|evening|night|week|weekend|month|year|decade|century|season|spring|summer|"
    r"autumn|winter|christmas|easter|ago|later|earlier|soon|next|last|since|until|before|after)\b", re.I,
)
# A capitalised word inside a sentence (not its first): a name, a place, an organisation.
_NAME_WORD = re.compile(r"(?<=[\s(\"'\u2018\u201c-])[A-Z][\w'-]+")


def gives(kind: str | None, text: str, asked: set[str]) -> bool:
    """Whether the text holds the kind of thing a question asks for (rag.questions.asked_kind):
    a figure or a count word; a figure or a word of time; a name not among ``asked``, the
    question's content terms."""
    if kind == "figure":
        return any(ch.isdigit() for ch in text) or bool(COUNT_WORDS.search(text))
    if kind == "time":
        return any(ch.isdigit() for ch in text) or bool(TIME_WORDS.search(text))
    if kind in ("name", "place"):
        return any((named := content_terms(word)) and not named & asked for word in _NAME_WORD.findall(text))
    return False
