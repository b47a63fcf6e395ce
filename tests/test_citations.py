"""Support and verification: the rules that decide whether a citation holds."""

from rag.answer.verify import CitedSentence, DraftClaim, VerifiedClaim, render, render_claim, sentences, verify
from rag.answer.support import supports, unmentioned_names
from rag.models import Citation, Passage


def passage(text: str, document_id: str = "doc", start: int = 100) -> Passage:
    return Passage(document_id=document_id, title="T", chunk_id=f"{document_id}#0000", text=text,
                   start=start, end=start + len(text), score=0.1)


def cite(passages: list[Passage], number: int, sentence: str) -> CitedSentence:
    """Passage ``number``'s sentence ``sentence``, as the parser hands it to the verifier."""
    start = passages[number - 1].text.index(sentence)
    return CitedSentence(number, start, start + len(sentence))


def test_sentences_do_not_end_at_titles_initialisms_or_before_lower_case():
    text = ("The occupation may be nearing an end as Gen. Valery Gerasimov said so. Analysts expect a "
            "halt to U.S. military aid. Then the U.S. Army came. He said it had “collapsed.” Did it? Yes.\n\nNext")
    assert [text[a:b] for a, b in sentences(text)] == [
        "The occupation may be nearing an end as Gen. Valery Gerasimov said so.",
        "Analysts expect a halt to U.S. military aid.", "Then the U.S. Army came.",
        "He said it had “collapsed.”", "Did it?", "Yes.", "Next",
    ]


def test_a_claims_markers_go_before_its_stop_and_outside_its_quotes():
    def rendered(statement: str) -> str:
        return render_claim(VerifiedClaim(statement, [Citation(
            ref=2, document_id="d", title="T", chunk_id="d#0000", quote="q", start=0, end=1)]))

    assert rendered("He said it had “completely collapsed.”") == "He said it had “completely collapsed” [2]."
    assert rendered("Was it retaken?") == "Was it retaken [2]?"
    assert rendered("Sudzha was retaken") == "Sudzha was retaken [2]."


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
    # Counting the articles is not a figure they report.
    syrsky = "Ukraine’s army chief, Gen. Oleksandr Syrsky, countered on Wednesday that combat operations continue."
    spelling = "How do the two articles spell the name of Ukraine's army chief?"
    assert supports("The two articles spell the army chief's name Oleksandr Syrsky", syrsky, spelling)
    assert not supports("The two army chiefs are named Oleksandr Syrsky", syrsky, spelling)


def test_evidence_must_carry_what_the_statement_adds_to_the_question():
    question = "When did Ukraine's offensive in Kursk begin?"
    began = "Ukraine’s surprise offensive into Kursk began in August."
    pushing = "Ukraine’s army chief said the Russian offensive is pushing steadily forward in the Kursk region."
    assert supports("Ukraine's surprise offensive into Kursk began in August", began, question)
    # Half its words, all of them the question's: nothing of the answer.
    assert not supports("Ukraine's surprise offensive into Kursk began in August", pushing, question)
    assert supports("Ukraine's offensive in Kursk", pushing, question)  # adds nothing to the question


def test_a_claim_cited_under_a_wrong_number_is_reanchored_on_a_shown_sentence():
    a = passage("Ukraine’s army chief said combat operations continue in the Kursk region.", "a", 0)
    b = passage("The incursion shattered a red line. Russia was forced to deploy North Korean troops "
                "to the region in an effort to win back the territory.", "b", 500)
    passages = [a, b]
    question = "Which foreign troops did Russia bring to Kursk?"
    draft = DraftClaim("Russia brought North Korean troops to Kursk", (cite(passages, 1, a.text),))
    deploy = "Russia was forced to deploy North Korean troops to the region in an effort to win back the territory."
    # Four of its six words: below the bar for a sentence the model never saw.
    assert verify([draft], passages, question) == []
    [claim] = verify([draft], passages, question, shown=[cite(passages, 2, deploy)])
    assert [(c.document_id, c.quote) for c in claim.citations] == [("b", deploy)]


def test_verify_reanchors_drops_and_numbers_citations():
    a = passage("Sudzha was retaken on Thursday by Russian forces.", "a", 0)
    b = passage("Witkoff landed in Moscow on Thursday afternoon.", "b", 500)
    passages = [a, b]
    drafts = [
        DraftClaim("Witkoff landed in Moscow", (cite(passages, 1, a.text),)),  # the wrong passage
        DraftClaim("Sudzha was retaken", (CitedSentence(7, 0, 10),)),  # no passage 7
        DraftClaim("Kyiv fell", (cite(passages, 1, a.text),)),  # nowhere in the passages
        DraftClaim("Sudzha was retaken", (cite(passages, 1, a.text),)),  # said already
    ]
    claims = verify(drafts, passages, "What happened on Thursday in Moscow and Sudzha?")
    assert [c.statement for c in claims] == ["Witkoff landed in Moscow", "Sudzha was retaken"]
    assert [(c.citations[0].ref, c.citations[0].document_id) for c in claims] == [(1, "b"), (2, "a")]
    text, citations = render(claims)
    assert text == "Witkoff landed in Moscow [1]. Sudzha was retaken [2]."
    assert citations[0].start == 500 and citations[0].quote == b.text


