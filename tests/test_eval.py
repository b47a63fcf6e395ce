"""The eval: question sets, the gold-evidence scorer, the judge's place, the report, and the
scorer's independence from the answer path (the LLM faked at the HTTP boundary). Corpus reuse
and the `rag eval` command: tests/test_eval_corpus.py."""

import ast
import json
from pathlib import Path

import pytest

from rag.config import Settings
from rag.documents import clean_text
from rag.errors import InvalidInputError, NotFoundError
from rag.evaluation.agreement import judge_agreement
from rag.evaluation.backends import ServiceBackend
from rag.evaluation.dataset import EvalQuestion, KeyFact, load_questions
from rag.evaluation.judge import SupportJudge
from rag.evaluation.metrics import score_question, statements_with_refs, summarise
from rag.evaluation.report import write_reports
from rag.evaluation.runner import EvalConfig, SystemResult, Threshold, failures, run_system
from rag.llm import LLM
from rag.models import Answer, Citation, Passage, Timings
from tests.conftest import REPO, SEEDS
from tests.fake_llm import BASE_URL, NOT_FOUND_REPLY, cited_reply, sentence_number

QUESTIONS = REPO / "eval" / "questions.jsonl"

# Hand-written articles (not the seeds): a report, a byte-identical copy of it under another id,
# and a second report of the same figure in other words.
HARBOUR = ("The harbour board met on Monday. It said 412 boats were moored in the bay, a record for "
           "March.\n\nThe mayor called the figure “a sign of recovery.” Fishing crews plan a festival in June.")
OTHER = "Officials counted 412 boats at anchor in the bay this week. The regatta was cancelled."
TEXTS = {"harbour": HARBOUR, "harbour-copy": HARBOUR, "other": OTHER}
BOATS = EvalQuestion.model_validate({
    "id": "h1", "category": "single", "question": "How many boats were moored in the bay?", "answerable": True,
    "reference_answer": "412.", "key_facts": [{"fact": "412", "variants": ["412"]}],
    "evidence": [{"fact": "412", "document_id": "harbour", "text": "412 boats were moored in the bay"}],
})
REGATTA = EvalQuestion.model_validate({
    "id": "h2", "category": "unanswerable", "question": "Who won the regatta?", "answerable": False,
    "reference_answer": "The articles do not say.", "key_facts": [], "evidence": [],
})
FACT_SENTENCE = "It said 412 boats were moored in the bay, a record for March."
OTHER_SENTENCE = "The harbour board met on Monday."


def read_text(document_id: str) -> str:
    if document_id not in TEXTS:
        raise NotFoundError(f"no document with id {document_id!r}")
    return TEXTS[document_id]


def cite(ref: int, document_id: str, quote: str) -> Citation:
    start = TEXTS[document_id].find(quote)
    return Citation(ref=ref, document_id=document_id, title="", chunk_id="c", quote=quote,
                    start=max(start, 0), end=max(start, 0) + len(quote))


def answer(text: str, *citations: Citation, abstained: bool = False, passages=()) -> Answer:
    return Answer(answer=text, abstained=abstained, citations=list(citations), passages=list(passages),
                  model="m", timings=Timings(retrieve_ms=0, generate_ms=0, total_ms=0))


def score(question, ans, judge=None):
    return score_question(question, ans, 1.0, read_text, judge, k=5)


def judge_reply(supported: bool) -> str:
    return json.dumps({"supported": supported})


@pytest.fixture
def judge(fake_llm, tmp_path):
    settings = Settings(data_dir=tmp_path / "judge", llm_base_url=BASE_URL, llm_model="fake", llm_max_retries=0)
    llm = LLM(settings, http_client=fake_llm.client())
    yield SupportJudge(llm)
    llm.close()


# --- the question set ------------------------------------------------------------------------

def seed_texts() -> dict[str, str]:
    return {p.stem: clean_text(p.read_text()).text for p in SEEDS.glob("*.txt")}


def test_the_eval_set_is_complete_and_its_evidence_verbatim():
    questions = load_questions(QUESTIONS)
    assert len(questions) >= 40
    assert {q.category for q in questions} == {"single", "both", "multi", "conflict", "unanswerable"}
    assert sum(not q.answerable for q in questions) >= 8
    assert len({q.id for q in questions}) == len(questions)
    texts = seed_texts()
    for question in questions:
        for evidence in question.evidence:
            assert evidence.text in texts[evidence.document_id], (question.id, evidence.text)
        if question.category in ("multi", "conflict"):
            assert len(question.key_facts) >= 2
        if question.category in ("both", "conflict"):
            assert len({e.document_id for e in question.evidence}) == 2


