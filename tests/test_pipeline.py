"""rag.pipeline.Pipeline, the one wiring point, with the fake embedder on small corpora: opening builds or
updates the index once and loads it once, questions are checked once, and a refresh (an upload) swaps the new
index in while questions keep being answered from the old one. (The Engine part of the old tests of
rag/ui.py, rewritten against Pipeline and rag.serve.uploads.add_documents.)"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import rag.index.build
import rag.index.local
import rag.pipeline
import rag.search.retriever
from conftest import FakeEmbedder, write_files
from rag.errors import IndexStateError, InputError, RagError
from rag.index.build import build_index
from rag.pipeline import Pipeline
from rag.serve.render import answer_markdown, sources_html
from rag.serve.uploads import add_documents

CORPUS = {
    "cat.txt": "The Cat\n\nCats are small furry pets that purr and chase mice around the kitchen.\n\n"
               "A cat sleeps for most of the day and hunts at night.\n",
    "fish.md": "# Fish 2022\n\n## Habitat\n\nFish swim in rivers, lakes and oceans and breathe through gills.\n\n"
               "## Food\n\nGoldfish eat flakes, plankton and tiny shrimp.\n",
    "zebra.md": "# Zebras <img src=x onerror=alert(1)>\n\n## Food & <b>drink</b>\n\n"
                "The zebra grazes grass <script>alert(1)</script> every single morning. Zebras drink water at dusk.\n",
}
HTML_BITS = ("<script", "<img", "<b>")


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_files(tmp_path / "docs", CORPUS)


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def pipeline(corpus, tmp_path, embedder) -> Pipeline:
    return Pipeline.open(tmp_path / "index", corpus, embedder=embedder, min_relevance=0.3)


def incoming(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "incoming").mkdir(exist_ok=True)
    (tmp_path / "incoming" / name).write_text(text, encoding="utf-8")
    return tmp_path / "incoming" / name


@pytest.fixture
def counted(monkeypatch):
    """Counts of index updates and index loads (from disk) while opening."""
    calls = {"update": 0, "load": 0}

    def counting(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(rag.pipeline, "update_index", counting("update", rag.pipeline.update_index))
    monkeypatch.setattr(rag.index.local, "load", counting("load", rag.index.local.load))
    return calls


# -- opening -----------------------------------------------------------------------------------

def test_open_builds_and_answers_with_rendered_sources(pipeline, corpus, tmp_path):
    assert pipeline.docs == ("cat.txt", "fish.md", "zebra.md") and pipeline.years == [2022]
    assert pipeline.describe().startswith("3 documents, ")
    assert pipeline.docs_dir == corpus and pipeline.summary.added == 3 and pipeline.summary.wrote
    assert (tmp_path / "index" / "manifest.json").exists()
    answer = pipeline.ask("How do fish breathe?")
    assert not answer.abstained and answer.passages[0].doc == "fish.md"
    out = sources_html(answer)
    assert "<mark" in out and answer.citations[0].quote in out
    assert [p.doc for p in pipeline.search("purr mice kitchen", k=1)] == ["cat.txt"]


def test_open_builds_a_missing_index_from_default_docs_and_says_so(corpus, tmp_path, embedder):
    notes = []
    index = tmp_path / "new-index"
    pipeline = Pipeline.open(index, default_docs=corpus, embedder=embedder, notify=notes.append)
    assert notes == [f"no index at {str(index)!r} yet; building it from {str(corpus)!r}"]  # and no "updated" note
    assert pipeline.summary.added == 3 and pipeline.docs == tuple(sorted(CORPUS)) and pipeline.docs_dir == corpus
    assert json.loads((index / "manifest.json").read_text(encoding="utf-8"))["docs"] == str(corpus.resolve())


def test_keep_model_loads_one_question_encoder_and_builds_with_the_document_encoder(corpus, tmp_path, monkeypatch):
    made: list[tuple[str, FakeEmbedder]] = []

    def maker(kind):
        def make(name, *args, **kwargs):
            made.append((kind, FakeEmbedder(name)))
            return made[-1][1]
        return make

    monkeypatch.setattr(rag.pipeline, "query_embedder", maker("question"))
    monkeypatch.setattr(rag.search.retriever, "query_embedder", maker("question, by a retriever"))
    monkeypatch.setattr(rag.index.build, "document_embedder", maker("document"))
    pipeline = Pipeline.open(tmp_path / "index", corpus, model="fake-hash", keep_model=True, min_relevance=0.3)
    assert [kind for kind, _ in made] == ["question", "document"]  # the build's encoder is its own
    assert pipeline.retriever.embedder is made[0][1]
    (corpus / "owl.txt").write_text("Owls hunt mice at night and sleep by day.\n", encoding="utf-8")
    pipeline.refresh()
    assert [kind for kind, _ in made] == ["question", "document", "document"]  # asked for by each build
    assert pipeline.retriever.embedder is made[0][1]  # questions keep the one encoder
    assert "owl.txt" in pipeline.retriever.docs


def test_an_embedder_given_to_open_encodes_builds_and_questions(corpus, tmp_path, monkeypatch, embedder):
    monkeypatch.setattr(rag.index.build, "document_embedder", None)  # never asked for
    pipeline = Pipeline.open(tmp_path / "index", corpus, embedder=embedder, keep_model=True)
    (corpus / "owl.txt").write_text("Owls hunt mice at night and sleep by day.\n", encoding="utf-8")
    pipeline.refresh()
    assert pipeline.retriever.embedder is embedder and "owl.txt" in pipeline.retriever.docs


def test_open_without_an_index_or_documents_is_an_error(tmp_path, embedder):
    with pytest.raises(IndexStateError, match="no index at"):
        Pipeline.open(tmp_path / "index", default_docs=tmp_path / "no-docs", embedder=embedder)
    assert not (tmp_path / "index").exists() and embedder.calls == 0


def test_an_up_to_date_index_is_loaded_once_and_not_rebuilt(pipeline, tmp_path, counted):
    notes, embedder = [], FakeEmbedder()
    again = Pipeline.open(tmp_path / "index", embedder=embedder, notify=notes.append)
    assert counted == {"update": 0, "load": 1} and notes == [] and embedder.calls == 0  # no build, no lock
    assert again.summary is None and again.docs == pipeline.docs and again.docs_dir == pipeline.docs_dir


def test_a_stale_index_is_updated_once_and_loaded_once(pipeline, corpus, tmp_path, counted):
    (corpus / "cat.txt").write_text("The Cat\n\nCats nap on warm windowsills.\n", encoding="utf-8")
    notes, embedder = [], FakeEmbedder()
    updated = Pipeline.open(tmp_path / "index", embedder=embedder, notify=notes.append)
    assert counted == {"update": 1, "load": 1}  # the old index once; the new one is handed over, not re-read
    assert notes == [f"index at {str(tmp_path / 'index')!r} is stale (1 changed in {corpus.resolve()}: cat.txt); "
                     "updating it"]
    assert updated.summary.changed == 1 and embedder.calls == 1
    assert updated.search("warm windowsills", mode="bm25")[0].text == "Cats nap on warm windowsills."


def test_update_false_refuses_a_stale_index_and_leaves_it_alone(pipeline, corpus, tmp_path, embedder):
    manifest = (tmp_path / "index" / "manifest.json").read_text(encoding="utf-8")
    (corpus / "new.txt").write_text("Brand new.\n", encoding="utf-8")
    with pytest.raises(IndexStateError, match=r"is stale: 1 file\(s\) changed"):
        Pipeline.open(tmp_path / "index", update=False, embedder=embedder)
    assert (tmp_path / "index" / "manifest.json").read_text(encoding="utf-8") == manifest
    (corpus / "new.txt").unlink()
    fixed = Pipeline.open(tmp_path / "index", update=False, embedder=embedder)
    assert fixed.docs == pipeline.docs and fixed.summary is None
    with pytest.raises(IndexStateError, match="not opened from a documents folder"):
        fixed.refresh()


def test_an_index_whose_documents_moved_away_is_still_searched(pipeline, corpus, tmp_path, counted):
    corpus.rename(tmp_path / "moved")
    moved = Pipeline.open(tmp_path / "index", embedder=FakeEmbedder())
    assert counted == {"update": 0, "load": 1}
    assert moved.docs == pipeline.docs and moved.search("gills", mode="bm25")[0].doc == "fish.md"


# -- asking ------------------------------------------------------------------------------------

def test_ask_never_puts_document_html_on_the_page(pipeline):
    answer = pipeline.ask("zebra grazes grass every single morning", k=3, mode="bm25")
    assert answer.passages[0].doc == "zebra.md"
    for rendered in (sources_html(answer), answer_markdown(answer)):
        for bit in HTML_BITS:
            assert bit not in rendered
    assert "&lt;script&gt;" in sources_html(answer)


def test_ask_validates_input(pipeline):
    with pytest.raises(InputError, match="the question is empty"):
        pipeline.ask("  \x00 ")
    with pytest.raises(InputError, match="limit is 2,000"):
        pipeline.ask("why " * 600)
    with pytest.raises(InputError, match="no document 'nope.txt'"):
        pipeline.ask("cats", doc="nope.txt")
    with pytest.raises(InputError, match=r"no document of year 2021 in the index \(it has 2022\)"):
        pipeline.search("fish", year=2021)
    answer = pipeline.ask("purr mice kitchen", doc="cat.txt", k=2)
    assert {p.doc for p in answer.passages} == {"cat.txt"} and len(answer.passages) <= 2
    assert pipeline.query("fish", k=None).k == pipeline.k == 5 and pipeline.query("fish", mode="").mode == "hybrid"


def test_ask_reads_follow_ups_against_the_history(pipeline):
    first = pipeline.ask("Where do fish swim in 2022?")
    follow = pipeline.ask("And in 2021?", history=[(first.question, first.text)])
    assert follow.original_question == "And in 2021?" and follow.question == "Where do fish swim in 2021?"
    assert answer_markdown(follow).startswith("*Read as: Where do fish swim in 2021?*")
    assert pipeline.ask("And in 2021?", history=[]).question == "And in 2021?"  # no history: nothing to read it against
    junk = [None, ("one",), (first.question, first.text)]  # malformed turns are dropped, not an error
    assert pipeline.ask("And in 2021?", history=junk).question == follow.question


def test_warm_up_asks_once_and_never_raises(pipeline, monkeypatch):
    asked = []

    def failing(question, history=(), **settings):
        asked.append(question)
        raise RagError("the index is on fire")

    monkeypatch.setattr(pipeline, "ask", failing)
    pipeline.warm_up()
    assert len(asked) == 1


# -- refresh and uploads -------------------------------------------------------------------------

def test_refresh_swaps_the_new_index_in_and_leaves_the_old_one_whole(pipeline, corpus):
    old_retriever, old_assistant = pipeline.retriever, pipeline.assistant
    (corpus / "otters.md").write_text("# Otters\n\nSea otters hold hands while sleeping.\n", encoding="utf-8")
    summary = pipeline.refresh()
    assert summary.added == 1 and pipeline.summary is summary and "otters.md" in pipeline.docs
    assert pipeline.retriever is not old_retriever and pipeline.assistant is not old_assistant
    assert pipeline.assistant.retriever is pipeline.retriever
    assert "otters.md" not in old_retriever.docs  # a question in flight keeps the index it started with
    assert pipeline.search("otters hold hands", mode="bm25")[0].doc == "otters.md"
    assert not pipeline.refresh().wrote  # nothing changed since


def test_refresh_waits_for_the_lock(pipeline, corpus):
    (corpus / "late.txt").write_text("A late arrival about herons.\n", encoding="utf-8")
    done = threading.Event()
    with pipeline.lock:
        worker = threading.Thread(target=lambda: (pipeline.refresh(), done.set()))
        worker.start()
        assert not done.wait(0.3) and "late.txt" not in pipeline.docs
    worker.join(10)
    assert done.is_set() and "late.txt" in pipeline.docs


def test_questions_during_an_upload_are_answered_from_the_old_index(pipeline, tmp_path):
    seen = {}

    def progress(stage, done, total):  # mid-build, in the uploading thread: ask from another one
        if stage == "embed" and "during" not in seen:
            result = []
            asker = threading.Thread(target=lambda: result.append(pipeline.ask("otters hold hands", mode="bm25")))
            asker.start()
            asker.join(10)
            seen["during"] = result[0] if result else None  # None: the question waited for the build

    path = incoming(tmp_path, "otters.md", "# Otters\n\nSea otters hold hands while sleeping.\n")
    report = add_documents(pipeline, [(path, None)], progress=progress)
    assert report.saved == ["otters.md"]
    during = seen["during"]
    assert during is not None and "otters.md" not in {p.doc for p in during.passages}
    assert pipeline.ask("otters hold hands", mode="bm25").passages[0].doc == "otters.md"


def test_questions_are_answered_while_uploads_reindex(pipeline, tmp_path):
    errors, answers = [], []
    stop = threading.Event()

    def asker():
        while not stop.is_set():
            try:
                answers.append(pipeline.ask("fish gills rivers", mode="bm25"))
            except Exception as exc:  # noqa: BLE001 - the test records any failure
                errors.append(exc)

    threads = [threading.Thread(target=asker) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(3):
            path = incoming(tmp_path, f"extra{i}.txt", f"Extra document {i} about herons.\n")
            assert add_documents(pipeline, [(path, None)]).saved == [f"extra{i}.txt"]
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors and answers and all(a.passages[0].doc == "fish.md" for a in answers)
    assert {"extra0.txt", "extra1.txt", "extra2.txt"} <= set(pipeline.docs)


@pytest.mark.parametrize("failure, error", [
    (RagError("the model crashed\nat layer 3"), "the model crashed"),
    (OSError(28, "No space left on device"), "[Errno 28] No space left on device")])
def test_failed_indexing_removes_the_saved_files(pipeline, embedder, corpus, tmp_path, failure, error):
    def broken(texts):  # fails once: the build embeds the new file with the pipeline's own model
        del embedder.encode
        raise failure

    embedder.encode = broken
    before_assistant, before_summary = pipeline.assistant, pipeline.summary
    manifest = (tmp_path / "index" / "manifest.json").read_bytes()
    report = add_documents(pipeline, [(incoming(tmp_path, "new.txt", "New text about herons.\n"), None)])
    assert report.saved == [] and report.error == error  # its first line
    assert report.rejected == [("new.txt", "not added because indexing failed")]
    assert not (corpus / "new.txt").exists() and sorted(p.name for p in corpus.iterdir()) == sorted(CORPUS)
    assert pipeline.assistant is before_assistant and pipeline.summary is before_summary
    assert (tmp_path / "index" / "manifest.json").read_bytes() == manifest
    assert "Indexing failed, nothing was added" in report.message()
    assert pipeline.ask("How do fish breathe?").passages[0].doc == "fish.md"


# -- the CLI and the web treat bad settings alike ------------------------------------------------

@pytest.mark.parametrize("k, question, message", [
    (0, "Do fish breathe through gills?", "k of 0 is out of range: choose 1 to 50 passages"),
    (51, "Do fish breathe through gills?", "k of 51 is out of range: choose 1 to 50 passages"),
    (5, "a" * 2001, "the question is 2,001 characters long; the limit is 2,000"),
])
def test_cli_pipeline_and_web_refuse_the_same_input_the_same_way(pipeline, tmp_path, monkeypatch, capsys,
                                                                 k, question, message):
    import app
    from gradio import Error as GradioError

    from rag.serve.cli import main

    monkeypatch.setattr(rag.search.retriever, "query_embedder", lambda name, *a, **kw: FakeEmbedder(name))
    monkeypatch.setattr(rag.index.build, "document_embedder", lambda name, *a, **kw: FakeEmbedder(name))
    index = str(tmp_path / "index")
    for command in ("search", "ask"):
        assert main([command, question, "-k", str(k), "--index", index]) == 1
        out, err = capsys.readouterr()
        assert out == "" and err == f"rag: error: {message}\n"
    with pytest.raises(InputError) as info:
        pipeline.ask(question, k=k)
    assert str(info.value) == message
    with pytest.raises(InputError, match=f"^{message}$"):
        pipeline.search(question, k=k)

    demo = app.build_demo(pipeline)
    fns = {f.api_name: f.fn for f in demo.fns.values()}
    with pytest.raises(GradioError) as info:
        fns["ask"](question, k=k)  # the public /ask endpoint
    assert info.value.message == message
    chat, turns, sources = fns["respond"](question, [], [], k, "hybrid", "All documents")  # the chat
    assert [m["role"] for m in chat] == ["assistant"]
    assert chat[0]["content"] == app.escape_markdown(message) and turns == [] and message in sources
    # and the largest k is fine everywhere
    assert main(["search", "fish", "-k", "50", "--index", index, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["passages"]) == len(pipeline.retriever.passages)
    assert fns["ask"]("Do fish breathe through gills?", k=50)["passages"]


def test_an_uploads_folder_stays_in_the_index_until_asked_otherwise(tmp_path, fake_model):
    docs = write_files(tmp_path / "docs", {"a.txt": "Alpha\n\nAlpacas graze on the hills.\n"})
    uploads = write_files(tmp_path / "up", {"b.txt": "Beta\n\nBeavers build dams in rivers.\n"})
    index = tmp_path / "index"
    pipeline = Pipeline.open(index, docs, uploads=uploads)
    assert pipeline.docs == ("a.txt", "uploads/b.txt") and pipeline.upload_dir == uploads.resolve()
    assert pipeline.source_file("uploads/b.txt") == (uploads / "b.txt").resolve()
    assert pipeline.source_file("uploads/../a.txt") is None and pipeline.source_file("nope.txt") is None
    assert Pipeline.open(index, docs).docs == ("a.txt", "uploads/b.txt")  # None: the index's own folders
    assert Pipeline.open(index).docs == ("a.txt", "uploads/b.txt")
    assert not build_index(docs, index).wrote  # `rag index DOCS` keeps the uploads too
    assert Pipeline.open(index, docs, uploads=False).docs == ("a.txt",)  # an index of `docs` alone
    assert Pipeline.open(index, docs).upload_dir == docs


def test_an_index_of_an_older_format_is_rebuilt_from_its_folder_with_a_note(tmp_path, fake_model):
    docs = write_files(tmp_path / "docs", {"a.txt": "Alpha\n\nAlpacas graze on the hills.\n"})
    index = tmp_path / "index"
    Pipeline.open(index, docs)
    manifest = index / "manifest.json"
    raw = json.loads(manifest.read_text(encoding="utf-8"))
    raw["format_version"] -= 1  # as an older rag wrote it
    manifest.write_text(json.dumps(raw), encoding="utf-8")
    notes: list[str] = []
    pipeline = Pipeline.open(index, notify=notes.append)
    assert pipeline.docs == ("a.txt",) and "rebuilt" in pipeline.summary.rebuilt_because or pipeline.summary.wrote
    assert len(notes) == 1 and "has format version" in notes[0] and "rebuilding it from" in notes[0]
    assert json.loads(manifest.read_text(encoding="utf-8"))["format_version"] == raw["format_version"] + 1


# -- the optional reader ---------------------------------------------------------------------------

class Liking:
    """A fake cross-encoder: logit +4 for a text holding `liked`, -4 for any other."""

    def __init__(self, liked: str):
        self.liked, self.asked = liked, 0

    def predict(self, pairs):
        self.asked += 1
        return [4.0 if self.liked in text else -4.0 for _, text in pairs]


def test_a_reader_reaches_every_assistant_and_outlives_a_refresh(corpus, tmp_path, embedder):
    liking = Liking("sleeps")
    pipeline = Pipeline.open(tmp_path / "index", corpus, embedder=embedder, min_relevance=0.3, reader=liking)
    reader = pipeline.assistant.reader
    assert reader is pipeline.reader and reader._model is liking
    answer = pipeline.ask("What do cats do?")
    assert [c.quote for c in answer.citations] == ["A cat sleeps for most of the day and hunts at night."]
    assert liking.asked == 2  # the passages, then their sentences
    (corpus / "otters.md").write_text("# Otters\n\nSea otters hold hands while sleeping.\n", encoding="utf-8")
    pipeline.refresh()
    assert pipeline.assistant.reader is reader  # made once, shared by the new index's assistant


def test_without_a_reader_the_pipeline_answers_as_before(pipeline):
    assert pipeline.reader is None and pipeline.assistant.reader is None
    assert [c.quote for c in pipeline.ask("What do goldfish eat?").citations] == [
        "Goldfish eat flakes, plankton and tiny shrimp."]


def test_a_reader_that_is_not_there_is_named_before_any_index_work(corpus, tmp_path, embedder):
    with pytest.raises(InputError, match="'nosuch'"):
        Pipeline.open(tmp_path / "index", corpus, embedder=embedder, reader="nosuch")
    assert not (tmp_path / "index").exists() and embedder.calls == 0
