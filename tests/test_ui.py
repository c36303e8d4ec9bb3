"""Unit tests of the helpers behind the web chat (rag/ui.py): question cleaning, escaping and
highlighting, upload validation and sanitising, and the shared Engine (with a fake embedder on a
toy corpus, so no model is loaded)."""

from __future__ import annotations

import html
import io
import re
import threading
from pathlib import Path

import pytest

from rag import ui
from rag.types import Answer, Citation, Passage

try:  # the shared fake embedder, when tests/conftest.py has one
    from conftest import FakeEmbedder
except ImportError:  # pragma: no cover - fallback for a conftest without it
    import hashlib

    import numpy as np

    class FakeEmbedder:
        def __init__(self, name: str = "fake-hash", dim: int = 64):
            self.name, self.dim = name, dim

        def encode(self, texts, progress=None):
            out = np.zeros((len(texts), self.dim), dtype=np.float32)
            for i, t in enumerate(texts):
                for w in re.findall(r"\w+", t.lower()):
                    out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1
                out[i] /= max(float(np.linalg.norm(out[i])), 1e-9)
            if progress:
                progress(len(texts), len(texts))
            return out


CORPUS = {
    "cat.txt": "The Cat\n\nCats are small furry pets that purr and chase mice around the kitchen.\n\n"
               "A cat sleeps for most of the day and hunts at night.\n",
    "fish.md": "# Fish 2022\n\n## Habitat\n\nFish swim in rivers, lakes and oceans and breathe through gills.\n\n"
               "## Food\n\nGoldfish eat flakes, plankton and tiny shrimp.\n",
    "zebra.md": "# Zebras <img src=x onerror=alert(1)>\n\n## Food & <b>drink</b>\n\n"
                "The zebra grazes grass <script>alert(1)</script> every single morning. Zebras drink water at dusk.\n",
}
HTML_BITS = ("<script", "<img", "<b>", "<i>", "<u>", "<x>")


