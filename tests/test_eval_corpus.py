"""`rag eval` over a corpus folder: ingested once into a store of its own and reused; the
command end to end (retrieval only: no LLM; a full run with the LLM faked at the HTTP edge);
the baseline over the same store. Real Chroma in
temp dirs, the real embedder."""

import json
from pathlib import Path

from chromadb.api.client import SharedSystemClient
from click.testing import CliRunner

from rag.cli import cli
from rag.config import Settings
from rag.evaluation.baseline import CitationQEBackend
from rag.evaluation.corpus import store_dir
from rag.evaluation.dataset import load_questions
from rag.evaluation.runner import run_retrieval
from rag.evaluation.session import open_store, run_eval
from rag.llm import LLM
from rag.service import RagService
from rag.store import open_store as open_chroma_store
from tests.conftest import REPO, SEEDS, build_service
from tests.fake_llm import BASE_URL, NOT_FOUND_REPLY, cited_reply, sentence_number
from tests.test_eval import BOATS, HARBOUR, OTHER, QUESTIONS, REGATTA


def write_corpus(root: Path) -> Path:
    """Three articles in two section folders."""
    (root / "world").mkdir(parents=True)
    (root / "sport").mkdir()
    (root / "world" / "harbour.txt").write_text("Harbour record\n\n" + HARBOUR)
    (root / "world" / "festival.txt").write_text("Festival plans\n\nFishing crews will hold a festival in June by the pier.")
    (root / "sport" / "regatta.txt").write_text("Regatta off\n\n" + OTHER)
    return root


def test_a_corpus_is_ingested_once_and_reused(tmp_path, embedder):
    corpus = write_corpus(tmp_path / "news")
    settings = Settings(data_dir=tmp_path / "data", seed_dir=SEEDS)

    def opened():
        service, state = open_store(settings, corpus, tmp_path / "scratch", needs_llm=False,
                                    build=lambda s: build_service(s, embedder))
        counts = service.store.counts()
        dates = [d.ingested_at for d in service.list_documents()]
        service.close()
        SharedSystemClient.clear_system_cache()
        return state, counts, dates

    first, counts, dates = opened()
    assert not first.reused and first.ingest == {"created": 3} and counts[0] == 3 and first.chunks == counts[1]
    second, counts_again, dates_again = opened()
    assert second.reused and (counts_again, dates_again) == (counts, dates)
    before = store_dir(settings, corpus)
    assert before.parent == tmp_path / "data" / "eval-corpora" and before.name.startswith("news-")
    (corpus / "sport" / "regatta.txt").write_text("Regatta on\n\nThe regatta goes ahead.")
    assert store_dir(settings, corpus) != before  # a changed corpus gets a store of its own


def test_rag_eval_over_a_corpus_folder_reuses_its_store(tmp_path):
    corpus = write_corpus(tmp_path / "news")
    question_set = tmp_path / "set.jsonl"
    question_set.write_text(BOATS.model_dump_json() + "\n" + REGATTA.model_dump_json() + "\n")
    args = ["--data-dir", str(tmp_path / "data"), "eval", "--retrieval-only", "--set", str(question_set),
            "--corpus", str(corpus), "--out", str(tmp_path / "out"), "--config", str(REPO / "eval" / "config.toml")]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "ingested, 3 documents" in first.output
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    assert "reused, 3 documents" in second.output
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert report["corpus"]["reused"] and report["systems"][0]["summary"]["retrieval_hit_at_k"] == 1.0
    SharedSystemClient.clear_system_cache()


def test_the_baseline_retrieves_over_the_same_store_and_is_scored_alike(answering):
    question = load_questions(QUESTIONS)[1]
    result = run_retrieval(CitationQEBackend(answering), [question], k=5)
    assert result.questions[0].retrieval_document_rank is not None


def test_rag_eval_retrieval_only_writes_reports_and_gates(tmp_path):
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path / "data"), "eval", "--retrieval-only",
            "--questions", str(QUESTIONS), "--out", str(tmp_path / "out")]  # --questions: the old name of --set
    strict = tmp_path / "strict.toml"
    strict.write_text("[thresholds]\nretrieval_hit_at_k = { min = 1.01 }\n")
    ok = runner.invoke(cli, args + ["--config", str(REPO / "eval" / "config.toml")])
    assert ok.exit_code == 0, ok.output
    assert "retrieval hit@k" in ok.output and "citation" not in ok.output
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert report["systems"][0]["summary"]["retrieval_hit_at_k"] >= 0.9
    assert (tmp_path / "out" / "eval.md").read_text().startswith("# Eval report")
    failed = runner.invoke(cli, args + ["--config", str(strict)])
    assert failed.exit_code == 3 and "below threshold: retrieval_hit_at_k" in failed.output


def test_a_full_run_over_a_corpus_scores_by_gold_and_reports_the_judge_agreement(tmp_path, embedder, fake_llm):
    corpus = write_corpus(tmp_path / "news")
    question_set = tmp_path / "set.jsonl"
    question_set.write_text(BOATS.model_dump_json() + "\n" + REGATTA.model_dump_json() + "\n")
    settings = Settings(data_dir=tmp_path / "data", seed_dir=SEEDS, llm_base_url=BASE_URL,
                        llm_model="fake", llm_max_retries=0)

    def build(s: Settings) -> RagService:
        return RagService(s, open_chroma_store(s), embedder, LLM(s, http_client=fake_llm.client()))

    fake_llm.script(lambda r: cited_reply(("412 boats were moored in the bay", sentence_number(r, "412 boats were moored"))),
                    NOT_FOUND_REPLY, json.dumps({"supported": True}))
    table, missed = run_eval(settings, question_set, REPO / "eval" / "config.toml", tmp_path / "out",
                             url=None, baseline=None, retrieval_only=False, limit=None,
                             progress=lambda line: None, corpus=corpus, build=build)
    SharedSystemClient.clear_system_cache()
    assert "| citation precision | 1.00 |" in table and "| citation recall | 1.00 |" in table
    assert "judge agreement with gold: 1.00 on 1 citations" in table
    summary = json.loads((tmp_path / "out" / "eval.json").read_text())["systems"][0]["summary"]
    assert (summary["held_by_gold"], summary["answer_correctness"], summary["abstention_accuracy"]) == (1, 1.0, 1.0)
    assert len(fake_llm.requests) == 3