def test_sentences_cited_together_must_carry_the_claim_together():
    text = "Gerasimov spoke on Wednesday. He said 430 Ukrainian soldiers had surrendered. It rained."
    passages = [passage(text, "a", 0)]
    question = "How many soldiers surrendered, according to Gerasimov?"
    both = (cite(passages, 1, "Gerasimov spoke on Wednesday."), cite(passages, 1, "He said 430 Ukrainian soldiers had surrendered."))
    [claim] = verify([DraftClaim("Gerasimov said 430 soldiers surrendered on Wednesday", both)], passages, question)
    assert [c.quote for c in claim.citations] == ["Gerasimov spoke on Wednesday.", "He said 430 Ukrainian soldiers had surrendered."]
    # A cited sentence that shares nothing with the claim is not needed for it, so not cited.
    padded = (*both, cite(passages, 1, "It rained."))
    [claim] = verify([DraftClaim("Gerasimov said 430 soldiers surrendered on Wednesday", padded)], passages, question)
    assert "It rained." not in [c.quote for c in claim.citations]


def test_a_right_statement_with_a_wrong_citation_is_reanchored_on_its_sentence():
    text = "The Kremlin kept quiet. Russia's Defense Ministry announced the retaking of Sudzha on Thursday."
    passages = [passage(text, "a", 0)]
    drafts = [DraftClaim("The Defense Ministry announced the retaking of Sudzha", (cite(passages, 1, "The Kremlin kept quiet."),))]
    [claim] = verify(drafts, passages, "Which town did the Defense Ministry retake?")
    assert claim.citations[0].quote == "Russia's Defense Ministry announced the retaking of Sudzha on Thursday."
    # In another passage than the one cited, too little content to re-anchor: dropped.
    two = [passage("The Kremlin kept quiet on Thursday.", "q"), passage(text)]
    quiet = (cite(two, 1, "The Kremlin kept quiet on Thursday."),)
    assert verify([DraftClaim("Sudzha fell", quiet)], two, "Sudzha?") == []
    # Within the cited passage, another sentence is tried at the usual bar.
    [claim] = verify([DraftClaim("Sudzha was retaken", (cite(two, 2, "The Kremlin kept quiet."),))], two, "Sudzha?")
    assert claim.citations[0].quote.startswith("Russia's Defense Ministry")


def test_names_the_passages_never_mention():
    passages = [passage("Putin met Gerasimov in Kursk. Witkoff's plane landed in Moscow.")]
    assert unmentioned_names("What did Zelensky say about Putin's visit?", passages) == ["Zelensky"]
    assert unmentioned_names("Where did Witkoff's plane land?", passages) == []
    assert unmentioned_names("Who won the 2022 FIFA World Cup?", passages) == ["FIFA", "World", "Cup"]
    assert unmentioned_names("Which town was retaken?", passages) == []  # the first word is no name


def test_a_bare_yes_stands_only_on_a_sentence_that_states_the_whole_question():
    text = ("Ukraine has already agreed to the U.S.-proposed ceasefire. Ukraine agreed to talks. "
            "Russia has not agreed to the U.S.-proposed ceasefire.")
    passages = [passage(text, "a", 0)]

    def verified(question: str, sentence: str) -> list[str]:
        return [c.citations[0].quote for c in verify([DraftClaim("Yes", (cite(passages, 1, sentence),))], passages, question)]

    agreed = "Ukraine has already agreed to the U.S.-proposed ceasefire."
    assert verified("Has Ukraine agreed to the US-proposed ceasefire?", agreed) == [agreed]
    [claim] = verify([DraftClaim("Yes.", (cite(passages, 1, agreed),))], passages, "Has Ukraine agreed to the US-proposed ceasefire?")
    assert claim.statement == f"Yes, one article reports: “{agreed.rstrip('.')}”"  # checkable by a reader
    assert verified("Has Ukraine agreed to the US-proposed ceasefire?", "Ukraine agreed to talks.") == []  # half of it
    assert verified("Has Russia agreed to the US-proposed ceasefire?",
                    "Russia has not agreed to the U.S.-proposed ceasefire.") == []  # denied


