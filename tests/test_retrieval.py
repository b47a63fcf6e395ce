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


def _index(folder, stored):
    from rag.keywords import KeywordIndex

    index = KeywordIndex(folder)
    with index.writing() as changes:
        changes.add(stored)
    return index


def test_keyword_index_ranks_only_chunks_holding_a_query_word(tmp_path):
    index = _index(tmp_path, _texts(
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
    assert index.search("Gdansk", 10, SearchFilter(document_ids=[])) == []
    assert index.search("what is the", 10) == []  # stop words only
    assert index.search("zeppelin", 10) == []


def test_empty_keyword_index_finds_nothing(tmp_path):
    from rag.keywords import KeywordIndex

    index = KeywordIndex(tmp_path)
    assert index.search("anything", 5) == [] and len(index) == 0 and index.get("a#0000") is None


def test_a_chunk_without_any_keyword_term_is_indexed_and_never_ranked(tmp_path):
    # Stop words, one-letter words and punctuation only: no term survives the analysis.
    index = _index(tmp_path, _texts(("a", "It is as it is, and it is on: a, b, c!"), ("a", "— 1 2 3 —"), ("b", "Gdansk port")))
    assert len(index) == 3 and index.get("a#0000").chunk.text.startswith("It is")
    assert [chunk_id for chunk_id, _ in index.search("Gdansk is as it is", 10)] == ["b#0002"]
    assert index.search("it is", 10) == []


def test_keyword_filters_follow_article_metadata_as_chroma_does(tmp_path):
    from rag.models import Chunk
    from rag.store import StoredChunk

    articles = {
        "s1": {"section": "sport", "date": "2005-01-31", "page": 3},
        "s2": {"section": "sport", "date": "2005-03-02", "page": 3.0},
        "b1": {"section": "business", "date": "2005-02-10", "wire": True},
        "nodate": {"section": "sport"},
    }
    index = _index(tmp_path, [
        StoredChunk(Chunk(chunk_id=f"{d}#0", document_id=d, index=0, start=0, end=20, text="Harbour strike news"), d, meta)
        for d, meta in articles.items()
    ])
    from datetime import date

    def ids(search):
        return sorted(chunk_id.split("#")[0] for chunk_id, _ in index.search("harbour strike", 10, search))

    assert ids(SearchFilter(where={"section": "sport"})) == ["nodate", "s1", "s2"]
    assert ids(SearchFilter(where={"page": 3})) == ["s1", "s2"]  # 3 == 3.0, as in Python
    assert ids(SearchFilter(where={"wire": True})) == ["b1"]
    assert ids(SearchFilter(date_from=date(2005, 2, 1))) == ["b1", "s2"]
    assert ids(SearchFilter(where={"section": "sport"}, date_to=date(2005, 2, 28))) == ["s1"]
    assert ids(SearchFilter(document_ids=["s2", "b1"], where={"section": "sport"})) == ["s2"]
    assert index.get("b1#0").metadata == {"section": "business", "date": "2005-02-10", "wire": True}
    # The filter decides which chunks rank, not their scores.
    assert index.search("harbour", 10, SearchFilter(where={"section": "business"}))[0][1] == pytest.approx(
        dict(index.search("harbour", 10))["b1#0"])


def test_query_terms_are_analysed_as_bm25s_analyses_the_chunks(tmp_path):
    import bm25s
    import Stemmer

    from rag.keywords import KeywordIndex

    query = "Why did the Gdansk dockers' strikes spread to Gdynia's shipyards, and who is ANSWERING?"
    [expected] = bm25s.tokenize(
        query, stopwords="en", stemmer=Stemmer.Stemmer("english"), return_ids=False, show_progress=False
    )
    terms = KeywordIndex(tmp_path).query_terms(query)
    assert terms == expected
    assert {"gdansk", "docker", "strike", "shipyard", "answer"} <= set(terms) and "the" not in terms


@pytest.mark.parametrize("query", ["rail strike", "Gdansk", "harbour in Gdansk", "Lyon grain strike", "zeppelin"])
def test_keyword_search_matches_a_full_ranking_of_bm25_scores(tmp_path, query):
    """tantivy's BM25 against bm25s's lucene method, the keyword side before it: the same chunks in
    the same order, and scores in the same proportions (tantivy keeps Lucene's (k1 + 1) factor
    and stores document lengths in one byte; fusion reads ranks only)."""
    import bm25s
    import numpy as np
    import Stemmer

    towns = ["Lyon", "Porto", "Riga", "Turin", "Brno"]
    topics = ["a rail strike", "grain exports", "port traffic", "school funding"]
    texts = [f"In {towns[n % 5]}, officials discussed {topics[n % 4]} on day {n}." for n in range(200)]
    texts[17] = "Harbour pilots in Gdansk voted to strike."  # a rare term
    stored = _texts(*[("doc", text) for text in texts])
    found = _index(tmp_path, stored).search(query, 10)

    reference = bm25s.BM25(method="lucene")
    stemmer = Stemmer.Stemmer("english")
    reference.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    [terms] = bm25s.tokenize(query, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)
    scores = reference.get_scores(terms) if reference.get_tokens_ids(terms) else np.zeros(len(texts))
    expected = sorted((float(score) for score in scores if score > 0), reverse=True)[:10]
    assert len(found) == len(expected)
    if not found:
        return
    assert [score / found[0][1] for _, score in found] == pytest.approx([e / expected[0] for e in expected], rel=0.02)
    by_id = {s.chunk.chunk_id: float(score) for s, score in zip(stored, scores)}
    assert [by_id[chunk_id] for chunk_id, _ in found] == pytest.approx(expected)  # which of tied chunks is free
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


def test_an_article_without_any_keyword_term_is_stored_and_retrieval_still_answers(service):
    # Only stop words and one-letter words: the keyword side has no term for it.
    from rag.models import ArticleInput

    assert service.ingest(ArticleInput(text="It is as it is, and it is on.", document_id="empty-words")).status == "created"
    assert len(service.retriever.keyword_index()) == 1
    assert service.retriever.keyword_index().search("it is", 5) == []
    [passage] = service.retrieve("it is", top_k=5)  # the dense side alone
    assert passage.document_id == "empty-words"
