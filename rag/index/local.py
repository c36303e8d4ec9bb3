"""The local index directory: FAISS + BM25 + passages + manifest, saved as a new generation, loaded
with checks (the `Store` protocol).

Layout of `index/` (format 5):
  manifest.json          `Manifest` plus checksums of the files below and library versions
  passages.jsonl         one passage a line, in index order (doc, start, end, text, heading, ...)
  passage_table.npy      per passage: where its line starts, its document's number, start, end, year
  dense.faiss            FAISS index of the passage vectors: exact IndexFlatIP up to
                         `rag.index.ann.ANN_THRESHOLD` passages, an inverted file (IVF) above
  bm25/                  bm25s's own files (.npy and .json; no pickle)
  sentences.npy          every passage's sentences' vectors (`split_sentences` order), passage after
  sentence_scales.npy    passage, as int8 codes and a scale each (`rag.index.compact`);
  sentence_rows.npy      where each passage's rows start
  texts.jsonl            every document's text, one a line; documents.json names them in that order
  text_offsets.npy       and text_offsets.npy says where each line starts
  aliases.json           other names the documents use (`rag.index.alias_groups`), found once here

`save` writes a temporary sibling directory and swaps it in (`rag.index.generations`: a crash leaves
the previous index usable; readers get one generation whole); it never replaces a file or a folder
that holds anything but index files. `load` refuses a missing, corrupted or other-version index with
a one-line `IndexStateError` naming what is wrong (an index of format 4 or older: "rebuild it").
Does not chunk, embed or search (`LocalIndex` is searched by `rag.search`), nor fsync: a killed
build is survived, a power cut mid-save may not be.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np

from rag.index import alias_groups, ann, compact, lexical, records
from rag.index.flat import LocalIndex
from rag.index.generations import (  # noqa: F401 - the file names and lock path, for callers of this store
    ALIASES, BM25, DENSE, DOCUMENTS, MANIFEST, MAP_BYTES, PASSAGE_TABLE, PASSAGES, SENTENCE_ROWS, SENTENCE_SCALES, SENTENCES,
    TEXT_OFFSETS, TEXTS, VerifiedFile, check_replaceable, leftovers, lock_path, read_generation, settle, swap_in,
)
from rag.index.store import FORMAT_VERSION, Manifest, check_contents

_LIBRARIES = ("rag-assistant", "faiss-cpu", "sentence-transformers", "onnxruntime", "openvino", "bm25s",
              "langchain-text-splitters")


class LocalStore:
    """An index directory on this machine (the `Store` protocol)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.location = str(path)
        self.lock_path = lock_path(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def read_manifest(self) -> Manifest:
        return read_manifest(self.path)

    def check_replaceable(self) -> None:
        """A build calls this first, holding the lock: so it also settles what crashed builds left."""
        settle(self.path)

    def load(self) -> LocalIndex:
        return load(self.path)

    def save(self, manifest: Manifest, passages, vectors: np.ndarray, sentences: np.ndarray,
             texts: Mapping[str, str]) -> LocalIndex:
        return save(self.path, manifest, passages, vectors, sentences, texts)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def library_versions(extra: tuple[str, ...] = ()) -> dict:
    """The installed version of each library an index depends on (and of `extra` ones), None if absent."""
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None
    return {name: version(name) for name in _LIBRARIES + tuple(extra)}


def save(index_dir: str | Path, manifest: Manifest, passages, vectors: np.ndarray,
         sentences: np.ndarray, texts: Mapping[str, str], *, ann_threshold: int | None = None,
         approximate: str = "ivf") -> LocalIndex:
    """Write the whole index (BM25 built here from the passages) to a temporary directory, swap it in
    place of `index_dir`, and return it loaded. `sentences` holds one vector per sentence of every
    passage, in passage order; `texts` every document's text, which every passage must be a span of.
    The dense index is exact up to `ann_threshold` passages (default `ann.ANN_THRESHOLD`), else
    `approximate` ("ivf" or "hnsw"). Run under the build lock (`settle` deletes other saves' temporaries)."""
    import faiss

    index_dir, passages = Path(index_dir), tuple(passages)
    texts = {doc: texts[doc] for doc in sorted(texts)}
    rows = check_contents(passages, vectors, sentences, texts)
    kind = ann.kind_for(len(passages), ann_threshold, approximate)
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    settle(index_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.tmp-", dir=index_dir.parent))
    try:
        tmp.chmod(0o755)
        numbers = {doc: i for i, doc in enumerate(texts)}
        records.save_npy(tmp / PASSAGE_TABLE, records.write_passages(tmp / PASSAGES, passages, numbers))
        records.save_npy(tmp / TEXT_OFFSETS, records.write_texts(tmp / TEXTS, texts))
        (tmp / DOCUMENTS).write_text(json.dumps(list(texts), ensure_ascii=False) + "\n", encoding="utf-8")
        faiss.write_index(ann.build(vectors, manifest.dim, kind), str(tmp / DENSE))
        bm25 = lexical.build([p.context() for p in passages])
        (tmp / BM25).mkdir()
        lexical.save(bm25, tmp / BM25)
        del bm25
        _save_sentences(tmp, sentences, manifest.dim)
        records.save_npy(tmp / SENTENCE_ROWS, rows)
        groups = alias_groups.to_json(alias_groups.find_groups(_passage_texts(passages)))
        (tmp / ALIASES).write_text(json.dumps(groups, ensure_ascii=False) + "\n", encoding="utf-8")
        files = [PASSAGES, PASSAGE_TABLE, DENSE] + sorted(f"{BM25}/{p.name}" for p in (tmp / BM25).iterdir())
        files += [SENTENCES, SENTENCE_SCALES, SENTENCE_ROWS, TEXTS, TEXT_OFFSETS, DOCUMENTS, ALIASES]
        manifest = Manifest(**{**asdict(manifest), "passages": len(passages),
                               "checksums": {name: _sha256(tmp / name) for name in files},
                               "versions": library_versions(), "format_version": FORMAT_VERSION})
        (tmp / MANIFEST).write_text(json.dumps(asdict(manifest), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        written = {name: _open(tmp / name) for name in files}  # what was just hashed, open before the swap
        swap_in(tmp, index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return LocalIndex.decode(index_dir, manifest, written)


def _passage_texts(passages) -> list[str]:
    """Each document's passages joined, documents in the order of their first passage: what the aliases
    are found in (the passages, not the documents' texts, as the retriever of an index without
    aliases.json finds them)."""
    texts: dict[str, list[str]] = {}
    for p in passages:
        texts.setdefault(p.doc, []).append(p.text)
    return ["\n".join(parts) for parts in texts.values()]


def _save_sentences(folder: Path, sentences: np.ndarray, dim: int) -> None:
    """sentences.npy and sentence_scales.npy: the vectors as int8 codes and scales, a block at a time."""
    codes = np.lib.format.open_memmap(folder / SENTENCES, mode="w+", dtype=np.int8, shape=(len(sentences), dim))
    scales = np.zeros(len(sentences), dtype=np.float32)
    for a in range(0, len(sentences), 65536):
        codes[a:a + 65536], scales[a:a + 65536] = compact.encode(sentences[a:a + 65536])
    codes.flush()
    del codes
    records.save_npy(folder / SENTENCE_SCALES, scales)


def _open(path: Path) -> bytes | VerifiedFile:
    """A file's bytes, or from `MAP_BYTES` on the file open (as `read_generation` gives it)."""
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    if size >= MAP_BYTES:
        return VerifiedFile(fd, size)
    with open(fd, "rb") as f:
        return f.read()


def read_manifest(index_dir: str | Path) -> Manifest:
    """The manifest alone (no checksums verified); IndexStateError when there is no index."""
    return read_generation(Path(index_dir), checked=False)[0]


def load(index_dir: str | Path) -> LocalIndex:
    """Read and check one generation of an index directory; IndexStateError names the first thing wrong."""
    index_dir = Path(index_dir)
    manifest, files = read_generation(index_dir, checked=True)
    return LocalIndex.decode(index_dir, manifest, files)
