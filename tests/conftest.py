"""Shared fixtures: a deterministic fake embedder, a toy corpus, and (for e2e) the real seed index."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_2025 = "000_dda85c429bc7d5d1.txt"
SEED_2021 = "003_faae33e1e6895e79.txt"

_WORD = re.compile(r"\w+")


class FakeEmbedder:
    """Bag-of-hashed-words vectors: deterministic, fast, and good enough to rank an obvious match first.

    Counts every call (`calls`) and every text embedded (`texts_embedded`) so tests can check how much
    an (incremental) build re-embedded.
    """

    def __init__(self, name: str = "fake-hash", dim: int = 64):
        self.name = name
        self.dim = dim
        self.calls = 0
        self.texts_embedded = 0
        self.texts: list[str] = []

    def vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            bucket = int(hashlib.md5(word.encode("utf-8")).hexdigest(), 16) % self.dim
            v[bucket] += 1.0
        norm = float(np.linalg.norm(v))
        return v / norm if norm else v

    def encode(self, texts) -> np.ndarray:
        texts = list(texts)
        self.calls += 1
        self.texts_embedded += len(texts)
        self.texts.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = self.vector(t)
        return out


# The toy corpus. Each animal file has words no other file has, so an obvious query has one obvious answer.
TOY_FILES = {
    "cat.txt": (
        "The Cat\n"
        "\n"
        "Cats are small furry pets that purr and chase mice around the kitchen.\n"
        "\n"
        "A cat sleeps for most of the day and hunts at night.\n"
    ),
    "dog.txt": (
        "The Dog\n"
        "\n"
        "Dogs bark at strangers, wag their tails and fetch sticks in the park.\n"
        "\n"
        "A dog needs a long walk every morning.\n"
    ),
    "animals/bird.txt": (
        "The Bird\n"
        "\n"
        "Birds build nests of twigs and sing loudly at dawn.\n"
        "\n"
        "Feathers keep a bird warm while it flies south for the winter.\n"
    ),
    "fish.md": (
        "# Fish\n"
        "\n"
        "## Habitat\n"
        "\n"
        "Fish swim in rivers, lakes and oceans and breathe through gills.\n"
        "\n"
        "## Food\n"
        "\n"
        "Goldfish eat flakes, plankton and tiny shrimp.\n"
    ),
    "report_2021.txt": (
        "Annual Report 2021\n"
        "\n"
        "Revenue grew strongly and the company opened two new offices.\n"
    ),
    "report_2022.txt": (
        "Annual Report 2022\n"
        "\n"
        "Revenue grew strongly again, revenue growth came from exports, and revenue per customer rose.\n"
    ),
}


def texts_for(passages) -> dict[str, str]:
    """Document texts that hold every passage at its span (blanks between): what a store saves with them."""
    texts: dict[str, list[str]] = {}
    for p in passages:
        chars = texts.setdefault(p.doc, [])
        chars.extend(" " * max(0, p.end - len(chars)))
        chars[p.start:p.end] = p.text
    return {doc: "".join(chars) for doc, chars in texts.items()}


def write_files(folder: Path, files: dict[str, str]) -> Path:
    """`folder` holding `files` (relative name -> text), written as UTF-8."""
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def toy_docs(tmp_path: Path) -> Path:
    """A tiny documents folder (one file in a subfolder, one Markdown file, two yearly reports)."""
    return write_files(tmp_path / "docs", TOY_FILES)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def fake_model(monkeypatch) -> list[str]:
    """Every model the code would load (for queries, builds or the app) is a FakeEmbedder; returns the
    names it was asked for, in order."""
    import rag.index.build
    import rag.index.embed
    import rag.pipeline
    import rag.search.retriever

    made: list[str] = []

    def factory(name="fake-hash", *args, **kwargs):
        made.append(name)
        return FakeEmbedder(name)

    for module, name in ((rag.search.retriever, "query_embedder"), (rag.index.build, "document_embedder"),
                         (rag.pipeline, "query_embedder"), (rag.index.embed, "SentenceTransformerEmbedder")):
        monkeypatch.setattr(module, name, factory)
    return made


@pytest.fixture
def toy_index(toy_docs: Path, tmp_path: Path, fake_embedder: FakeEmbedder) -> Path:
    """The toy corpus indexed with the fake embedder."""
    from rag.index.build import build_index

    index = tmp_path / "index"
    build_index(toy_docs, index, embedder=fake_embedder)
    return index


@pytest.fixture
def toy_retriever(toy_index: Path, fake_embedder: FakeEmbedder):
    from rag.search.retriever import Retriever

    return Retriever.load(toy_index, embedder=fake_embedder)


# ---- the real model on the seeds (e2e), built once per session ----

@pytest.fixture(scope="session")
def real_embedder():
    from rag.index.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()  # the packaged all-MiniLM-L6-v2, offline


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, real_embedder):
    """The REAL index of seeds/ (real model, FAISS, BM25), built once with rag.build_index."""
    from rag import build_index

    index = tmp_path_factory.mktemp("seed") / "index"
    summary = build_index(SEEDS, index, embedder=real_embedder)
    assert summary.embedded == summary.passages > 0
    return index


@pytest.fixture(scope="session")
def seed_retriever(seed_index, real_embedder):
    from rag import Retriever

    return Retriever.load(seed_index, embedder=real_embedder)


# ---- a corpus with multi-sentence and multi-line paragraphs, for the answerer (added for test_answer/test_generate) ----

# harbour.txt line 3 holds two sentences and line 4 ("They ...") continues the same paragraph, so one
# passage spans lines 3-4 and holds three sentences; canal.txt has one sentence longer than an answer may be.
STORY_FILES = {
    "harbour.txt": (
        "Miral Harbour Notes 2020\n"
        "\n"
        "The old harbour on Lake Miral was rebuilt in 1998 by the town council. It now shelters forty fishing boats "
        "and a ferry pier.\n"
        "They are painted blue every spring by volunteers from the rowing club.\n"
        "\n"
        "Herons nest in the tall reeds along the eastern shore of the lake.\n"
    ),
    "canal.txt": (
        "Canal Survey\n"
        "\n"
        "The canal survey recorded that the lock keepers "
        + ", ".join(f"checked gate {i} at dawn" for i in range(1, 25))
        + " and wrote every reading into a ledger.\n"
    ),
}


@pytest.fixture
def story_docs(tmp_path: Path) -> Path:
    """The toy corpus plus STORY_FILES, in its own folder."""
    return write_files(tmp_path / "story_docs", {**TOY_FILES, **STORY_FILES})


@pytest.fixture
def story_retriever(story_docs: Path, tmp_path: Path):
    from rag.index.build import build_index
    from rag.search.retriever import Retriever

    embedder = FakeEmbedder()
    build_index(story_docs, tmp_path / "story_index", embedder=embedder)
    return Retriever.load(tmp_path / "story_index", embedder=embedder)


@pytest.fixture
def toy_assistant(toy_retriever, toy_docs: Path):
    from rag.answer.assistant import Assistant

    # the calibrated relevance threshold is for the real model; the fake embedder's cosines run lower
    return Assistant(toy_retriever, min_relevance=0.3)


@pytest.fixture
def story_assistant(story_retriever, story_docs: Path):
    from rag.answer.assistant import Assistant

    return Assistant(story_retriever, min_relevance=0.3)


def assistant_over(files: dict[str, str], folder: Path, min_relevance: float = 0.0):
    """An Assistant over `files` (name -> text) written to `folder`/docs and indexed with the fake embedder."""
    from rag.answer.assistant import Assistant
    from rag.index.build import build_index
    from rag.search.retriever import Retriever

    docs = folder / "docs"
    docs.mkdir()
    for name, text in files.items():
        (docs / name).write_text(text, encoding="utf-8")
    embedder = FakeEmbedder()
    build_index(docs, folder / "index", embedder=embedder)
    return Assistant(Retriever.load(folder / "index", embedder=embedder), min_relevance=min_relevance)


def assert_answer_well_formed(answer, docs: Path) -> None:
    """The invariants of every non-abstaining Answer, checked against the files on disk: `[n]` markers numbered
    from 1 in order of first use, one citation per marker and none without, each quote the file's exact text at
    its span, inside its passage, on the right 1-based line."""
    from rag.types import ABSTAIN_MESSAGE

    assert not answer.abstained and answer.text != ABSTAIN_MESSAGE
    used = list(dict.fromkeys(int(n) for n in re.findall(r"\[(\d+)\]", answer.text)))  # order of first use
    assert used == list(range(1, len(used) + 1)), answer.text
    assert [c.n for c in answer.citations] == used, answer.text
    for c in answer.citations:
        text = (Path(docs) / c.doc).read_text(encoding="utf-8")
        assert c.quote == text[c.start:c.end]
        p = c.passage
        assert p.doc == c.doc and p.start <= c.start < c.end <= p.end
        assert p.text[c.start - p.start:c.end - p.start] == c.quote
        assert c.line == text.count("\n", 0, c.start) + 1
        assert c.passage in answer.passages
