"""Quote location, widening and support: the rules that decide whether a citation holds."""

from rag.citations import (
    unmentioned_names,
    DraftClaim,
    locate,
    locate_leading_words,
    render,
    supports,
    verify,
    widen_to_sentences,
)
from rag.models import Passage

TEXT = "Peskov spoke on Thursday. He said the “operation” is in its  final phase.\n\nNext paragraph here."


def passage(text: str, document_id: str = "doc", start: int = 100) -> Passage:
    return Passage(document_id=document_id, title="T", chunk_id=f"{document_id}#0000", text=text,
                   start=start, end=start + len(text), score=0.1)


def test_locate_tolerates_only_whitespace_quote_marks_and_case():
    start, end = locate('he said the "operation" IS in its final phase', TEXT)
    assert TEXT[start:end] == "He said the “operation” is in its  final phase"
    assert locate("he said the operation is in its final phase", TEXT) is None  # marks dropped
    assert locate("He stated the “operation” is in its final phase", TEXT) is None  # a word changed
    assert locate("He said", TEXT) is None  # too short to prove anything


def test_leading_words_salvage_a_quote_that_ran_on():
    span = locate_leading_words("He said the “operation” is in its final phase and more words", TEXT)
    assert TEXT[span[0] : span[1]] == "He said the “operation” is in its  final phase"
    assert locate_leading_words("Something else entirely was never written here", TEXT) is None


def test_widen_to_sentences():
    start, end = locate("the “operation” is", TEXT)
    wide = widen_to_sentences(TEXT, start, end)
    assert TEXT[wide[0] : wide[1]] == "He said the “operation” is in its  final phase."
    first = locate("Peskov spoke on", TEXT)
    assert TEXT[slice(*widen_to_sentences(TEXT, *first))] == "Peskov spoke on Thursday."


def test_support_needs_numbers_content_and_relevance():
    evidence = "Gerasimov said 430 Ukrainian soldiers had surrendered."
    assert supports("430 Ukrainian soldiers surrendered", evidence, "How many soldiers surrendered?")
    assert not supports("500 Ukrainian soldiers surrendered", evidence, "How many soldiers surrendered?")
    assert not supports("Paris is the capital of France", evidence, "What is the capital of France?")
    assert not supports("Gerasimov said soldiers surrendered", evidence, "What is the capital of France?")


def test_spelled_counts_and_bare_figures():
    evidence = "As of Wednesday evening, Ukrainian troops had fought off eight Russian assaults."
    question = "How many Russian assaults did Ukrainian troops fight off?"
    assert supports("Ukrainian troops fought off 8 Russian assaults", evidence, question)
    assert supports("8", evidence, question)  # a bare figure stands on the figure
    assert not supports("9", evidence, question)
    assert not supports("Ukrainian troops fought off nine Russian assaults", evidence, question)
    assert supports("One article says the troops fought off Russian assaults", evidence, question)  # "one": no count


def test_verify_repoints_drops_and_numbers_citations():
    a = passage("Sudzha was retaken on Thursday by Russian forces.", "a", 0)
    b = passage("Witkoff landed in Moscow on Thursday afternoon.", "b", 500)
    drafts = [
        DraftClaim("Witkoff landed in Moscow", 1, "Witkoff landed in Moscow"),  # wrong passage
        DraftClaim("Sudzha was retaken", 7, "Sudzha was retaken on Thursday"),  # no passage 7
        DraftClaim("Kyiv fell", 1, "Kyiv fell to the enemy at dawn"),  # invented
    ]
    claims = verify(drafts, [a, b], "What happened on Thursday in Moscow and Sudzha?")
    assert [c.statement for c in claims] == ["Witkoff landed in Moscow", "Sudzha was retaken"]
    assert [(c.citations[0].ref, c.citations[0].document_id) for c in claims] == [(1, "b"), (2, "a")]
    text, citations = render(claims)
    assert text == "Witkoff landed in Moscow [1]. Sudzha was retaken [2]."
    assert citations[0].start == 500 and citations[0].quote == b.text


def test_a_right_statement_with_a_wrong_quote_is_reanchored_on_its_sentence():
    text = "The Kremlin kept quiet. Russia's Defense Ministry announced the retaking of Sudzha on Thursday."
    drafts = [DraftClaim("The Defense Ministry announced the retaking of Sudzha", 1, "The Kremlin kept quiet")]
    [claim] = verify(drafts, [passage(text, "a", 0)], "Which town did the Defense Ministry retake?")
    assert claim.citations[0].quote == "Russia's Defense Ministry announced the retaking of Sudzha on Thursday."
    # In another passage than the one cited, too little content to re-anchor: dropped.
    quiet = passage("The Kremlin kept quiet on Thursday.", "q")
    assert verify([DraftClaim("Sudzha fell", 1, "The Kremlin kept quiet")], [quiet, passage(text)], "Sudzha?") == []
    # Within the cited passage, another sentence is tried at the usual bar.
    [claim] = verify([DraftClaim("Sudzha was retaken", 2, "The Kremlin kept quiet")], [quiet, passage(text)], "Sudzha?")
    assert claim.citations[0].quote.startswith("Russia's Defense Ministry")


def test_names_the_passages_never_mention():
    passages = [passage("Putin met Gerasimov in Kursk. Witkoff's plane landed in Moscow.")]
    assert unmentioned_names("What did Zelensky say about Putin's visit?", passages) == ["Zelensky"]
    assert unmentioned_names("Where did Witkoff's plane land?", passages) == []
    assert unmentioned_names("Who won the 2022 FIFA World Cup?", passages) == ["FIFA", "World", "Cup"]
    assert unmentioned_names("Which town was retaken?", passages) == []  # the first word is no name