def test_key_facts_match_whole_words_in_any_variant_case_quotes_and_inflection_aside():
    syrsky = KeyFact(fact="Syrsky", variants=["Syrsky"])
    assert syrsky.found_in("Gen. Oleksandr Syrsky said") and not syrsky.found_in("Syrskyi said")
    assert KeyFact(fact="86%", variants=["86%", "86 percent"]).found_in("over 86 PERCENT of it")
    assert not KeyFact(fact="86%", variants=["86%"]).found_in("860% more")
    terrorists = KeyFact(fact="terrorists", variants=["terrorist"])
    assert terrorists.found_in("treated as terrorists") and not terrorists.found_in("terrorism")
    assert KeyFact(fact="envoy", variants=["Trump's envoy"]).found_in("Trump’s  envoy landed")
    egyptian = KeyFact(fact="Egyptian", variants=["Egypt"])  # the fact's own wording counts too
    assert egyptian.found_in("the Egyptian man") and egyptian.found_in("from Egypt")
    assert not egyptian.found_in("Egyptology")


def test_statements_keep_their_markers():
    assert statements_with_refs("Sudzha was retaken [1]. Gen. Syrsky said 430 surrendered [2][3]. Then. [4]") == [
        ("Sudzha was retaken.", [1]), ("Gen. Syrsky said 430 surrendered.", [2, 3]), ("Then.", [4]),
    ]
    assert statements_with_refs("He said it had “completely collapsed.” [2]. Sudzha was retaken [1].") == [
        ("He said it had “completely collapsed.”", [2]), ("Sudzha was retaken.", [1]),
    ]
    quoted = "One article reports: ““We’ll wait and see. It’s up to Russia now,” Trump said” [1]. He left [2]."
    assert statements_with_refs(quoted) == [
        ("One article reports: ““We’ll wait and see. It’s up to Russia now,” Trump said”.", [1]), ("He left.", [2]),
    ]


# --- citations against gold evidence ---------------------------------------------------------

def test_a_citation_on_the_gold_span_stating_the_fact_holds():
    s = score(BOATS, answer("The board said 412 boats were moored [1].", cite(1, "harbour", FACT_SENTENCE)))
    assert s.correct and (s.citations, s.citations_held, s.facts_supported) == (1, 1, 1)
    assert s.verdicts[0].decided_by == "gold" and s.verdicts[0].basis == "gold-span"
    assert s.citations_verbatim == 1


def test_the_right_document_but_a_sentence_without_the_fact_is_rejected():
    s = score(BOATS, answer("412 boats were moored in the bay [1].", cite(1, "harbour", OTHER_SENTENCE)))
    assert s.correct and s.citations_held == 0 and s.facts_supported == 0
    assert (s.verdicts[0].decided_by, s.verdicts[0].basis) == ("gold", "fact-missing")
    assert s.citations_verbatim == 1  # verbatim, and still not held


def test_a_duplicate_document_holding_the_same_gold_text_holds():
    s = score(BOATS, answer("412 boats were moored [1].", cite(1, "harbour-copy", FACT_SENTENCE)))
    assert s.citations_held == 1 and s.facts_supported == 1 and s.verdicts[0].decided_by == "gold"


def test_gold_text_is_found_whatever_its_whitespace_and_quotes():
    question = EvalQuestion.model_validate({
        "id": "h3", "category": "single", "question": "What did the mayor call the figure?", "answerable": True,
        "reference_answer": "A sign of recovery.", "key_facts": [{"fact": "recovery", "variants": ["sign of recovery"]}],
        "evidence": [{"fact": "recovery", "document_id": "harbour", "text": 'the figure "a   sign of recovery."'}],
    })
    quote = "The mayor called the figure “a sign of recovery.”"
    s = score(question, answer("The mayor saw a sign of recovery [1].", cite(1, "harbour", quote)))
    assert s.citations_held == 1 and s.gold_missing == []


def test_gold_text_missing_from_its_document_is_reported():
    stale = BOATS.model_copy(update={"evidence": [
        BOATS.evidence[0].model_copy(update={"text": "512 boats were moored in the bay"})]})
    assert score(stale, answer("412 boats [1].", cite(1, "harbour", FACT_SENTENCE))).gold_missing == [
        "512 boats were moored in the bay"]


