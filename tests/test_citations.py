"""The answer path's pure parts: the sentences shown, the reply read while it streams, and the
accept/reject decision on it with its evidence."""

import json

from rag.answer.parse import ModelReply, ReplyParser
from rag.answer.prompt import number_sentences
from rag.answer.verify import verify
from rag.models import Passage
from rag.text import content_terms

SURRENDER = "Gerasimov said 430 Ukrainian soldiers had surrendered. The talks resume in March."
ASSAULTS = "As of Wednesday, Ukrainian troops had fought off eight Russian assaults near Kursk."


def passage(text: str, document_id: str = "doc", start: int = 100, title: str = "Kursk fighting") -> Passage:
    return Passage(document_id=document_id, title=title, chunk_id=f"{document_id}#0000", text=text,
                   start=start, end=start + len(text), score=0.1)


PASSAGES = [passage(SURRENDER, "a"), passage(ASSAULTS, "b", title="Assaults repelled")]
NUMBERED = number_sentences(PASSAGES)
SURRENDER_Q = "How many Ukrainian soldiers surrendered in Kursk?"


def test_sentences_are_numbered_in_reading_order_under_their_titles():
    assert NUMBERED.text == (
        "Article: Kursk fighting\n[1] Gerasimov said 430 Ukrainian soldiers had surrendered.\n"
        "[2] The talks resume in March.\n\nArticle: Assaults repelled\n"
        "[3] As of Wednesday, Ukrainian troops had fought off eight Russian assaults near Kursk."
    )
    third = NUMBERED.shown[3]
    assert third.text_in(PASSAGES) == ASSAULTS and PASSAGES[third.passage].document_id == "b"


def test_an_answer_taken_from_its_sentence_is_accepted_with_that_sentence_as_evidence():
    verdict = verify(ModelReply((1, 2), "430 soldiers"), NUMBERED, PASSAGES, SURRENDER_Q, 0.5)
    assert verdict.accepted
    assert [s.number for s in verdict.evidence] == [1]  # sentence 2 carries none of the answer


def test_a_figure_or_word_the_sentences_do_not_hold_is_rejected():
    for answer, missing in (("500", "500"), ("430 deserters", "deserters"), ("four hundred and thirty", "hundred")):
        verdict = verify(ModelReply((1,), answer), NUMBERED, PASSAGES, SURRENDER_Q, 0.5)
        assert not verdict.accepted and missing in verdict.reason


def test_figures_compare_without_thousands_separators():
    text = "Japan has the fourth largest number of registered players (125,508) in the world."
    passages = [passage(text)]
    numbered = number_sentences(passages)
    question = "How many registered rugby players does Japan have?"
    for answer in ("125,508", "125508", "125, 508"):
        assert verify(ModelReply((1,), answer), numbered, passages, question, 0.5).accepted


def test_an_answer_that_adds_nothing_to_the_question_is_rejected():
    verdict = verify(ModelReply((1,), "Ukrainian soldiers surrendered"), NUMBERED, PASSAGES, SURRENDER_Q, 0.5)
    assert not verdict.accepted and "adds nothing" in verdict.reason


def test_an_answer_from_articles_that_hold_little_of_the_question_is_rejected():
    question = "How many goals did Arsenal score against Southampton at Highbury?"
    verdict = verify(ModelReply((3,), "eight"), NUMBERED, PASSAGES, question, 0.5)
    assert not verdict.accepted and verdict.question_share < 0.5
    assert verify(ModelReply((3,), "eight"), NUMBERED, PASSAGES, question, 0.0).accepted


def test_the_title_counts_toward_the_question_share():
    question = "How many assaults were repelled?"
    verdict = verify(ModelReply((3,), "eight"), NUMBERED, PASSAGES, question, 1.0)
    assert verdict.accepted and verdict.question_share == 1.0  # "repelled" is only in the title


def test_numbers_that_were_not_shown_are_rejected():
    verdict = verify(ModelReply((7,), "430"), NUMBERED, PASSAGES, SURRENDER_Q, 0.5)
    assert not verdict.accepted and "cites no sentence" in verdict.reason


def test_the_reply_is_read_as_soon_as_the_answer_closes():
    text = json.dumps({"sentences": [3, 1], "answer": "eight \"Russian\" assaults"}) + "\n\n"
    parser = ReplyParser()
    ready_at = next(i for i in range(len(text)) if parser.feed(text[i]))
    assert text[ready_at] == '"' and text[ready_at + 1] == "}"  # before the closing brace
    assert parser.finish() == ModelReply((3, 1), 'eight "Russian" assaults')


def test_a_declining_or_malformed_reply_declines():
    for text in ('{"sentences": [], "answer": ""}', '{"sentences": [2], "answer": "  "}', "NOT FOUND", '{"answer": "x"'):
        parser = ReplyParser()
        parser.feed(text)
        assert parser.finish().declined


def test_content_terms_stem_words_and_keep_figures_whole():
    assert content_terms("The economists' forecasts: £1.2bn, 32,000 jobs") == {"economist", "forecast", "1.2", "bn", "32000", "job"}
    assert content_terms("said the and of") == set()
