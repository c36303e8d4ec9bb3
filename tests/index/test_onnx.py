"""The ONNX Runtime encoder of the default model: it gives sentence-transformers' vectors, reads indexes
built with sentence-transformers, keeps torch off the query path, is exported once into a cache keyed
by the weights' hash, and falls back to torch (one warning) when ONNX Runtime cannot be had.

The real export runs once per session (`onnx_cache`), into a folder under tmp; each test points
XDG_CACHE_HOME at it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from rag.errors import IndexStateError, RagError
from rag.index import cpu, embed, onnx
from rag.index.embed import (
    DEFAULT_MODEL,
    INT8_MODEL,
    TransformersEmbedder,
    _plain_pooling,
    document_embedder,
    query_embedder,
    resolve_model,
)
from rag.ingest.sentences import split_sentences

pytestmark = pytest.mark.e2e
QUESTIONS = ["When was the European Peace Facility set up?", "Which countries were regional coordinators of ASEM?",
             "NATO", "What does Japan say about cooperation with Europe?"]


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory) -> Path:
    """XDG_CACHE_HOME holding the default model's ONNX export, made once per session."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache))
        onnx.exported_model(resolve_model(DEFAULT_MODEL))
    return cache


@pytest.fixture
def cached(onnx_cache, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(onnx_cache))
    return onnx_cache


@pytest.fixture(scope="session")
def seed_texts(seed_index) -> dict[str, list[str]]:
    """The seeds' passages and their sentences, as the index holds them."""
    lines = (seed_index / "passages.jsonl").read_text(encoding="utf-8").splitlines()
    passages = [json.loads(line)["text"] for line in lines if line.strip()]
    sentences = [p[a:b] for p in passages for a, b in split_sentences(p)]
    return {"passages": passages, "sentences": sentences}


def test_the_default_model_is_encoded_with_onnx_runtime(cached):
    encoder = query_embedder(DEFAULT_MODEL)
    assert isinstance(encoder, onnx.OnnxEmbedder)
    assert (encoder.name, encoder.dim, encoder.int8) == (DEFAULT_MODEL, 384, False)
    assert encoder.path.is_relative_to(cached) and encoder.path.with_name("model.onnx.data").is_file()
    assert query_embedder(f"sentence-transformers/{DEFAULT_MODEL}").name == f"sentence-transformers/{DEFAULT_MODEL}"
    assert encoder.encode([]).shape == (0, 384)


@pytest.mark.parametrize("kind", ["passages", "sentences"])
def test_fp32_vectors_are_the_sentence_transformers_ones(cached, real_embedder, seed_texts, kind):
    texts = seed_texts[kind]
    ours, theirs = query_embedder(DEFAULT_MODEL).encode(texts), real_embedder.encode(texts)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert float((ours * theirs).sum(axis=1).min()) >= 0.9999


def test_a_text_gets_the_same_vector_alone_as_in_a_batch(cached):
    encoder = query_embedder(DEFAULT_MODEL)
    texts = ["NATO", "a long sentence about Europe " * 60, "When was the European Peace Facility set up?", ""]
    batch = encoder.encode(texts)  # the long one is cut at the model's 256 word-pieces, as sentence-transformers does
    for i, text in enumerate(texts):
        np.testing.assert_allclose(encoder.encode([text])[0], batch[i], atol=1e-5)


def test_many_texts_are_encoded_by_a_thread_per_core_with_the_same_vectors_whatever_the_cores(cached, seed_texts):
    folder = Path(resolve_model(DEFAULT_MODEL))
    texts = seed_texts["sentences"][:40]
    assert len(texts) > 2 * onnx.BATCH
    two = onnx.OnnxEmbedder(DEFAULT_MODEL, folder, *_plain_pooling(folder), threads=2)
    one = onnx.OnnxEmbedder(DEFAULT_MODEL, folder, *_plain_pooling(folder), threads=1)
    assert two.encode(texts[:3]) is not None and two._bulk is None  # a few texts: the session with 2 threads
    many = two.encode(texts)
    assert two._bulk.get_session_options().intra_op_num_threads == 1 and one._bulk is None
    assert np.array_equal(many, one.encode(texts))  # 2 workers of 1 thread, or 1 thread alone: the same bits
    for i in (0, 17, 39):
        np.testing.assert_allclose(two.encode([texts[i]])[0], many[i], atol=1e-5)


# ---- documents: the same export on OpenVINO ----

@pytest.fixture
def documents(cached, monkeypatch) -> onnx.OnnxEmbedder:
    """The default model's document encoder, made afresh from the session's export."""
    monkeypatch.setattr(embed, "_documents", {})
    return document_embedder(DEFAULT_MODEL)


