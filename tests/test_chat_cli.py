"""`rag chat` with scripted input: in-process over the fake LLM, and --url over HTTP."""

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from rag.cli import Context, cli
from tests.conftest import DOC_A, DOC_B
from tests.fake_llm import NOT_FOUND_REPLY, InterruptMidStream, cite, cited_reply

SURRENDER_QUOTE = "asserting that 430 Ukrainian soldiers had surrendered"
ASSAULT_QUOTE = "Ukrainian troops had fought off eight Russian assaults"



def chat(service, script: str, *args: str):
    context = Context(service.settings, service=service)
    return CliRunner().invoke(cli.commands["chat"], list(args), input=script, obj=context, catch_exceptions=False)


def test_scripted_conversation_with_follow_up_and_every_command(answering, fake_llm):
    fake_llm.script(
        cite(SURRENDER_QUOTE, "430 Ukrainian soldiers surrendered."),
        json.dumps({"question": "How many Russian assaults did Ukrainian troops fight off?"}),
        cite(ASSAULT_QUOTE, "Ukrainian troops fought off eight Russian assaults."),
    )
    script = "\n".join([
        "How many Ukrainian soldiers surrendered?",
        "/sources",
        "And how many assaults did they fight off?",
        "/reset",
        "/help",
        "/bogus",
        "/quit",
        "never read",
    ]) + "\n"
    result = chat(answering, script)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "430 Ukrainian soldiers surrendered [1]."
    assert lines[1].startswith(f"  [1] {DOC_A} [") and "Kursk" in lines[1]  # id, offsets, title
    assert lines[2].startswith("      “") and "430 Ukrainian soldiers" in lines[2]
    assert lines[3] == "question searched: How many Ukrainian soldiers surrendered?"
    assert lines[4].startswith("1. ") and len([l for l in lines if l[:2] in {f"{n}." for n in range(1, 6)}]) == 5
    follow_up = lines.index("Ukrainian troops fought off eight Russian assaults [1].")
    assert lines[follow_up + 1].startswith(f"  [1] {DOC_B} [")
    assert "(conversation cleared)" in lines and "commands:" in lines
    assert "unknown command /bogus; /help lists them" in lines
    assert "never read" not in result.output
    # The follow-up was rewritten with the first exchange in view.
    rewrite = fake_llm.requests[1]["messages"][-1]["content"]
    assert "How many Ukrainian soldiers surrendered?" in rewrite and "430 Ukrainian soldiers surrendered [1]." in rewrite


def test_reset_forgets_the_history(answering, fake_llm):
    fake_llm.script(cite(SURRENDER_QUOTE, "430 Ukrainian soldiers surrendered."),
                    cite(ASSAULT_QUOTE, "Ukrainian troops fought off eight Russian assaults."))
    result = chat(answering, "How many soldiers surrendered?\n/reset\nHow many assaults were fought off?\n")
    assert result.exit_code == 0
    assert len(fake_llm.requests) == 2  # no rewrite request after /reset
    assert "Question: How many assaults were fought off?" in fake_llm.requests[1]["messages"][-1]["content"]


def test_end_of_input_ends_the_chat_and_errors_do_not(answering, fake_llm):
    import httpx

    fake_llm.script(httpx.ConnectError("refused"), NOT_FOUND_REPLY)
    result = chat(answering, "How many soldiers surrendered?\nWhat is the capital of France?")  # no newline, then EOF
    assert result.exit_code == 0
    assert "error: cannot reach the LLM" in result.output
    assert "The articles do not contain the answer to this question." in result.output


def test_ctrl_c_cancels_only_the_answer(answering, fake_llm):
    fake_llm.script(InterruptMidStream(cited_reply(("A statement that takes a while to write", "1"))),
                    cite(ASSAULT_QUOTE, "Ukrainian troops fought off eight Russian assaults."))
    result = chat(answering, "How many soldiers surrendered?\nHow many assaults were fought off?\n")
    assert result.exit_code == 0
    assert "[answer cancelled]" in result.output
    assert "Ukrainian troops fought off eight Russian assaults [1]." in result.output
    assert len(fake_llm.requests) == 2  # the cancelled question left no history: no rewrite


def test_chat_over_http_with_the_openai_client(live_server, fake_llm, tmp_path):
    fake_llm.script(cite(SURRENDER_QUOTE, "430 Ukrainian soldiers surrendered."))
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "unused")}
    result = subprocess.run(
        [sys.executable, "-c", "from rag.cli import main; main()", "chat", "--url", live_server],
        input="How many Ukrainian soldiers surrendered?\n/sources\n", capture_output=True, text=True,
        env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "430 Ukrainian soldiers surrendered [1]."
    assert lines[1].startswith(f"  [1] {DOC_A} [")
    assert lines[3] == "question searched: How many Ukrainian soldiers surrendered?"
    assert "Traceback" not in result.stderr