def tags_removed(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


# -- questions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("  When was   it set up? ", "When was it set up?"),
    ("What\x00 about\x07 NATO?\x1b[31m", "What about NATO?[31m"),
    ("tab\tnew\nline\r\nend", "tab new line end"),
    ("lone \ud800surrogate \udfff here", "lone surrogate here"),
    ("bidi \u202eevil\u202c text", "bidi evil text"),
    ("cafe\u0301", "café"),  # NFC
    ("<script>alert(1)</script> What about NATO?", "<script>alert(1)</script> What about NATO?"),
])
def test_clean_question_strips_control_characters_and_surrogates(raw, expected):
    assert ui.clean_question(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", None, "\x00\x01\x02", "\ud800\udc00\ud801", "\u202e"])
def test_empty_question_is_a_friendly_error(raw):
    with pytest.raises(ui.InputError, match="Please type a question"):
        ui.clean_question(raw)


@pytest.mark.parametrize("raw", ["?!?...", "???", " <> ", "— … —"])
def test_question_without_words_is_a_friendly_error(raw):
    with pytest.raises(ui.InputError, match="no words"):
        ui.clean_question(raw)
    assert ui.clean_question("1999?") == "1999?" and ui.clean_question("日本?") == "日本?"


def test_too_long_question_is_refused_with_the_limit():
    assert ui.clean_question("a" * 2000) == "a" * 2000
    with pytest.raises(ui.InputError, match=r"2,001 characters.*limit is 2,000"):
        ui.clean_question("a" * 2001)


def test_clean_text_never_raises_on_odd_input():
    assert ui.clean_text(None) == ""
    assert ui.clean_text(12) == "12"
    assert ui.clean_text("\ud83d\ude00ok") == "ok"  # an unpaired-looking pair of code units is dropped
    assert ui.clean_text("😀 ok") == "😀 ok"


def test_clean_settings_defaults_clamps_and_names_bad_values():
    docs = ("a.txt", "b.md")
    assert ui.clean_settings(None, None, None, docs) == (5, "hybrid", None)
    assert ui.clean_settings(50, "BM25", ui.ALL_DOCS, docs) == (10, "bm25", None)
    assert ui.clean_settings(0, "dense", "", docs) == (1, "dense", None)
    assert ui.clean_settings(3.0, "hybrid", "b.md", docs) == (3, "hybrid", "b.md")
    with pytest.raises(ui.InputError, match="'sideways'"):
        ui.clean_settings(5, "sideways", None, docs)
    with pytest.raises(ui.InputError, match="'x'"):
        ui.clean_settings("x", "hybrid", None, docs)
    for k in ("inf", float("inf"), "1e999", "nan"):
        with pytest.raises(ui.InputError, match="not a number"):
            ui.clean_settings(k, "hybrid", None, docs)
    with pytest.raises(ui.InputError, match="no document 'c.txt'"):
        ui.clean_settings(5, "hybrid", "c.txt", docs)


# -- rendering ---------------------------------------------------------------------------------

PARA = "First sentence. The <b>bold</b> & <script>alert(1)</script> claim. Last one."


def make_answer(abstained: bool = False, question: str = "What is the claim?", original: str = "") -> Answer:
    p = Passage(doc="evil <x>.md", start=100, end=100 + len(PARA), text=PARA,
                heading=("Title <i>T</i> 2024", "Part & <u>1</u>", "<Sub heading>"),
                title="Title <i>T</i> 2024", year=2024, score=0.123456, line=7)
    other = Passage(doc="other.txt", start=0, end=22, text="Other <img src=x> text", heading=("Other",),
                    title="Other", year=None, score=0.01, line=1)
    s = PARA.index("The <b>")
    e = PARA.index(" Last")
    cit = Citation(1, p.doc, p.start + s, p.start + e, PARA[s:e], p)
    if abstained:
        return Answer(question, "The documents do not answer this.", True, (), (p, other), original or question)
    return Answer(question, f"{PARA[s:e]} [1]", False, (cit,), (p, other), original or question)


def test_highlight_splits_at_offsets_and_escapes_each_piece():
    s, e = PARA.index("The <b>"), PARA.index(" Last")
    out = ui.highlight(PARA, [(s, e, 1)])
    assert out.count("<mark") == 1
    marked = re.search(r"<mark[^>]*>(.*?)</mark>", out).group(1)
    assert html.unescape(marked) == PARA[s:e]
    assert "&lt;script&gt;" in marked and "<script" not in out and "<b>" not in out
    assert html.unescape(re.sub(r"<sup[^>]*>.*?</sup>", "", out).replace('<mark data-n="1">', "")
                         .replace("</mark>", "")) == PARA


def test_highlight_clips_and_skips_overlaps():
    text = "abc def ghi"
    out = ui.highlight(text, [(4, 7, 1), (5, 9, 2), (8, 99, 3), (-5, 1, 4)])
    assert re.findall(r"<mark[^>]*>(.*?)</mark>", out) == ["a", "def", "ghi"]
    assert ui.highlight("a<b", []) == "a&lt;b"


def test_sources_panel_shows_citation_details_escaped():
    answer = make_answer()
    out = ui.sources_html(answer)
    for bit in HTML_BITS:
        assert bit not in out
    assert "<mark" in out and "</mark>" in out
    assert "Title &lt;i&gt;T&lt;/i&gt; 2024" in out  # title (its year is already in it)
    assert "Part &amp; &lt;u&gt;1&lt;/u&gt; › &lt;Sub heading&gt;" in out  # heading path below the title
    assert "line 7" in out and "score 0.1235" in out and "evil &lt;x&gt;.md" in out
    assert "[1]" in out
    # the whole paragraph is there, and the other passage is in a collapsed <details>
    assert PARA in tags_removed(out).replace("[1]", "")
    details = out[out.index("<details"):]
    assert details.startswith('<details class="src-more">') and "Other retrieved passages (1)" in details
    assert "Other &lt;img src=x&gt; text" in details


def test_sources_panel_for_an_abstention_opens_the_closest_passages():
    out = ui.sources_html(make_answer(abstained=True))
    assert "The documents do not answer this." in out
    assert '<details class="src-more" open>' in out and "Closest passages (2)" in out
    assert "<mark" not in out
    for bit in HTML_BITS:
        assert bit not in out
    assert ui.sources_html(None) == ui.EMPTY_SOURCES


def test_year_is_shown_when_the_title_lacks_it():
    p = Passage(doc="d.txt", start=0, end=4, text="Text", heading=("Report",), title="Report", year=2021)
    assert ui.doc_label(p) == "Report (2021)"
    assert ui.heading_path(p) == ""


def test_answer_markdown_escapes_and_marks_citations():
    md = ui.answer_markdown(make_answer(question="What is the claim (standalone)?", original="And the claim?"))
    assert md.startswith("*Read as: What is the claim (standalone)?*")
    assert "**\\[1\\]**" in md
    assert "<script" not in md and "<b>" not in md and "&lt;script&gt;" in md
    plain = ui.answer_markdown(make_answer())
    assert "Read as" not in plain
    only_and = ui.answer_markdown(make_answer(question="What did France say?", original="And what did France say?"))
    assert "Read as" not in only_and  # dropping a leading "And" is not worth showing


def test_answer_markdown_for_an_abstention_lists_closest_passages():
    md = ui.answer_markdown(make_answer(abstained=True))
    assert md.startswith("The documents do not answer this.")
    assert "closest passages" in md and "<img" not in md
    empty = Answer("q", "The documents do not answer this.", True, (), (), "q")
    assert "No passage matched" in ui.answer_markdown(empty)


def test_escape_markdown_neutralises_markup():
    out = ui.escape_markdown("<script>alert(1)</script> *bold* [link](http://x) $x$ `code` a_b_c")
    assert "<" not in out and ">" not in out
    assert "\\*bold\\*" in out and "\\[link\\](http://x)" in out and "\\$x\\$" in out and "\\`code\\`" in out
    assert ui.escape_markdown("# h\n- item\n12. num\n> quote") == "\\# h\n\\- item\n12\\. num\n&gt; quote"


# -- uploads -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("notes.txt", "notes.txt"),
    ("../evil.txt", "evil.txt"),
    ("../../etc/passwd.md", "passwd.md"),
    ("..\\..\\windows\\evil.txt", "evil.txt"),
    ("C:\\Users\\x\\report.MD", "report.md"),
    ("/abs/path/file.txt", "file.txt"),
    (".hidden.txt", "hidden.txt"),
    ("...dots.txt", "dots.txt"),
    ("my report (final) v2.txt", "my_report_final_v2.txt"),
    ("résumé.md", "resume.md"),
    ("a\x00b.txt", "ab.txt"),
    ("<script>x.txt", "script_x.txt"),
])
def test_safe_filename(name, expected):
    assert ui.safe_filename(name) == expected