def test_documents_are_encoded_with_openvino_once_per_process(documents, cached):
    assert isinstance(documents, onnx.OnnxEmbedder) and documents.runtime == "openvino"
    assert (documents.name, documents.dim, documents.session) == (DEFAULT_MODEL, 384, None)
    assert documents.precision in ("bf16", "f32") and documents.path.is_relative_to(cached)  # the one export
    assert documents.path == query_embedder(DEFAULT_MODEL).path
    assert document_embedder(DEFAULT_MODEL) is documents  # made once, then shared
    assert documents.encode([]).shape == (0, 384)


@pytest.mark.parametrize("kind", ["passages", "sentences"])
def test_document_vectors_are_the_sentence_transformers_ones(documents, real_embedder, seed_texts, kind):
    texts = seed_texts[kind]
    ours, theirs = documents.encode(texts), real_embedder.encode(texts)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert float((ours * theirs).sum(axis=1).min()) >= 0.9999  # bf16 too: about 0.99996 at worst on the seeds


def test_a_document_gets_the_same_bits_alone_as_in_any_batch_and_with_any_streams(documents, seed_texts):
    folder = Path(resolve_model(DEFAULT_MODEL))
    texts = seed_texts["sentences"][:80] + ["NATO", "a long sentence about Europe " * 60, ""]
    batch = documents.encode(texts)
    assert np.array_equal(np.vstack([documents.encode([t]) for t in texts]), batch)
    assert np.array_equal(documents.encode(texts[::-1])[::-1], batch)  # other neighbours, other batches
    one = onnx.OnnxEmbedder(DEFAULT_MODEL, folder, *_plain_pooling(folder), threads=1, runtime="openvino")
    assert one.workers == 1 and np.array_equal(one.encode(texts), batch)


def test_an_incremental_build_on_openvino_has_the_bits_of_a_fresh_one(documents, toy_docs, tmp_path):
    from rag import build_index
    from rag.index import local

    build_index(toy_docs, tmp_path / "inc")  # no embedder: the document encoder
    (toy_docs / "dog.txt").write_text("The Dog\n\nDogs dig holes in the garden. They bark at the post.\n",
                                      encoding="utf-8")
    assert build_index(toy_docs, tmp_path / "inc").embedded < build_index(toy_docs, tmp_path / "fresh").embedded
    inc, fresh = local.load(tmp_path / "inc"), local.load(tmp_path / "fresh")
    assert inc.passages == fresh.passages and np.array_equal(inc.vectors(), fresh.vectors())
    for i in range(len(inc.passages)):  # the new file's texts were encoded with other neighbours
        assert np.array_equal(inc.passage_sentences(i), fresh.passage_sentences(i))


def test_a_thread_at_a_lower_priority_gets_a_document_encoder_of_its_own(documents):
    import threading

    made = {}

    def background(name):
        made[name] = (cpu.background_priority(), document_embedder(DEFAULT_MODEL))

    for name in ("first", "second"):
        thread = threading.Thread(target=background, args=(name,))
        thread.start()
        thread.join()
    (lowered, first), (_, second) = made["first"], made["second"]
    if not lowered:
        pytest.skip("this platform does not lower a thread's priority")
    assert first is second and first is not documents  # OpenVINO's threads would keep the priority they started at
    assert first.runtime == "openvino" and np.array_equal(first.encode(QUESTIONS), documents.encode(QUESTIONS))


def test_batches_hold_texts_of_one_length():
    lengths = np.array([5, 9, 5, 9, 9, 3, 5, 9])
    order = np.argsort(-lengths, kind="stable")
    batches = onnx._same_length(order, lengths, 3)
    assert [b.tolist() for b in batches] == [[1, 3, 4], [7], [0, 2, 6], [5]]


def test_the_int8_model_is_not_run_on_openvino(cached):
    folder = Path(resolve_model(DEFAULT_MODEL))
    with pytest.raises(ValueError, match="onnxruntime only"):
        onnx.OnnxEmbedder(INT8_MODEL, folder, *_plain_pooling(folder), int8=True, runtime="openvino")
    with pytest.raises(ValueError, match="'tensorrt' is not one of"):
        onnx.OnnxEmbedder(DEFAULT_MODEL, folder, *_plain_pooling(folder), runtime="tensorrt")


