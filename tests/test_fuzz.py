"""Hostile questions through every entry point: the Python API (`Retriever.search`, `Assistant.ask`,
`Pipeline.ask` with a conversation) and the `rag` command either answer or refuse with one clear
line (`InputError` / exit code 1); nothing else is ever raised. Lone surrogates, control and
bidirectional characters, NUL bytes, huge and odd numbers, any script."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.errors import InputError
from rag.pipeline import Pipeline
from rag.serve.cli import main
from rag.types import Answer

# Text from every Unicode category, lone surrogates included, and the words the toy corpus knows.
hostile = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=60),  # surrogates and controls too
    st.lists(st.sampled_from(["cats", "revenue", "2021", "?", "\udfff", "\x00", "\u202e", "\n", " ", "é", "猫"]),
             max_size=12).map("".join),
    st.builds(lambda a, b: f"{a} {b}", st.sampled_from(["When did", "How many", "What about", "And in"]),
              st.text(max_size=30)),
)
odd_k = st.one_of(st.none(), st.integers(-5, 60), st.floats(allow_nan=True, allow_infinity=True),
                  st.sampled_from(["3", "x", "", "5.0", "1e9"]))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def pipeline(toy_docs, tmp_path, fake_embedder):
    return Pipeline.open(tmp_path / "index", toy_docs, embedder=fake_embedder, min_relevance=0.3)


@FUZZ
@given(question=hostile, k=odd_k, mode=st.sampled_from([None, "hybrid", "dense", "bm25", "HYBRID", "x"]))
def test_retriever_search_answers_or_refuses(pipeline, question, k, mode):
    try:
        passages = pipeline.retriever.search(question, k=k, mode=mode)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert all(p.text for p in passages)


@FUZZ
@given(question=hostile, history=st.lists(st.tuples(hostile, hostile), max_size=3),
       doc=st.sampled_from([None, "", "cat.txt", "cat", "All documents", "unicorn.txt", "\udfff"]),
       year=st.sampled_from([None, 2021, 1999, "2022", "x"]))
def test_assistant_and_pipeline_answer_or_refuse(pipeline, question, history, doc, year):
    for ask in (lambda: pipeline.assistant.ask(question, history, doc=doc, year=year),
                lambda: pipeline.ask(question, history, doc=doc, year=year)):
        try:
            answer = ask()
        except InputError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            assert isinstance(answer, Answer) and answer.text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=hostile.filter(lambda q: "\x00" not in q and not q.startswith("-")))
def test_cli_answers_or_prints_one_error_line(toy_index, capsys, fake_model, question):
    code = main(["ask", question, "--index", str(toy_index)])
    out, err = capsys.readouterr()
    assert code in (0, 1)
    if code == 1:
        assert err.count("\n") == 1 and err.startswith("rag: error: ")
    else:
        assert out.strip()
