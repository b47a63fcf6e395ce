"""Retrieval quality on the seeds: the sentence that answers each question is in the top 5."""

import pytest

from rag.models import SearchFilter

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


def _texts(*pairs):
    from rag.models import Chunk
    from rag.store import StoredChunk

    return [
        StoredChunk(Chunk(chunk_id=f"{doc}#{n:04d}", document_id=doc, index=n, start=0, end=len(text), text=text), "T", {})
        for n, (doc, text) in enumerate(pairs)
    ]


def test_keyword_index_ranks_only_chunks_holding_a_query_word():
    from rag.retrieval import KeywordIndex

    index = KeywordIndex(_texts(
        ("a", "Dockers in Gdansk struck on Monday."),
        ("a", "The strike in Gdansk spread to Gdynia and Gdansk's shipyard, strikers said."),
        ("b", "Wheat prices rose in Chicago."),
        ("b", "Gdansk is a port."),
    ))
    found = index.search("Why did Gdansk dockers strike?", 10)
    assert [chunk_id for chunk_id, _ in found] == ["a#0000", "a#0001", "b#0003"]
    assert [score for _, score in found] == sorted((score for _, score in found), reverse=True)
    assert all(score > 0 for _, score in found)
    assert [chunk_id for chunk_id, _ in index.search("Gdansk dockers strike", 1)] == ["a#0000"]
    assert [chunk_id for chunk_id, _ in index.search("Gdansk", 10, SearchFilter(document_ids=["b"]))] == ["b#0003"]
    assert index.search("Gdansk", 10, SearchFilter(document_ids=["unknown"])) == []
    assert index.search("what is the", 10) == []  # stop words only
    assert index.search("zeppelin", 10) == []


def test_empty_keyword_index_finds_nothing():
    from rag.retrieval import KeywordIndex

    assert KeywordIndex([]).search("anything", 5) == []


def test_query_terms_are_analysed_as_bm25s_analyses_the_chunks():
    import bm25s
    import Stemmer

    from rag.retrieval import KeywordIndex

    query = "Why did the Gdansk dockers' strikes spread to Gdynia's shipyards, and who is ANSWERING?"
    [expected] = bm25s.tokenize(
        query, stopwords="en", stemmer=Stemmer.Stemmer("english"), return_ids=False, show_progress=False
    )
    terms = KeywordIndex([]).query_terms(query)
    assert terms == expected
    assert {"gdansk", "docker", "strike", "shipyard", "answer"} <= set(terms) and "the" not in terms


@pytest.mark.parametrize("query", ["rail strike", "Gdansk", "harbour in Gdansk", "Lyon grain strike", "zeppelin"])
def test_keyword_search_matches_a_full_ranking_of_bm25_scores(query):
    import bm25s
    import numpy as np
    import Stemmer

    from rag.retrieval import KeywordIndex

    towns = ["Lyon", "Porto", "Riga", "Turin", "Brno"]
    topics = ["a rail strike", "grain exports", "port traffic", "school funding"]
    texts = [f"In {towns[n % 5]}, officials discussed {topics[n % 4]} on day {n}." for n in range(200)]
    texts[17] = "Harbour pilots in Gdansk voted to strike."  # a rare term: read from its postings
    stored = _texts(*[("doc", text) for text in texts])
    found = KeywordIndex(stored).search(query, 10)

    reference = bm25s.BM25(method="lucene")
    stemmer = Stemmer.Stemmer("english")
    reference.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    [terms] = bm25s.tokenize(query, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)
    scores = reference.get_scores(terms) if reference.get_tokens_ids(terms) else np.zeros(len(texts))
    expected = sorted((float(score) for score in scores if score > 0), reverse=True)[:10]
    assert [score for _, score in found] == pytest.approx(expected)  # which of tied chunks is free
    by_id = {s.chunk.chunk_id: float(score) for s, score in zip(stored, scores)}
    assert [by_id[chunk_id] for chunk_id, _ in found] == pytest.approx([score for _, score in found])
    if "Gdansk" in query:
        assert found[0][0] == stored[17].chunk.chunk_id


def test_neighbours_are_read_after_the_retrieved_passages_without_repeating_one(seeded):
    passages = seeded.retrieve("How many Ukrainian soldiers surrendered, according to Gerasimov?", top_k=3)
    read = seeded.retriever.with_neighbours(passages, 1)
    assert read[: len(passages)] == passages
    assert len({p.chunk_id for p in read}) == len(read)
    neighbours = read[len(passages):]
    assert neighbours, "a seed article's retrieved chunk has a chunk beside it"
    chunks = {d: {c.chunk_id: c for c in seeded.get_document(d).chunks} for d in {p.document_id for p in read}}
    by_id = {p.chunk_id: p for p in passages}
    for neighbour in neighbours:
        source = by_id[neighbour.context_of]
        assert neighbour.document_id == source.document_id and neighbour.score == 0
        here, there = chunks[neighbour.document_id][neighbour.chunk_id], chunks[source.document_id][source.chunk_id]
        assert abs(here.index - there.index) == 1
        assert neighbour.text == here.text
        assert seeded.get_document(neighbour.document_id).text[neighbour.start : neighbour.end] == neighbour.text
    assert seeded.retriever.with_neighbours(passages, 0) == passages


def test_chunks_without_a_keyword_are_searched_by_embedding_alone(service, tmp_path):
    """A document of stop words only gives bm25s no term to index: the keyword side finds
    nothing (it raised before) and dense search still answers, saved and loaded alike."""
    from rag.models import ArticleInput
    from rag.retrieval import KeywordIndex

    index = KeywordIndex(_texts(("t1", "the"), ("t1", "of a")))
    assert index.search("the", 5) == [] and index.search("anything", 5) == []
    index.save(tmp_path / "kw", "r1")
    assert KeywordIndex.load(tmp_path / "kw", "r1").search("the", 5) == []

    service.ingest(ArticleInput(text="the", document_id="t1"))
    assert [p.document_id for p in service.retrieve("the weather")] == ["t1"]