def test_quoted_speech_of_several_sentences_stays_with_its_speaker():
    text = ("“We’ll have to wait and see. It’s up to Russia now,” Trump said. He left. "
            "A quote \"cut off. By the chunk\n\nNext. \"Straight. Quotes,\" he said.")
    assert [text[a:b] for a, b in sentences(text)] == [
        "“We’ll have to wait and see. It’s up to Russia now,” Trump said.", "He left.",
        "A quote \"cut off.", "By the chunk", "Next.", "\"Straight. Quotes,\" he said.",
    ]


def claim_on(passages: list[Passage], sentence: str, statement: str, question: str) -> VerifiedClaim:
    [claim] = verify([DraftClaim(statement, (cite(passages, 1, sentence),))], passages, question)
    return claim


def as_quote(sentence: str) -> str:
    return f"One article reports: “{sentence.rstrip('.')}”"


def test_a_statement_that_only_echoes_the_question_is_replaced_by_its_evidence():
    slated = "Steve Witkoff is slated to journey to Russia later this week."
    passages = [passage(f"Vance spoke. {slated}")]
    question = "Where was Steve Witkoff in his trip to Russia: still on his way, or already arrived?"
    claim = claim_on(passages, slated, "Steve Witkoff is still on his way to Russia", question)
    assert (claim.statement, claim.citations[0].quote) == (as_quote(slated), slated)
    answer = "Steve Witkoff was due in Russia later this week"
    assert claim_on(passages, slated, answer, question).statement == answer


def test_a_statement_that_misquotes_its_evidence_is_replaced_by_it():
    completely = "He said Russia has “almost completely destroyed” the town of Sudzha with its aerial bombardment."
    passages = [passage(f"Syrsky spoke. {completely}")]
    question = "How badly was Sudzha destroyed?"

    def statement(text: str) -> str:
        return claim_on(passages, completely, text, question).statement

    assert statement("Sudzha was almost entirely destroyed by aerial bombardment") == as_quote(completely)
    exact = "Syrsky said Russia had “almost completely destroyed” Sudzha by aerial bombardment"
    assert statement(exact) == exact
    assert statement("Russia destroyed Sudzha with aerial bombardment") == "Russia destroyed Sudzha with aerial bombardment"
    part = "Syrsky said Sudzha was completely destroyed, by aerial bombardment"  # a part of the quotation, as it stands
    assert statement(part) == part


def test_names_in_a_statement_must_be_in_its_evidence_or_the_question():
    evidence = "Footage showed Putin conferring with his chief general Valery Gerasimov in Kursk."
    question = "Which Russian general did Putin meet in Kursk?"
    assert supports("Putin met Valery Gerasimov in Kursk", evidence, question)
    assert not supports("Dmitry Peskov met Valery Gerasimov in Kursk", evidence, question)
    assert not supports("Putin met Valery Gerasimov in Kursk on Friday", evidence, question)
    assert supports("Later, Putin met Gerasimov", evidence, question)  # a lone first word is no name
    assert supports("Putin met Gerasimov in the Russian region of Kursk", evidence, "Which general did Putin meet in Russian Kursk?")


def test_a_claim_that_fails_on_a_sentence_holding_the_question_quotes_that_sentence():
    commented = "Trump commented that the situation is now under Putin’s control."
    oval = "“We’ll have to wait and see. It’s up to Russia now,” Trump stated to reporters in the Oval Office."
    passages = [passage(f"{commented} {oval}")]
    question = "What did Trump say to reporters in the Oval Office about the ceasefire?"
    claim = claim_on(passages, oval, "Trump stated that the situation is now under Putin’s control", question)
    assert (claim.statement, claim.citations[0].quote) == (as_quote(oval), oval)
    # A claim its cited sentence carries keeps its own words.
    own_words = "Trump said the situation is now under Putin’s control"
    assert claim_on(passages, commented, own_words, "Whose control is the situation under, per Trump?").statement == own_words


def test_a_cited_sentence_that_leaves_the_speaker_to_the_one_before_is_quoted_from_it():
    said = "“The previous status along the border must be restored,” Putin said."
    added = "Any captured prisoners should be treated as terrorists, he added."
    text = f"Ukraine lost ground. {said} {added}"
    passages = [passage(text)]
    question = "How should captured prisoners be treated, according to Putin?"
    claim = claim_on(passages, added, "Putin said captured prisoners should be treated as terrorists", question)
    quote = claim.citations[0].quote
    assert quote == f"{said} {added}"
    assert claim.citations[0].start == 100 + text.index(said)  # the offsets cover the widened quote
    # A sentence that names the speaker itself is quoted alone.
    own = "Putin said captured prisoners should be regarded as terrorists."
    alone = claim_on([passage(f"{said} {own}")], own, "Putin said captured prisoners should be treated as terrorists", question)
    assert alone.citations[0].quote == own