def test_without_openvino_documents_are_encoded_with_onnx_runtime_and_one_warning(cached, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` raises ImportError
    monkeypatch.setattr(embed, "_documents", {})
    with caplog.at_level(logging.WARNING, logger="rag"):
        first, second = document_embedder(DEFAULT_MODEL), document_embedder(DEFAULT_MODEL)
    assert first is second and isinstance(first, onnx.OnnxEmbedder) and first.runtime == "onnxruntime"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "OpenVINO" in warnings[0] and "openvino" in warnings[0]


def test_another_model_encodes_documents_as_it_encodes_questions(monkeypatch):
    made = []
    monkeypatch.setattr(embed, "query_embedder", lambda name: made.append(name) or name)
    assert document_embedder("some/other-model") == "some/other-model" and made == ["some/other-model"]


def test_an_index_built_on_openvino_is_searched_with_onnx_runtime_as_one_built_with_torch(
        documents, seed_retriever, tmp_path):
    from rag import Retriever, build_index

    summary = build_index(ROOT / "seeds", tmp_path / "index")  # no embedder: the default model's document encoder
    assert summary.embedded == summary.passages > 0
    ours = Retriever.load(tmp_path / "index")
    assert ours.index.manifest.model == DEFAULT_MODEL and ours.embedder.runtime == "onnxruntime"
    for question in QUESTIONS:
        got = [(p.doc, p.start) for p in ours.search(question, k=5)]
        assert got == [(p.doc, p.start) for p in seed_retriever.search(question, k=5)], question


def test_an_index_built_with_sentence_transformers_is_searched_with_onnx(cached, seed_index, seed_retriever):
    from rag import Retriever

    fresh = Retriever.load(seed_index)  # no embedder given: the manifest's model, on ONNX Runtime
    assert isinstance(fresh.embedder, onnx.OnnxEmbedder) and fresh.index.manifest.model == DEFAULT_MODEL
    for question in QUESTIONS:
        got = [(p.doc, p.start) for p in fresh.search(question, k=5)]
        assert got == [(p.doc, p.start) for p in seed_retriever.search(question, k=5)], question


def test_the_query_path_imports_no_torch(cached, seed_index):
    code = (
        "import json, sys\n"
        "from rag.pipeline import Pipeline\n"
        f"pipeline = Pipeline.open({str(seed_index)!r}, update=False)\n"
        f"answer = pipeline.ask({QUESTIONS[0]!r})\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'encoder': type(pipeline.retriever.embedder).__name__,"
        " 'answer': answer.text, 'abstained': answer.abstained}))\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(cached)}
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["encoder"] == "OnnxEmbedder" and result["heavy"] == []
    assert not result["abstained"] and "2021" in result["answer"]


def test_two_exports_give_the_same_vectors(cached, tmp_path):
    folder = Path(resolve_model(DEFAULT_MODEL))
    again = tmp_path / "again.onnx"
    onnx.export(folder, again)  # the same weights, exported afresh
    first = query_embedder(DEFAULT_MODEL)
    second = onnx.OnnxEmbedder(DEFAULT_MODEL, folder, *_plain_pooling(folder))
    import onnxruntime as ort

    second.session = ort.InferenceSession(str(again), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(second.encode(QUESTIONS), first.encode(QUESTIONS), atol=1e-6)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_the_same_corpus_gives_the_same_index_with_onnx(cached, toy_docs, tmp_path, runtime):
    from rag import build_index

    folder = Path(resolve_model(DEFAULT_MODEL))
    encoder = onnx.OnnxEmbedder(DEFAULT_MODEL, folder, *_plain_pooling(folder), runtime=runtime)
    for name in ("a", "b"):
        build_index(toy_docs, tmp_path / name, embedder=encoder)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    for file in files:
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file


def test_the_int8_quantisation_says_nothing_on_the_console(cached, tmp_path):
    fp32 = query_embedder(DEFAULT_MODEL).path
    code = ("import sys, logging; from rag.index import onnx; onnx.quantize(sys.argv[1], sys.argv[2]); "
            "print(len(logging.getLogger().handlers)); logging.warning('after'); print('done')")
    out = subprocess.run([sys.executable, "-c", code, str(fp32), str(tmp_path / "int8.onnx")], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0 and out.stdout.split() == ["0", "done"], out.stderr  # no handler left on the root logger
    assert out.stderr.strip() == "WARNING:root:after"  # only its own advice is dropped, and only while it runs
    assert (tmp_path / "int8.onnx").stat().st_size > 1_000_000


def test_int8_is_a_model_of_its_own(cached, seed_index, seed_texts):
    from rag import Retriever

    int8 = query_embedder(INT8_MODEL)
    assert isinstance(int8, onnx.OnnxEmbedder) and int8.int8 and int8.name == INT8_MODEL and int8.dim == 384
    fp32 = query_embedder(DEFAULT_MODEL)
    assert int8.path.parent.name == "int8" and int8.path.parent.parent == fp32.path.parent.parent
    texts = seed_texts["passages"]
    cos = (int8.encode(texts) * fp32.encode(texts)).sum(axis=1)
    assert 0.97 < float(cos.mean()) < 0.9999  # close, but not the same vectors: never mixed with fp32 ones
    with pytest.raises(IndexStateError, match=INT8_MODEL):
        Retriever.load(seed_index, embedder=int8)
    with pytest.raises(RagError, match="ONNX Runtime only"):
        embed.SentenceTransformerEmbedder(INT8_MODEL)


def test_without_onnxruntime_the_default_model_falls_back_to_torch_with_one_warning(cached, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    monkeypatch.setattr(embed, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="rag"):
        first, second = query_embedder(DEFAULT_MODEL), query_embedder(DEFAULT_MODEL)
    assert isinstance(first, TransformersEmbedder) and isinstance(second, TransformersEmbedder)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "onnxruntime" in warnings[0].getMessage()
    assert first.name == DEFAULT_MODEL and first.dim == 384
    with pytest.raises(RagError, match="needs onnxruntime"):  # int8 has no torch twin
        query_embedder(INT8_MODEL)


def test_a_failed_export_falls_back_and_leaves_nothing_behind(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(embed, "_warned", set())

    def broken(folder, target):
        Path(target).write_bytes(b"half a model")
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(onnx, "export", broken)
    with caplog.at_level(logging.WARNING, logger="rag"):
        encoder = query_embedder(DEFAULT_MODEL)
    assert isinstance(encoder, TransformersEmbedder)
    assert any("exporter exploded" in r.getMessage() for r in caplog.records)
    key_dir = onnx.cache_root() / onnx.model_key(Path(resolve_model(DEFAULT_MODEL)))[:16]
    assert sorted(p.name for p in key_dir.iterdir()) == [".export.lock"]  # no half-written model or temp folder


def test_serve_threads_gives_onnx_runtime_one_thread(cached, monkeypatch):
    monkeypatch.setattr(cpu, "_threads", None)
    folder = Path(resolve_model(DEFAULT_MODEL))
    assert cpu.intra_op_threads() == 0
    monkeypatch.setattr(cpu, "_threads", 1)
    encoder = onnx.OnnxEmbedder(DEFAULT_MODEL, folder, *_plain_pooling(folder))
    assert encoder.session.get_session_options().intra_op_num_threads == 1


# ---- the cache, with a stand-in exporter (no torch) on a fake model folder ----

def tiny_model(path) -> None:
    """A valid ONNX model (Identity), standing in for an export."""
    import onnx as onnx_lib
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "tiny", [x], [y])
    onnx_lib.save(helper.make_model(graph), str(path))


@pytest.fixture
def fake_folder(tmp_path, monkeypatch) -> tuple[Path, list[str]]:
    """A model folder with made-up weights, XDG_CACHE_HOME under tmp, and a recording stand-in exporter."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "model.safetensors").write_bytes(b"weights one")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    exports: list[str] = []

    def fake_export(source, target):
        exports.append(str(source))
        tiny_model(target)

    monkeypatch.setattr(onnx, "export", fake_export)
    return folder, exports


def test_the_export_is_cached_and_keyed_by_the_weights_hash(fake_folder):
    folder, exports = fake_folder
    first = onnx.exported_model(folder)
    assert onnx.exported_model(folder) == first and len(exports) == 1  # once
    assert first.parent.parent.name == onnx.model_key(folder)[:16]
    (folder / "model.safetensors").write_bytes(b"weights two")  # same size, new content
    second = onnx.exported_model(folder)
    assert second != first and second.is_file() and first.is_file() and len(exports) == 2
    (folder / "model.safetensors").write_bytes(b"weights one")  # back to the first weights: that export again
    assert onnx.exported_model(folder) == first and len(exports) == 2


def test_the_weights_are_hashed_once_while_the_file_is_unchanged(fake_folder, monkeypatch):
    import hashlib

    folder, _ = fake_folder
    reads: list[str] = []
    real = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda f, name: reads.append(name) or real(f, name))
    key = onnx.model_key(folder)
    assert onnx.model_key(folder) == key and len(reads) == 1
    digest = hashlib.sha256(b"weights one").hexdigest()
    assert digest in {p.read_text().strip() for p in (onnx.cache_root() / "digests").iterdir()}


def test_a_model_folder_without_weights_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no weights"):
        onnx.model_key(tmp_path)