def test_safe_filename_limits_length_and_rejects_nothing_left():
    long = ui.safe_filename("x" * 500 + ".txt")
    assert len(long) <= ui.MAX_NAME_CHARS and long.endswith(".txt")
    assert ui.safe_filename("notes.txt.exe") == "notes.txt.exe"  # the extension check is check_upload's
    for bad in ["", "..", "../", ".txt", "///", "日本.txt", "-_-.md"]:
        with pytest.raises(ui.InputError):
            ui.safe_filename(bad)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "incoming" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_check_upload_accepts_utf8_text(tmp_path):
    path = write(tmp_path, "ok.md", "# Título\n\nÜber text.\n".encode())
    assert ui.check_upload(path) == ("ok.md", "# Título\n\nÜber text.\n".encode())
    exactly = write(tmp_path, "big.txt", b"a" * ui.MAX_UPLOAD_BYTES)
    assert ui.check_upload(exactly)[0] == "big.txt"


@pytest.mark.parametrize("name, data, reason", [
    ("doc.pdf", b"%PDF-1.4 text", r"only \.txt and \.md files are accepted \(this is \.pdf\)"),
    ("run.exe", b"MZ", r"only \.txt and \.md"),
    ("notes.txt.exe", b"hello", r"this is \.exe"),
    ("README", b"hello", "without an extension"),
    ("bin.txt", b"hello\x00\x01\x02world", "binary"),
    ("latin1.txt", "café".encode("latin-1"), r"not valid UTF-8 text \(bad byte at position 3\)"),
    ("utf16.txt", "hello".encode("utf-16"), "not valid UTF-8|binary"),
    ("empty.txt", b"", "empty"),
    ("blank.md", b"  \n\n ", "empty"),
    ("huge.txt", b"a" * (ui.MAX_UPLOAD_BYTES + 1), r"too big \(5\.0 MB; the limit is 5 MB\)"),
])
def test_check_upload_rejects_with_a_clear_reason(tmp_path, name, data, reason):
    path = write(tmp_path, name, data)
    with pytest.raises(ui.InputError, match=reason) as info:
        ui.check_upload(path)
    assert str(info.value).startswith(name + ":")


