"""rag.ingest.chunk: exact spans, one block per passage, sentence-bounded splits of long paragraphs."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from conftest import SEEDS
from rag.ingest.chunk import ChunkSettings, chunk_document, line_at, newline_offsets
from rag.errors import RagError
from rag.ingest.load import parse, read_text
from rag.ingest.sentences import split_sentences

SETTINGS = [ChunkSettings(), ChunkSettings(400, 100), ChunkSettings(120, 30), ChunkSettings(50, 0)]


@pytest.fixture(scope="module")
def seed_docs():
    return [parse(p.name, read_text(p)) for p in sorted(SEEDS.glob("*.txt"))]


def block_of(document, passage):
    """The blocks that contain `passage` entirely."""
    return [b for b in document.blocks if b.start <= passage.start and passage.end <= b.end]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"{s.chunk_size}/{s.chunk_overlap}")
def test_seed_passages_are_exact_spans_within_one_block(seed_docs, settings):
    for d in seed_docs:
        file_text = read_text(SEEDS / d.doc)
        passages = chunk_document(d, settings)
        assert passages
        for p in passages:
            assert p.text == file_text[p.start:p.end]
            assert p.text == p.text.strip() and p.text
            assert len(p.text) <= settings.chunk_size
            (block,) = block_of(d, p)  # inside exactly one block: never straddles two blocks or sections
            assert (p.heading, p.kind, p.title, p.year, p.doc) == (block.heading, block.kind, d.title, d.year, d.doc)
        # every block is covered, and passages come in file order
        for b in d.blocks:
            assert any(p.start == b.start for p in passages)
            assert any(p.end == b.end for p in passages)
        assert [p.start for p in passages] == sorted(p.start for p in passages)


def test_short_blocks_are_one_passage_each(seed_docs):
    settings = ChunkSettings()
    for d in seed_docs:
        passages = chunk_document(d, settings)
        for b in d.blocks:
            if b.end - b.start <= settings.chunk_size:
                assert [(p.start, p.end) for p in passages if b.start <= p.start < b.end] == [(b.start, b.end)]


def test_passage_line_numbers_if_present(seed_docs):
    for d in seed_docs:
        for p in chunk_document(d):
            if hasattr(p, "line"):
                assert p.line == d.text.count("\n", 0, p.start) + 1


def long_paragraph_doc():
    sentences = [f"Sentence number {i} talks about topic {i * 7 % 11}." for i in range(40)]
    text = "Long Paragraph Test\n\n" + " ".join(sentences) + "\n\nA short closing paragraph.\n"
    return parse("long.txt", text)


def test_long_paragraph_is_split_on_sentence_boundaries_with_overlap():
    d = long_paragraph_doc()
    settings = ChunkSettings(chunk_size=300, chunk_overlap=100)
    long_block = d.blocks[0]
    assert long_block.end - long_block.start > 3 * settings.chunk_size
    sentence_starts = {s for s, _ in split_sentences(d.text, long_block.start, long_block.end)}
    sentence_ends = {e for _, e in split_sentences(d.text, long_block.start, long_block.end)}
    passages = chunk_document(d, settings)
    pieces = [p for p in passages if p.start < long_block.end]
    assert len(pieces) >= 4
    assert pieces[0].start == long_block.start and pieces[-1].end == long_block.end
    for p in pieces:
        assert len(p.text) <= settings.chunk_size
        assert p.start in sentence_starts and p.end in sentence_ends
        assert p.text == d.text[p.start:p.end]
    for a, b in zip(pieces, pieces[1:]):
        assert a.start < b.start < a.end < b.end  # consecutive pieces overlap, and move forward
        assert a.end - b.start <= settings.chunk_overlap
    # the closing paragraph is its own passage, not merged into the last piece
    assert passages[-1].text == "A short closing paragraph."


def test_no_overlap_setting_gives_adjacent_pieces():
    d = long_paragraph_doc()
    pieces = [p for p in chunk_document(d, ChunkSettings(300, 0)) if p.start < d.blocks[0].end]
    for a, b in zip(pieces, pieces[1:]):
        assert a.end < b.start and d.text[a.end:b.start].strip() == ""


def test_sentence_longer_than_chunk_size_is_split_further():
    words = " ".join(f"word{i}," for i in range(60))
    text = f"Title\n\nThis sentence never ends {words} and finally stops.\n"
    d = parse("w.txt", text)
    passages = chunk_document(d, ChunkSettings(100, 20))
    assert len(passages) > 3
    assert all(len(p.text) <= 100 and p.text == text[p.start:p.end] for p in passages)


def test_long_seed_paragraphs_overlap_with_default_settings(seed_docs):
    settings = ChunkSettings()
    split = 0
    for d in seed_docs:
        passages = chunk_document(d, settings)
        for b in d.blocks:
            pieces = [p for p in passages if b.start <= p.start < b.end]
            for x, y in zip(pieces, pieces[1:]):
                split += 1
                assert y.start < x.end, f"{d.doc}: {x.id} and {y.id} do not overlap"
    assert split >= 3


@pytest.mark.parametrize("size, overlap, message", [
    (49, 0, "chunk_size of 49"),
    (0, 0, "chunk_size of 0"),
    (1000, -1, "chunk_overlap of -1"),
    (1000, 500, "chunk_overlap of 500"),
    (100, 50, "chunk_overlap of 50"),
])
def test_chunk_settings_validation(size, overlap, message):
    with pytest.raises(RagError, match=message):
        ChunkSettings(size, overlap)


def test_chunk_settings_limits_accepted():
    assert ChunkSettings(50, 0).chunk_size == 50
    assert ChunkSettings(100, 49).chunk_overlap == 49


def test_context_has_title_and_heading_but_text_does_not(seed_docs):
    d = next(d for d in seed_docs if d.year == 2021)
    p = next(p for p in chunk_document(d) if "OSCE is a regional security organization" in p.text)
    ctx = p.context()
    assert ctx.endswith("\n" + p.text)
    assert "Diplomatic Bluebook 2021" in ctx
    assert "(2) Cooperation with the Organization for Security and Co-operation in Europe (OSCE)" in ctx
    assert ctx.count("Diplomatic Bluebook 2021") == 1  # the title is not repeated
    assert "Diplomatic Bluebook" not in p.text
    assert "(2) Cooperation with" not in p.text


def test_context_on_toy_markdown(toy_docs):
    d = parse("fish.md", (toy_docs / "fish.md").read_text(encoding="utf-8"))
    p = chunk_document(d)[0]
    assert p.context() == "Fish > Habitat\n" + p.text
    assert "Habitat" not in p.text


# ---- line numbers: bisected newline offsets give what counting from the start of the file gives ----

def counted_lines(document, passages):
    """The straightforward (quadratic) line of each passage: newlines before its start, plus one."""
    return [document.text.count("\n", 0, p.start) + 1 for p in passages]


@pytest.mark.parametrize("text", ["", "no newline", "\n", "a\n", "\nb", "a\n\nb\n", "\n\n\n", "x\ny\nz"])
def test_line_at_is_the_newline_count_plus_one(text):
    offsets = newline_offsets(text)
    assert offsets == [i for i, c in enumerate(text) if c == "\n"]
    for pos in range(len(text) + 1):
        assert line_at(offsets, pos) == text.count("\n", 0, pos) + 1, (text, pos)


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"{s.chunk_size}/{s.chunk_overlap}")
def test_seed_line_numbers_equal_the_counted_ones(seed_docs, settings):
    for d in seed_docs:
        passages = chunk_document(d, settings)
        assert [p.line for p in passages] == counted_lines(d, passages)


def generated_text(n_paragraphs: int, seed: int) -> str:
    """Report-like text: headings, paragraphs of 1-12 sentences (some wrapped over lines), blank runs."""
    rng = random.Random(seed)
    words = "the harbour treaty minister visit trade energy cooperation region policy island talks".split()
    parts = ["Generated Report 2024\n\n"]
    for i in range(n_paragraphs):
        if rng.random() < 0.1:
            parts.append(f"Section {i} {rng.choice(words).title()}\n" + "\n" * rng.randint(0, 2))
            continue
        sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 25))).capitalize() + "."
                     for _ in range(rng.randint(1, 12))]
        parts.append(("\n" if rng.random() < 0.3 else " ").join(sentences) + "\n" * rng.randint(1, 3))
    return "".join(parts)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"{s.chunk_size}/{s.chunk_overlap}")
def test_generated_line_numbers_equal_the_counted_ones(seed, settings):
    d = parse("gen.txt", generated_text(300, seed))
    passages = chunk_document(d, settings)
    assert len(passages) > 100 and max(p.line for p in passages) > 500
    assert [p.line for p in passages] == counted_lines(d, passages)


_LINES = st.lists(st.one_of(
    st.just(""), st.just("# Title"), st.just("Chapter 2"), st.just("(1) NATO"), st.just("- (1) A note."),
    st.just("(Photo: ASEF)"), st.just("They also met."), st.just("https://example.org/x"),
    st.text(alphabet=" abcXYZ.,;:!?()-#\t\ufeff", max_size=300),
), max_size=60)


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=_LINES, size=st.sampled_from([50, 120, 1000]))
def test_any_text_line_numbers_equal_the_counted_ones(lines, size):
    d = parse("any.txt", "\n".join(lines))
    passages = chunk_document(d, ChunkSettings(size, size // 4))
    assert [p.line for p in passages] == counted_lines(d, passages)


class NoCount(str):
    """A document text that refuses `count`: chunking must not count newlines from the start per passage."""

    def count(self, *args):
        raise AssertionError("chunk_document counted newlines in the whole text")


def test_chunking_does_not_count_newlines_per_passage():
    text = generated_text(200, 7)
    d = parse("gen.txt", NoCount(text))
    assert isinstance(d.text, NoCount)
    passages = chunk_document(d, ChunkSettings(120, 30))
    assert [p.line for p in passages] == [text.count("\n", 0, p.start) + 1 for p in passages]
