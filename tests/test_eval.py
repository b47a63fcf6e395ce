"""The eval set, the scorer and `rag eval` (the LLM faked at the HTTP boundary)."""

import json

import pytest
from click.testing import CliRunner

from rag.cli import cli
from rag.documents import clean_text
from rag.errors import InvalidInputError, NotFoundError
from rag.evaluation.backends import ServiceBackend
from rag.evaluation.dataset import KeyFact, load_questions
from rag.evaluation.judge import SupportJudge
from rag.evaluation.judge_check import JudgePair, check_judge, load_pairs
from rag.evaluation.metrics import score_question, statements_with_refs
from rag.evaluation.report import write_reports
from rag.models import Answer, Citation, Timings
from rag.evaluation.runner import EvalConfig, Threshold, failures, run_system
from tests.conftest import DOC_A, REPO, SEEDS
from tests.fake_llm import NOT_FOUND_REPLY, cited_reply, sentence_number

QUESTIONS = REPO / "eval" / "questions.jsonl"
JUDGE_PAIRS = REPO / "eval" / "judge_pairs.jsonl"
VANCE = ("Vice President JD Vance, while speaking in the Oval Office, mentioned that discussions are occurring "
         "“over the phone and in person with some of our representatives in the coming days.”")


def seed_texts() -> dict[str, str]:
    return {p.stem: clean_text(p.read_text()).text for p in SEEDS.glob("*.txt")}


def test_the_eval_set_is_complete_and_its_evidence_verbatim():
    questions = load_questions(QUESTIONS)
    assert len(questions) >= 40
    categories = {q.category for q in questions}
    assert categories == {"single", "both", "multi", "conflict", "unanswerable"}
    assert sum(not q.answerable for q in questions) >= 8
    assert len({q.id for q in questions}) == len(questions)
    texts = seed_texts()
    for question in questions:
        for evidence in question.evidence:
            assert evidence.text in texts[evidence.document_id], (question.id, evidence.text)
    for question in questions:
        if question.category in ("multi", "conflict"):
            assert len(question.key_facts) >= 2
        if question.category in ("both", "conflict"):
            assert len({e.document_id for e in question.evidence}) == 2


def test_key_facts_match_whole_words_in_any_variant():
    syrsky = KeyFact(fact="Syrsky", variants=["Syrsky"])
    assert syrsky.found_in("Gen. Oleksandr Syrsky said") and not syrsky.found_in("Syrskyi said")
    assert KeyFact(fact="86%", variants=["86%", "86 percent"]).found_in("over 86 percent of it")
    terrorists = KeyFact(fact="terrorists", variants=["terrorist"])
    assert terrorists.found_in("treated as terrorists") and not terrorists.found_in("terrorism")


def test_statements_keep_their_markers():
    answer = "Sudzha was retaken [1]. Gen. Syrsky said 430 surrendered [2][3]. Then. [4]"
    assert statements_with_refs(answer) == [
        ("Sudzha was retaken.", [1]), ("Gen. Syrsky said 430 surrendered.", [2, 3]), ("Then.", [4]),
    ]


def test_markers_after_a_stop_inside_quotes_stay_with_their_sentence():
    answer = "He said it had “completely collapsed.” [2]. Sudzha was retaken [1]."
    assert statements_with_refs(answer) == [
        ("He said it had “completely collapsed.”", [2]), ("Sudzha was retaken.", [1]),
    ]


def test_a_quoted_sentence_of_several_sentences_is_one_statement():
    answer = "One article reports: ““We’ll wait and see. It’s up to Russia now,” Trump said” [1]. He left [2]."
    assert statements_with_refs(answer) == [
        ("One article reports: ““We’ll wait and see. It’s up to Russia now,” Trump said”.", [1]), ("He left.", [2]),
    ]


def judge_reply(supported: bool) -> str:
    return json.dumps({"supported": supported})


def test_alce_precision_and_recall(answering, fake_llm):
    """One statement, two citations. Together they support it; the first alone does not and
    is not needed (the second alone does): precision 1/2, recall 1/1."""
    question = load_questions(QUESTIONS)[1]  # 430 surrendered
    doc = answering.get_document(DOC_A).text
    quote_a = "Gerasimov stated that Kyiv’s aspirations of leveraging Kursk in negotiations had “completely collapsed.”"
    quote_b = "asserting that 430 Ukrainian soldiers had surrendered"
    citations = [
        Citation(ref=n, document_id=DOC_A, title="", chunk_id="c", quote=q, start=doc.find(q), end=doc.find(q) + len(q))
        for n, q in ((1, quote_a), (2, quote_b))
    ]
    answer = Answer(answer="430 Ukrainian soldiers surrendered [1][2].", abstained=False, citations=citations,
                    passages=[], model="m", timings=Timings(retrieve_ms=0, generate_ms=0, total_ms=0))
    # {a} lacks the statement's number, so only {a,b} and {b} reach the judge.
    fake_llm.script(judge_reply(True), judge_reply(True))
    score = score_question(question, answer, 1.0, lambda d: doc, SupportJudge(answering.llm), k=5)
    assert score.correct and score.statements == 1 and score.statements_supported == 1 and score.unsupported == []
    assert score.citations == 2 and score.citations_precise == 1 and score.citations_verbatim == 2
    assert len(fake_llm.requests) == 2  # verdicts are cached, not asked twice
    evidence = fake_llm.requests[0]["messages"][-1]["content"]
    assert quote_a in evidence and quote_b in evidence
    assert fake_llm.requests[0]["response_format"]["json_schema"]["name"] == "support_verdict"