def test_save_uploads_keeps_good_files_and_reports_bad_ones(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "existing.txt").write_text("Already here.\n", encoding="utf-8")
    files = [
        (write(tmp_path, "good.txt", b"Good text about zebras.\n"), None),
        (write(tmp_path, "evil.txt", b"Traversal attempt.\n"), "../evil.txt"),
        (write(tmp_path, "binary.txt", b"\x00\x01"), None),
        (write(tmp_path, "bad.md", b"\xff\xfe bad"), None),
        (write(tmp_path, "x.pdf", b"pdf"), None),
        (write(tmp_path, "existing.txt", b"Overwrite attempt.\n"), None),
        (write(tmp_path, "dup.txt", b"One.\n"), "GOOD.txt"),  # same name as one in this batch
    ]
    outside_before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if docs not in p.parents)
    report = ui.save_uploads(files, docs)
    assert report.saved == ["good.txt", "evil.txt"]
    rejected = dict(report.rejected)
    assert set(rejected) == {"binary.txt", "bad.md", "x.pdf", "existing.txt", "GOOD.txt"}
    assert "binary" in rejected["binary.txt"] and "UTF-8" in rejected["bad.md"]
    assert "already exists" in rejected["existing.txt"] and "already exists" in rejected["GOOD.txt"]
    assert (docs / "existing.txt").read_text(encoding="utf-8") == "Already here.\n"
    assert (docs / "evil.txt").read_text(encoding="utf-8") == "Traversal attempt.\n"
    assert sorted(p.name for p in docs.iterdir()) == ["evil.txt", "existing.txt", "good.txt"]  # no temp files left
    outside_after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if docs not in p.parents)
    assert outside_after == outside_before  # nothing written outside docs/
    message = report.message()
    assert "Added 2 documents" in message and "Rejected:" in message and "binary.txt" in message


def test_upload_report_message_agrees_in_number():
    assert "1 document: **a.txt**. It is searchable now." in ui.UploadReport(saved=["a.txt"]).message()
    assert "2 documents: **a.txt**, **b.md**. They are searchable now." in ui.UploadReport(saved=["a.txt", "b.md"]).message()


def test_upload_report_message_escapes_names():
    report = ui.UploadReport(rejected=[("<img src=x onerror=alert(1)>.pdf", "only .txt and .md files are accepted")])
    assert "<img" not in report.message()
    assert ui.UploadReport().message() == "No files were uploaded."


# -- the shared engine -------------------------------------------------------------------------

