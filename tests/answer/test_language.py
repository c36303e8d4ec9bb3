"""rag.answer.language: named mentions with types and roles (spaCy), and the regular-expression
fallback when spaCy cannot be loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rag.answer import language


def test_without_spacy_names_are_mentions_of_unknown_type(monkeypatch):
    monkeypatch.setattr(language, "pipeline", lambda: None)
    language.mentions.cache_clear()
    try:
        found = language.mentions("How much did Germany give Ukraine in 2024?")
    finally:
        language.mentions.cache_clear()
    assert [(m.text, m.kind) for m in found] == [("Germany", "name"), ("Ukraine", "name"), ("2024", "date")]
    assert all(m.role == "" for m in found)


def test_spacy_gives_types_and_the_subject():
    if language.pipeline() is None:
        pytest.skip("spaCy and its English model are not installed")
    found = language.mentions("How much total support has the UK given Ukraine?")
    assert [(m.text, m.kind) for m in found] == [("UK", "place"), ("Ukraine", "place")]
    assert found[0].role == "subject"
    assert language.kind_of("Motegi") == "person"


def test_the_pipeline_loads_once():
    assert language.pipeline() is language.pipeline()


def run_python(code: str) -> str:
    """`code` run in a fresh interpreter (nothing loaded yet); its stdout, once it exits 0."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_spacy_is_loaded_without_torch_and_torch_still_imports_after():
    code = ("import sys; from rag.answer import language; nlp = language.pipeline(); "
            "assert nlp is not None, 'no spaCy'; assert 'torch' not in sys.modules, 'torch was imported'; "
            "assert language.mentions('Kishida met Biden in Tokyo.')[0].kind == 'person'; "
            "import torch; print(torch.tensor([1, 2]).sum().item())")
    assert run_python(code) == "3"


def test_another_thread_may_import_torch_while_spacy_is_imported():
    code = ("import sys, threading, time; from rag.answer import language; errors = []\n"
            "def other():\n"
            "    time.sleep(0.05)\n"
            "    try:\n"
            "        import torch; torch.zeros(1)\n"
            "    except Exception as exc:\n"
            "        errors.append(repr(exc))\n"
            "t = threading.Thread(target=other); t.start(); nlp = language.pipeline(); t.join()\n"
            "assert nlp is not None, 'no spaCy'; assert not errors, errors; print('ok')")
    assert run_python(code) == "ok"
