"""Retrieval quality on the seeds: the sentence that answers each question is in the top 5."""

import pytest

QUESTIONS = [
    ("Which town did the Russian Defense Ministry say it retook?", "announcing Thursday the retaking of Sudzha"),
    ("How many Ukrainian soldiers surrendered, according to Gerasimov?", "430 Ukrainian soldiers had surrendered"),
    ("What share of the captured territory did Russia say it had regained?", "regained over 86% of the territory"),
    ("Who is the Kremlin spokesman?", "Kremlin spokesman Dmitry Peskov"),
    ("How did Putin say captured Ukrainian soldiers should be treated?", "should be regarded as"),
    ("How many Russian assaults did Ukrainian troops fight off?", "fought off eight Russian assaults"),
    ("Where did Steve Witkoff's plane land?", "landed in Moscow on Thursday"),
    ("Which foreign troops did Russia deploy to the Kursk region?", "North Korean troops"),
    ("What are Russia's terms for a peace deal?", "shutting Ukraine out of NATO"),
    ("When did Ukraine's offensive into Kursk begin?", "offensive into Kursk began in August"),
    ("What did Syrskyi hint at regarding withdrawals?", "possible tactical withdrawals"),
    ("What condition might the Kremlin demand for a ceasefire?", "halt to U.S. military aid"),
    ("What did JD Vance say about the discussions?", "over the phone and in person"),
    ("What did Putin wear during the visit?", "camouflage uniform"),
]


@pytest.mark.parametrize("question, sentence", QUESTIONS)
def test_answering_sentence_is_in_top_5(seeded, question, sentence):
    passages = seeded.retrieve(question, top_k=5)
    assert len(passages) == 5
    assert any(sentence in p.text for p in passages), [p.chunk_id for p in passages]
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