def test_a_citation_two_statements_share_is_one_verbatim_quote(answering):
    question = load_questions(QUESTIONS)[1]
    doc = answering.get_document(DOC_A).text
    quote = "asserting that 430 Ukrainian soldiers had surrendered"
    citation = Citation(ref=1, document_id=DOC_A, title="", chunk_id="c", quote=quote,
                        start=doc.find(quote), end=doc.find(quote) + len(quote))
    answer = Answer(answer="430 soldiers surrendered [1]. They were Ukrainian [1].", abstained=False,
                    citations=[citation], passages=[], model="m",
                    timings=Timings(retrieve_ms=0, generate_ms=0, total_ms=0))
    score = score_question(question, answer, 1.0, lambda d: doc, None, k=5)
    assert (score.citations, score.quotes, score.citations_verbatim) == (2, 1, 1)


def test_a_number_missing_from_the_evidence_is_unsupported_without_asking(answering, fake_llm):
    judge = SupportJudge(answering.llm)
    assert not judge.supports(["Gerasimov said many soldiers surrendered."], "500 soldiers surrendered.")
    assert fake_llm.requests == []


def test_a_name_missing_from_the_evidence_is_unsupported_without_asking(answering, fake_llm):
    judge = SupportJudge(answering.llm)
    assert not judge.supports([VANCE], "Trump said talks were taking place over the phone and in person.")
    assert not judge.supports([VANCE], "Vance said talks were taking place in Moscow.")
    assert fake_llm.requests == []
    fake_llm.script(judge_reply(True))  # "One" opens the sentence; every name is in the evidence
    assert judge.supports([VANCE], "One article says JD Vance spoke of talks over the phone and in person.")
    assert len(fake_llm.requests) == 1


def test_the_judge_pairs_are_labelled_both_ways_with_verbatim_evidence():
    pairs = load_pairs(JUDGE_PAIRS)
    assert sum(p.supported for p in pairs) >= 20 and sum(not p.supported for p in pairs) >= 20
    assert len({(tuple(p.evidence), p.statement) for p in pairs}) == len(pairs)
    texts = seed_texts().values()
    for pair in pairs:
        for sentence in pair.evidence:
            assert any(sentence in text for text in texts), (pair.statement, sentence)


def test_check_judge_counts_what_the_judge_accepts_on_each_side(answering, fake_llm):
    pairs = [
        JudgePair(evidence=[VANCE], statement="Vance said talks were happening by phone.", supported=True, kind="paraphrase"),
        JudgePair(evidence=[VANCE], statement="Trump said talks were happening by phone.", supported=False, kind="wrong speaker"),
        JudgePair(evidence=[VANCE], statement="Vance said talks had ended.", supported=False, kind="contradiction"),
    ]
    fake_llm.script(judge_reply(True), judge_reply(True))  # the wrong speaker never reaches the model
    agreement = check_judge(SupportJudge(answering.llm), pairs)
    assert len(fake_llm.requests) == 2
    assert (agreement.pairs, agreement.agreement) == (3, 0.6667)
    assert (agreement.supported_accepted, agreement.supported_pairs) == (1, 1)
    assert (agreement.unsupported_accepted, agreement.unsupported_pairs) == (1, 2)
    assert agreement.disagreements == [pairs[2]]
    assert "accepted (contradiction): Vance said talks had ended." in agreement.describe()


