"""rag.query: what every front end's question and settings go through before any index work.
(Moved here from the old tests of rag/ui.py; the limits now come from rag.settings.)"""

from __future__ import annotations

import pytest

from rag.errors import InputError, RagError
from rag.query import (
    NO_FILTER, clean_doc, clean_history, clean_k, clean_mode, clean_question, clean_text, clean_year, make_query,
)
from rag.settings import DEFAULT_K, DEFAULT_MODE, MAX_HISTORY_TURNS, MAX_K, MAX_QUESTION_CHARS, MODES
from rag.types import Query

DOCS = ("a.txt", "b.md", "sub/report_2021.txt")


# -- questions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("  When was   it set up? ", "When was it set up?"),
    ("What\x00 about\x07 NATO?\x1b[31m", "What about NATO?[31m"),
    ("tab\tnew\nline\r\nend", "tab new line end"),
    ("lone \ud800surrogate \udfff here", "lone surrogate here"),
    ("bidi \u202eevil\u202c text", "bidi evil text"),
    ("isolate \u2066x\u2069 and \u200fmark", "isolate x and mark"),
    ("cafe\u0301", "café"),  # NFC
    ("<script>alert(1)</script> What about NATO?", "<script>alert(1)</script> What about NATO?"),
])
def test_clean_question_strips_control_characters_and_surrogates(raw, expected):
    assert clean_question(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", None, "\x00\x01\x02", "\ud800\udc00\ud801", "\u202e", "\n\t\r"])
def test_empty_question_is_one_lower_case_line(raw):
    with pytest.raises(InputError, match="^the question is empty$"):
        clean_question(raw)


@pytest.mark.parametrize("raw", ["?!?...", "???", " <> ", "— … —", "___"])
def test_question_without_words_is_refused_and_quoted(raw):
    with pytest.raises(InputError, match="has no words to search for") as info:
        clean_question(raw)
    assert repr(" ".join(raw.split())) in str(info.value)


def test_question_with_a_digit_or_any_script_has_words():
    assert clean_question("1999?") == "1999?"
    assert clean_question("日本?") == "日本?"
    assert clean_question("?!? x") == "?!? x"


def test_the_no_words_message_quotes_at_most_80_characters():
    with pytest.raises(InputError) as info:
        clean_question("?" * 500)
    assert str(info.value) == f"the question {'?' * 80!r} has no words to search for"


def test_too_long_question_is_refused_with_the_limit():
    assert MAX_QUESTION_CHARS == 2000
    assert clean_question("a" * 2000) == "a" * 2000
    with pytest.raises(InputError, match=r"^the question is 2,001 characters long; the limit is 2,000$"):
        clean_question("a" * 2001)
    with pytest.raises(InputError, match="limit is 2,000"):
        clean_question("why " * 600)


def test_length_is_counted_after_cleaning():
    # spaces collapse and control characters go before the length is checked
    assert clean_question("a" * 1000 + " " * 3000 + "b" * 999) == "a" * 1000 + " " + "b" * 999
    assert clean_question("\x00" * 3000 + "a" * 2000) == "a" * 2000


def test_a_huge_paste_is_refused_at_its_raw_length():
    with pytest.raises(InputError, match=r"^the question is 1,000,000 characters long; the limit is 2,000$"):
        clean_question(" " * 1_000_000)


def test_clean_text_never_raises_on_odd_input():
    assert clean_text(None) == ""
    assert clean_text(12) == "12"
    assert clean_text("\ud83d\ude00ok") == "ok"  # an unpaired-looking pair of code units is dropped
    assert clean_text("😀 ok") == "😀 ok"
    assert clean_text("a\tb\nc\u2028d") == "a b c d"  # spacing characters become spaces, not joined words


def test_input_error_is_a_rag_error():
    assert issubclass(InputError, RagError)


# -- settings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("k, expected", [(None, DEFAULT_K), ("", DEFAULT_K), (1, 1), (3.0, 3), ("7", 7),
                                         (MAX_K, MAX_K), (float(MAX_K), MAX_K)])
def test_clean_k_accepts_whole_numbers_from_1_to_max(k, expected):
    assert clean_k(k) == expected


@pytest.mark.parametrize("k", [0, -1, 51, 100, "0", 51.0])
def test_clean_k_refuses_out_of_range_values_instead_of_clamping(k):
    with pytest.raises(InputError, match=rf"^k of {int(float(k))} is out of range: choose 1 to 50 passages$"):
        clean_k(k)