@pytest.fixture
def corpus(tmp_path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in CORPUS.items():
        (docs / name).write_text(text, encoding="utf-8")
    return docs


@pytest.fixture
def engine(corpus, tmp_path) -> ui.Engine:
    engine = ui.Engine(corpus, tmp_path / "index", embedder=FakeEmbedder())
    engine.start()
    return engine


def test_engine_starts_and_answers_with_rendered_sources(engine):
    assert engine.docs == ("cat.txt", "fish.md", "zebra.md")
    assert engine.describe().startswith("3 documents, ")
    answer = engine.ask("How do fish breathe?")
    assert answer.passages and answer.passages[0].doc == "fish.md"
    out = ui.sources_html(answer)
    for bit in HTML_BITS:
        assert bit not in out
    if not answer.abstained:
        assert "<mark" in out and answer.citations[0].quote in html.unescape(out)


def test_engine_never_puts_document_html_on_the_page(engine):
    answer = engine.ask("zebra grazes grass every single morning", k=3, mode="bm25")
    assert answer.passages[0].doc == "zebra.md"
    for rendered in (ui.sources_html(answer), ui.answer_markdown(answer)):
        for bit in HTML_BITS:
            assert bit not in rendered
    assert "&lt;script&gt;" in ui.sources_html(answer)


def test_engine_ask_validates_input(engine):
    with pytest.raises(ui.InputError, match="Please type a question"):
        engine.ask("  \x00 ")
    with pytest.raises(ui.InputError, match="limit is 2,000"):
        engine.ask("why " * 600)
    with pytest.raises(ui.InputError, match="no document 'nope.txt'"):
        engine.ask("cats", doc="nope.txt")
    answer = engine.ask("purr mice kitchen", doc="cat.txt", k=2)
    assert {p.doc for p in answer.passages} == {"cat.txt"} and len(answer.passages) <= 2


def test_engine_passes_history_for_follow_ups(engine):
    first = engine.ask("Where do fish swim in 2022?")
    follow = engine.ask("And in 2021?", history=[(first.question, first.text)])
    assert follow.question != follow.original_question and "2021" in follow.question
    assert ui.answer_markdown(follow).startswith("*Read as:")


def test_upload_makes_a_document_searchable_at_once(engine, tmp_path):
    stages = []
    new = write(tmp_path, "otters.md",
                b"# Otters\n\nSea otters hold hands while sleeping so they do not drift apart.\n")
    bad = write(tmp_path, "image.txt", b"\x89PNG\x00\x00")
    report = engine.add_documents([(new, None), (bad, None)], progress=lambda s, d, t: stages.append(s))
    assert report.saved == ["otters.md"] and [n for n, _ in report.rejected] == ["image.txt"]
    assert "otters.md" in engine.docs and "1 added" in report.summary
    assert {"read", "embed", "save"} <= set(stages)
    answer = engine.ask("otters hold hands sleeping drift", mode="bm25")
    assert answer.passages[0].doc == "otters.md"
    labels = dict((v, k) for k, v in ui.doc_choices(engine.retriever))
    assert labels["otters.md"] == "Otters — otters.md" and ui.ALL_DOCS in labels


def test_a_bad_upload_changes_nothing(engine, corpus, tmp_path):
    before_files = sorted(p.name for p in corpus.iterdir())
    before_assistant, before_summary = engine.assistant, engine.last_summary
    report = engine.add_documents([(write(tmp_path, "bad.txt", b"\xc3\x28"), None),
                                   (write(tmp_path, "../../escape.exe", b"x"), "../../escape.exe")])
    assert report.saved == [] and len(report.rejected) == 2
    assert sorted(p.name for p in corpus.iterdir()) == before_files
    assert engine.assistant is before_assistant and engine.last_summary is before_summary
    assert not (tmp_path / "escape.exe").exists() or (tmp_path / "escape.exe").read_bytes() == b"x"


def test_failed_indexing_removes_the_saved_files(engine, corpus, tmp_path, monkeypatch):
    import rag.build

    def broken(*args, **kwargs):
        raise rag.build.DocumentError("disk full")

    monkeypatch.setattr(rag.build, "build_index", broken)
    before = engine.assistant
    report = engine.add_documents([(write(tmp_path, "new.txt", b"New text.\n"), None)])
    assert report.saved == [] and report.error == "disk full"
    assert not (corpus / "new.txt").exists() and engine.assistant is before
    assert "Indexing failed" in report.message()


def test_questions_are_answered_while_an_upload_reindexes(engine, tmp_path):
    errors, answers = [], []
    stop = threading.Event()

    def asker():
        while not stop.is_set():
            try:
                answers.append(engine.ask("fish gills rivers", mode="bm25"))
            except Exception as exc:  # noqa: BLE001 - the test records any failure
                errors.append(exc)

    threads = [threading.Thread(target=asker) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(3):
            path = write(tmp_path, f"extra{i}.txt", f"Extra document {i} about herons.\n".encode())
            assert engine.add_documents([(path, None)]).saved == [f"extra{i}.txt"]
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors and answers and all(a.passages[0].doc == "fish.md" for a in answers)
    assert {"extra0.txt", "extra1.txt", "extra2.txt"} <= set(engine.docs)


def test_engine_needs_start():
    with pytest.raises(ui.RagError, match="not loaded"):
        ui.Engine("docs", "index", embedder=FakeEmbedder()).ask("q")


def test_console_progress_prints_one_line_per_finished_stage():
    stream = io.StringIO()
    progress = ui.console_progress(stream)
    progress("read", 1, 2)
    progress("read", 2, 2)
    progress("embed", 10, 10)
    assert stream.getvalue() == "Reading files: 2/2 done\nEmbedding passages: 10/10 done\n"