def test_an_abstention_on_an_unanswerable_question_is_right_and_cites_nothing():
    s = score(REGATTA, answer("NOT FOUND", abstained=True))
    summary = summarise([s])
    assert s.correct is None and s.citations == 0
    assert summary.abstention_accuracy == 1.0 and summary.unanswerable_abstained_rate == 1.0


def test_citations_of_an_answer_to_an_unanswerable_question_do_not_hold():
    s = score(REGATTA, answer("The regatta was cancelled [1].", cite(1, "other", "The regatta was cancelled.")))
    assert s.citations_held == 0 and s.verdicts[0].basis == "unanswerable"
    assert summarise([s]).unanswerable_abstained_rate == 0.0


def test_the_fact_without_a_citation_is_a_correct_answer_without_recall():
    s = score(BOATS, answer("There were 412 boats."))
    summary = summarise([s])
    assert s.correct and summary.answer_correctness == 1.0
    assert summary.citation_recall == 0.0 and s.citations == 0


def test_a_quote_not_in_its_document_is_rejected_and_not_verbatim():
    misquote = Citation(ref=1, document_id="harbour", title="", chunk_id="c", start=0, end=20,
                        quote="It said 412 boats were anchored in the bay.")
    s = score(BOATS, answer("412 boats [1].", misquote))
    assert s.citations_held == 0 and s.verdicts[0].basis == "not-in-document" and s.citations_verbatim == 0


def test_a_second_source_outside_the_gold_spans_goes_to_the_judge_counted_apart(judge, fake_llm):
    ans = answer("Officials counted 412 boats [1].", cite(1, "other", "Officials counted 412 boats at anchor in the bay this week."))
    undecided = score(BOATS, ans)
    assert undecided.citations_held == 0 and undecided.verdicts[0].decided_by == "undecided"
    fake_llm.script(judge_reply(True))
    judged = score(BOATS, ans, judge)
    assert judged.citations_held == 1 and judged.facts_supported == 1
    summary = summarise([judged])
    assert (summary.held_by_judge, summary.held_by_gold, summary.judge_decided_rate) == (1, 0, 1.0)
    assert "Officials counted 412 boats at anchor" in fake_llm.requests[0]["messages"][-1]["content"]


def test_a_verbatim_quote_is_not_accepted_for_its_shape(judge, fake_llm):
    """A statement that only quotes a sentence outside the gold spans, stating no key fact, is
    for the judge, not accepted because its words are the document's."""
    quote = "Fishing crews plan a festival in June."
    fake_llm.script(judge_reply(False))
    s = score(BOATS, answer(f"One article reports: “{quote.rstrip('.')}” [1].", cite(1, "harbour", quote)), judge)
    assert s.citations_verbatim == 1 and s.citations_held == 0
    assert (s.verdicts[0].decided_by, s.verdicts[0].basis) == ("judge", "no-key-fact")
    assert len(fake_llm.requests) == 1


def test_judge_agreement_is_measured_on_citations_gold_decided(judge, fake_llm):
    held = score(BOATS, answer("412 boats were moored [1].", cite(1, "harbour", FACT_SENTENCE)))
    rejected = score(BOATS, answer("412 boats were moored [1].", cite(1, "harbour", OTHER_SENTENCE)))
    off_page = score(REGATTA, answer("The regatta was cancelled [1].", cite(1, "other", "The regatta was cancelled.")))
    fake_llm.script(judge_reply(True), judge_reply(True))
    agreement = judge_agreement(judge, held.verdicts + rejected.verdicts + off_page.verdicts, sample=10)
    assert agreement.sampled == 2 and len(fake_llm.requests) == 2  # the unanswerable one is left out
    assert agreement.agreement == 0.5
    assert (agreement.judge_accepted_held, agreement.gold_held) == (1, 1)
    assert (agreement.judge_accepted_rejected, agreement.gold_rejected) == (1, 1)
    assert [d.quote for d in agreement.disagreements] == [OTHER_SENTENCE]
    assert judge_agreement(judge, held.verdicts + rejected.verdicts, sample=1).sampled == 1