@pytest.mark.parametrize("k", ["x", "three", 2.5, "inf", float("inf"), "1e999", "nan", float("nan"), True, [5]])
def test_clean_k_names_what_is_not_a_whole_number(k):
    with pytest.raises(InputError, match="is not a whole number") as info:
        clean_k(k)
    assert str(info.value) == f"k of {k!r} is not a whole number"


def test_clean_mode():
    assert clean_mode(None) == clean_mode("") == DEFAULT_MODE
    assert [clean_mode(m.upper()) for m in MODES] == list(MODES)
    assert clean_mode(" BM25 ") == "bm25"
    with pytest.raises(InputError, match=r"^mode 'sideways' is not one of hybrid, dense, bm25$"):
        clean_mode("sideways")


def test_clean_doc_matches_path_file_name_or_stem():
    for all_docs in (None, "", "All documents", "all", "*", "  All documents "):
        assert clean_doc(all_docs, DOCS) is None
    assert "All documents" in NO_FILTER
    assert clean_doc("b.md", DOCS) == "b.md"
    assert clean_doc("sub/report_2021.txt", DOCS) == "sub/report_2021.txt"
    assert clean_doc("report_2021.txt", DOCS) == "report_2021.txt"
    assert clean_doc("report_2021", DOCS) == "report_2021"
    with pytest.raises(InputError, match=r"^no document 'c.txt' in the index \(it has 3: a.txt, b.md, "):
        clean_doc("c.txt", DOCS)


def test_clean_doc_lists_at_most_five_documents():
    docs = tuple(f"d{i}.txt" for i in range(8))
    with pytest.raises(InputError) as info:
        clean_doc("nope", docs)
    assert str(info.value) == "no document 'nope' in the index (it has 8: d0.txt, d1.txt, d2.txt, d3.txt, d4.txt, ...)"


def test_clean_year_names_the_years_there_are():
    assert clean_year(None, [2021]) is None and clean_year("", [2021]) is None
    assert clean_year(2021, [2022, 2021]) == 2021 and clean_year("2022", [2021, 2022]) == 2022
    with pytest.raises(InputError, match=r"^no document of year 1999 in the index \(it has 2021, 2022\)$"):
        clean_year(1999, [2022, 2021, 2022])
    with pytest.raises(InputError, match=r"\(it has no dated documents\)"):
        clean_year(2021, [])
    with pytest.raises(InputError, match=r"^year 'last' is not a year$"):
        clean_year("last", [2021])


def test_make_query_returns_a_checked_query():
    query = make_query("  Revenue\tin 2021? ", k="3", mode="BM25", doc="report_2021", year="2021",
                       docs=DOCS, years=[2021])
    assert query == Query("Revenue in 2021?", 3, "bm25", "report_2021", 2021)
    assert make_query("cats") == Query("cats", DEFAULT_K, DEFAULT_MODE, None, None)


def test_make_query_names_the_first_bad_value():
    with pytest.raises(InputError, match="the question is empty"):
        make_query("", k=0, mode="sideways")
    with pytest.raises(InputError, match="k of 0"):
        make_query("cats", k=0, mode="sideways")
    with pytest.raises(InputError, match="'sideways'"):
        make_query("cats", k=5, mode="sideways", doc="nope", docs=DOCS)
    with pytest.raises(InputError, match="no document 'nope'"):
        make_query("cats", doc="nope", docs=DOCS, year=1999)
    with pytest.raises(InputError, match="year 1999"):
        make_query("cats", doc="a.txt", docs=DOCS, year=1999, years=[2021])


# -- history -----------------------------------------------------------------------------------

def test_clean_history_keeps_the_last_turns_cleaned_and_drops_malformed_ones():
    assert clean_history(None) == [] and clean_history([]) == []
    turns = [("q\x00one", "a\u202eone"), ["q two", "a two"], ("only one",), "not a turn", ("a", "b", "c"), 7,
             (None, 3)]
    assert clean_history(turns) == [("qone", "aone"), ("q two", "a two"), ("", "3")]
    many = [(f"q{i}", f"a{i}") for i in range(MAX_HISTORY_TURNS + 5)]
    kept = clean_history(many)
    assert len(kept) == MAX_HISTORY_TURNS and kept[-1] == (f"q{MAX_HISTORY_TURNS + 4}", f"a{MAX_HISTORY_TURNS + 4}")
    assert kept[0] == ("q5", "a5")
