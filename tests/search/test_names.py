"""rag.search.names: the names a question asks about and whether a text mentions them."""

from __future__ import annotations

import pytest

from rag.search.names import (PassageNames, entities, fold, mention_share, mentions, names, needed_names,
                              prefix_share, stem_prefix, words)
from rag.types import Passage


@pytest.mark.parametrize("text, expected", [
    ("When was the European Peace Facility set up?", ["European Peace Facility"]),
    ("What did Prime Minister Kishida say in Paris?", ["Prime Minister Kishida", "Paris"]),
    ("How many members does the Council of Europe have?", ["Council of Europe"]),
    ("what about fish?", []),
])
def test_entities_are_runs_of_capitalised_words_without_question_words(text, expected):
    assert entities(text) == expected


def test_names_keep_the_words_a_mention_must_match():
    # titles, months and short words are not required; demonyms and acronyms are not names to check
    assert names("What did Prime Minister Kishida say in March?") == [("Prime Minister Kishida", ["kishida"])]
    assert names("What did the Danish envoy and the SDF do?") == []
    assert needed_names("Where is the Asia-Europe Meeting held?") == [["asia", "europe", "meeting"]]


def test_words_fold_case_and_diacritics():
    assert fold("Kücükdeveci") == "Kucukdeveci"
    assert words("Kücükdeveci's RULING, 2019") == ["kucukdeveci", "s", "ruling", "2019"]


@pytest.mark.parametrize("word, prefix", [("parliaments", "parli"), ("danish", "dan"), ("japanese", "jap")])
def test_stem_prefix(word, prefix):
    assert stem_prefix(word) == prefix


def test_mentions_by_prefix_and_shares():
    context = words("The Parliament of Japan met in Tokyo")
    assert mentions(["parliaments"], context) and mentions(["japanese"], context)
    assert not mentions(["sweden"], context)
    needed = [["parliaments"], ["sweden"]]
    assert mention_share(context, needed) == 0.5 and mention_share(context, []) == 1.0
    prefixes = {t[:j] for t in context for j in range(1, 6)}
    assert prefix_share(prefixes, needed) == mention_share(context, needed)


def test_passage_names_cache_and_other_names():
    passages = [Passage("a.txt", 0, 20, "Finland joined NATO.", heading=("Europe",)),
                Passage("b.txt", 0, 12, "Fish swim.", heading=("Nature",))]
    found = PassageNames(passages, lambda text: text + (" Finnish" if "Finland" in text else ""))
    assert found.share(0, [["finnish"]]) == 1.0  # through the added other name
    assert found.share(1, [["finnish"]]) == 0.0
    assert found.share(1, []) == 1.0
    outside = Passage("c.txt", 0, 15, "Europe and NATO")
    assert found.share(None, [["nato"], ["finland"]], outside) == 0.5  # a passage not in the index