def test_retrieval_is_ranked_against_gold_spans_and_gold_documents():
    def passage(document_id, start, end):
        return Passage(document_id=document_id, title="", chunk_id="c", text=TEXTS[document_id][start:end],
                       start=start, end=end, score=1.0)

    first_sentence = passage("harbour", 0, len(OTHER_SENTENCE))
    copy_with_fact = passage("harbour-copy", 0, 100)
    s = score(BOATS, answer("", abstained=True, passages=[passage("other", 0, 30), first_sentence, copy_with_fact]))
    assert (s.retrieval_rank, s.retrieval_document_rank) == (3, 2)
    summary = summarise([s])
    assert summary.retrieval_hit_at_k == 1.0 and summary.retrieval_mrr == round(1 / 3, 4)


def test_run_through_the_service_with_the_seeds(answering, fake_llm):
    question = load_questions(QUESTIONS)[1]  # 430 surrendered
    fake_llm.script(lambda r: cited_reply(("430 Ukrainian soldiers surrendered", sentence_number(r, "430"))))
    result = run_system(ServiceBackend(answering), [question], None, k=5)
    s = result.questions[0]
    assert s.correct and s.citations_held == 1 and s.facts_supported == 1
    assert s.retrieval_rank is not None and s.retrieval_rank <= 5
    assert result.summary.verbatim_quote_rate == 1.0 and result.summary.citation_recall == 1.0


def test_abstentions_and_thresholds(answering, fake_llm):
    questions = load_questions(QUESTIONS)
    unanswerable = next(q for q in questions if not q.answerable)
    fake_llm.script(NOT_FOUND_REPLY, NOT_FOUND_REPLY)
    result = run_system(ServiceBackend(answering), [questions[0], unanswerable], None, k=5)
    assert result.summary.abstention_accuracy == 0.5 and result.summary.false_abstention_rate == 1.0
    assert result.summary.answer_correctness == 0.0 and result.summary.unanswerable_abstained_rate == 1.0
    config = EvalConfig(thresholds={"false_abstention_rate": Threshold(max=0.1), "abstention_accuracy": Threshold(min=0.4)})
    assert failures(result, config) == ["false_abstention_rate = 1.000 > 0.1"]


def test_the_report_puts_systems_side_by_side_with_the_judge_agreement(judge, fake_llm, tmp_path):
    held = score(BOATS, answer("412 boats were moored [1].", cite(1, "harbour", FACT_SENTENCE)))
    rejected = score(BOATS, answer("412 boats were moored [1].", cite(1, "harbour", OTHER_SENTENCE)))
    fake_llm.script(judge_reply(True), judge_reply(False))
    ours = SystemResult(system="ours", summary=summarise([held]), questions=[held],
                        judge_agreement=judge_agreement(judge, held.verdicts, 5))
    theirs = SystemResult(system="theirs", summary=summarise([rejected]), questions=[rejected],
                          judge_agreement=judge_agreement(judge, rejected.verdicts, 5))
    json_path, md_path = write_reports([ours, theirs], EvalConfig(), tmp_path, questions_path=Path("set.jsonl"))
    report = md_path.read_text()
    assert "| citation precision | 1.00 | 0.00 |" in report
    assert "| h1 | single | answered ✓ · facts 1/1 · cites 1/1" in report and "cites 0/1" in report
    assert "ours: judge agreement with gold: 1.00 on 1 citations" in report
    assert "the quote holds none of the stated facts: 412" in report
    systems = json.loads(json_path.read_text())["systems"]
    assert [s["system"] for s in systems] == ["ours", "theirs"]
    assert systems[1]["questions"][0]["verdicts"][0]["basis"] == "fact-missing"


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


# --- independence from the answer path -------------------------------------------------------

ANSWER_PATH = ("rag.answer", "rag.questions")
SCORER = ["dataset", "gold", "grading", "judge", "metrics", "agreement"]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def is_answer_path(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") or name.startswith(m + "_") for m in ANSWER_PATH)


def module_path(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def test_the_eval_imports_nothing_of_the_answer_path():
    files = sorted((REPO / "rag" / "evaluation").glob("*.py")) + sorted((REPO / "eval").glob("*.py"))
    files.append(REPO / "rag" / "text.py")
    direct = {f.name: sorted(n for n in imported_modules(f) if is_answer_path(n)) for f in files}
    assert all(not names for names in direct.values()), direct
    # The scorer and the judge not even through the modules they stand on.
    seen, todo = set(), [f"rag.evaluation.{name}" for name in SCORER]
    while todo:
        name = todo.pop()
        path = module_path(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        todo += [n for n in imported_modules(path) if n.startswith("rag.")]
    assert not [name for name in seen if is_answer_path(name)], sorted(seen)