def test_a_verbatim_quote_of_the_evidence_naming_an_article_is_supported_without_asking(answering, fake_llm):
    judge = SupportJudge(answering.llm)
    evidence = ["A plane carrying Steve Witkoff landed in Moscow on Thursday."]
    assert judge.supports(evidence, "Another article reports: “A plane carrying Steve Witkoff landed in Moscow on Thursday”.")
    assert not judge.supports(evidence, "Another article reports: “A plane carrying Steve Witkoff landed in Kyiv on Thursday”.")
    # As the answer renders a sentence ending in a quotation: its stop moved past the markers.
    collapsed = ["Gerasimov said the plans had “completely collapsed.”"]
    assert judge.supports(collapsed, "Another article reports: “Gerasimov said the plans had “completely collapsed””.")
    assert not judge.supports(collapsed, "Another article reports: “Gerasimov said the plans had “partly collapsed””.")
    assert fake_llm.requests == []
    fake_llm.script(judge_reply(False))  # a quote put in someone's mouth is for the judge
    assert not judge.supports(evidence, "Witkoff said: “A plane carrying Steve Witkoff landed in Moscow on Thursday”.")
    assert len(fake_llm.requests) == 1


def test_run_through_the_service(answering, fake_llm):
    question = load_questions(QUESTIONS)[1]
    quote = "asserting that 430 Ukrainian soldiers had surrendered"

    def cite(request):
        return cited_reply(("430 Ukrainian soldiers surrendered", sentence_number(request, quote)))

    fake_llm.script(cite, judge_reply(True), judge_reply(True))
    result = run_system(ServiceBackend(answering), [question], SupportJudge(answering.llm), k=5)
    score = result.questions[0]
    assert score.correct and score.statements_supported == 1 and score.citations_precise == 1
    assert score.retrieval_rank is not None and score.retrieval_rank <= 5
    assert result.summary.verbatim_quote_rate == 1.0


def test_unsupported_statement_counts_against_recall(answering, fake_llm, tmp_path):
    question = load_questions(QUESTIONS)[1]
    fake_llm.script(
        lambda r: cited_reply(("430 Ukrainian soldiers surrendered", sentence_number(r, "430"))),
        judge_reply(False), judge_reply(False),
    )
    result = run_system(ServiceBackend(answering), [question], SupportJudge(answering.llm), k=5)
    summary = result.summary
    assert summary.citation_recall == 0.0 and summary.citation_precision == 0.0
    assert summary.answer_correctness == 1.0 and summary.verbatim_quote_rate == 1.0
    assert result.questions[0].unsupported == ["430 Ukrainian soldiers surrendered."]
    _, report = write_reports([result], EvalConfig(), tmp_path)
    assert f"- {question.id}: 430 Ukrainian soldiers surrendered." in report.read_text()


def test_abstentions_and_thresholds(answering, fake_llm):
    questions = load_questions(QUESTIONS)
    unanswerable = next(q for q in questions if not q.answerable)
    answerable = questions[0]
    fake_llm.script(NOT_FOUND_REPLY, NOT_FOUND_REPLY)
    result = run_system(ServiceBackend(answering), [answerable, unanswerable], SupportJudge(answering.llm), k=5)
    assert result.summary.abstention_accuracy == 0.5
    assert result.summary.false_abstention_rate == 1.0
    assert result.summary.answer_correctness == 0.0
    config = EvalConfig(thresholds={"false_abstention_rate": Threshold(max=0.1),
                                    "abstention_accuracy": Threshold(min=0.4)})
    assert failures(result, config) == ["false_abstention_rate = 1.000 > 0.1"]


def test_rag_eval_retrieval_only_writes_reports_and_gates(tmp_path):
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path / "data"), "eval", "--retrieval-only",
            "--questions", str(QUESTIONS), "--out", str(tmp_path / "out")]
    strict = tmp_path / "strict.toml"
    strict.write_text("[thresholds]\nretrieval_hit_at_k = { min = 1.01 }\n")
    ok = runner.invoke(cli, args + ["--config", str(REPO / "eval" / "config.toml")])
    assert ok.exit_code == 0, ok.output
    assert "retrieval hit@k" in ok.output and "citation" not in ok.output
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert report[0]["summary"]["retrieval_hit_at_k"] >= 0.9
    assert (tmp_path / "out" / "eval.md").read_text().startswith("# Eval report")
    failed = runner.invoke(cli, args + ["--config", str(strict)])
    assert failed.exit_code == 3 and "below threshold: retrieval_hit_at_k" in failed.output


def test_bad_question_files_are_clear_errors(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"id": "x"}\n')
    with pytest.raises(InvalidInputError, match=r"q\.jsonl:1: "):
        load_questions(bad)
    inconsistent = dict(json.loads(QUESTIONS.read_text().splitlines()[0]), evidence=[])
    bad.write_text(json.dumps(inconsistent) + "\n")
    with pytest.raises(InvalidInputError, match="every key fact needs gold evidence"):
        load_questions(bad)
    with pytest.raises(NotFoundError, match="no such question file"):
        load_questions(tmp_path / "none.jsonl")
    bad.write_text('{"evidence": [], "statement": "x", "supported": true, "kind": "k"}\n')
    with pytest.raises(InvalidInputError, match=r"(?s)q\.jsonl:1: .*evidence"):
        load_pairs(bad)
