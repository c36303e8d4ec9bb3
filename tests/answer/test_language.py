"""rag.answer.language: named mentions with types and roles (spaCy when installed), and the regular-
expression fallback without it."""

from __future__ import annotations

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
        pytest.skip("spaCy and its English model are not installed (pip install -e '.[nlp]')")
    found = language.mentions("How much total support has the UK given Ukraine?")
    assert [(m.text, m.kind) for m in found] == [("UK", "place"), ("Ukraine", "place")]
    assert found[0].role == "subject"
    assert language.kind_of("Motegi") == "person"


def test_the_pipeline_loads_once():
    assert language.pipeline() is language.pipeline()
