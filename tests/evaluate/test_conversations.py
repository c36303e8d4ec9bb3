"""rag.evaluate.conversations: the conversation file, the rewrite match, the per-turn figures, and
`rag eval --conversations` over the toy corpus (fake model). The seed set's own figures are in
tests/answer/test_e2e_conversations.py."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, SEEDS
from rag.errors import RagError
from rag.evaluate.conversations import (Conversation, Turn, conversation_metrics, load_conversations,
                                        same_question)
from rag.serve.cli import main
from rag.types import Answer


@pytest.mark.parametrize("rewrite, gold, same", [
    ("How much total support has Germany given Ukraine?", "How much total support has Germany given Ukraine?", True),
    ("How much support has Germany given to Ukraine?", "How much total support has Germany given Ukraine?", True),
    ("When did it enter into force (Japan-Germany ACSA)?", "When did the Japan-Germany ACSA enter into force?", True),
    # the object replaced instead of the actor: the names differ
    ("How much total support has the UK given Germany?", "How much total support has Germany given Ukraine?", False),
    ("How many member countries did NATO have in 2021?", "How many member countries did NATO have in 2025?", False),
    ("France?", "How much total support has France given Ukraine?", False),  # the question lost
    ("Who succeeded him?", "Who succeeded Morikawa Toru?", False),  # the pronoun not resolved
])
def test_same_question(rewrite, gold, same):
    assert same_question(rewrite, gold) is same


def _write(tmp_path, rows):
    path = tmp_path / "conv.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


TOY_CONVERSATION = {"id": "c1", "turns": [
    {"question": "What do cats chase?", "standalone": "What do cats chase?", "answers": ["mice"],
     "sources": [{"doc": "cat.txt", "quote": "chase mice around the kitchen"}]},
    {"question": "And dogs?", "standalone": ["What do dogs chase?", "What do dogs fetch?"], "answers": [],
     "sources": []}]}


def test_load_locates_quotes_and_keeps_alternative_wordings(tmp_path, toy_docs):
    [conv] = load_conversations(_write(tmp_path, [TOY_CONVERSATION]), toy_docs)
    first, second = conv.turns
    text = (toy_docs / "cat.txt").read_text(encoding="utf-8")
    assert [text[g.start:g.end] for g in first.gold] == ["chase mice around the kitchen"]
    assert second.standalone == ("What do dogs chase?", "What do dogs fetch?") and second.answers == ()


@pytest.mark.parametrize("row, message", [
    ({"id": "x"}, "not a conversation object"),
    ({"turns": []}, "at least one turn"),
    ({"turns": [{"question": "q", "standalone": "q", "answers": ["a"],
                 "sources": [{"doc": "cat.txt", "quote": "no such words"}]}]}, "not found in 'cat.txt'"),
])
def test_bad_files_name_the_line(tmp_path, toy_docs, row, message):
    with pytest.raises(RagError, match=f"conv.jsonl:1: .*{message}"):
        load_conversations(_write(tmp_path, [row]), toy_docs)


def test_metrics_split_first_turns_and_follow_ups():
    conv = Conversation("c", (Turn("Q1?", ("Who founded ASEF?",), ("Morikawa",), ()),
                              Turn("And when?", ("When was ASEF founded?",), ("1997",), ()),
                              Turn("Who leads it?", ("Who leads ASEF?",), (), ())))
    seen_histories = []
    answers = {"Q1?": Answer.cited("Who founded ASEF?", "Mr. Morikawa did [1]", ()),
               "And when?": Answer.cited("When was ASEF founded?", "in 1996 [1]", ()),
               "Who leads it?": Answer.abstain("Who leads it?", reason="not said")}

    def ask(question, history):
        seen_histories.append(list(history))
        return answers[question]

    m = conversation_metrics([conv], ask)
    assert seen_histories == [[], [("Q1?", "Mr. Morikawa did [1]")],
                              [("Q1?", "Mr. Morikawa did [1]"), ("And when?", "in 1996 [1]")]]
    assert m["first_turn_accuracy"] == 1.0
    assert m["followup_accuracy"] == 0.5  # 1996 is wrong; the abstention on the unanswerable turn is right
    assert m["rewrite_accuracy"] == 0.5  # "Who leads it?" kept its pronoun
    assert m["abstention_precision"] == 1.0 and m["abstention_recall"] == 1.0
    assert [r["correct"] for r in m["rows"]] == [True, False, True]


def test_the_seed_conversation_file_loads():
    convs = load_conversations(ROOT / "eval" / "conversations.jsonl", SEEDS)
    assert len(convs) >= 30 and all(2 <= len(c.turns) <= 4 for c in convs)
    assert sum(1 for c in convs for t in c.turns if not t.answers) >= 8
    answerable = [t for c in convs for t in c.turns if t.answers]
    assert all(t.gold for t in answerable)


def test_cli_eval_conversations(tmp_path, toy_docs, capsys, fake_model):
    path = _write(tmp_path, [TOY_CONVERSATION])
    code = main(["eval", "--conversations", str(path), "--docs", str(toy_docs), "--index", str(tmp_path / "index"),
                 "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    figures = report["configs"]["hybrid"]
    assert figures["n_turns"] == 2 and figures["first_turn_accuracy"] == 1.0
    assert [r["turn"] for r in figures["rows"]] == [1, 2]
    assert main(["eval", "--conversations", str(path), "--docs", str(toy_docs), "--index",
                 str(tmp_path / "index")]) == 0
    table = capsys.readouterr().out
    assert "1 conversations, 2 turns (1 follow-ups" in table and "rewrite_accuracy" in table
