"""`MilvusStore`: an index kept in Milvus (the `Store` protocol), saved as a new generation of three
collections (`rag.index.milvus.schema`) and switched to by moving the alias COLLECTION, so readers
find the old generation or the new one whole, never a mix. The generation just replaced is kept until
the next save (a web replica or another process that loaded it keeps answering from it until it
reloads); older ones are dropped after the switch. A build that dies midway leaves its unfinished
collections beside the current generation, which stays searchable; `check_replaceable` (called by a
build under its lock) drops them. `lock_path` is a file on this machine: builds on one machine take turns, builds on two
machines against one server do not (run them from one place). A collection called COLLECTION that
is not this store's alias, or a generation without a manifest, is "not a rag index" and is never
replaced. Does not chunk, embed or search (`MilvusIndex` searches).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import asdict, fields

import numpy as np

from rag.errors import IndexStateError
from rag.index import compact, lexical
from rag.index.local import library_versions
from rag.index.milvus import schema
from rag.index.milvus.client import CALL_TIMEOUT, connect, failing, parse
from rag.index.milvus.index import MAX_LIMIT, MilvusIndex, iterate
from rag.index.store import FORMAT_VERSION, Manifest, check_contents

BATCH_BYTES = 8 << 20  # bytes of rows one insert sends


class MilvusStore:
    """An index in a Milvus collection (server or Milvus Lite file), selected by a `milvus:` URI."""

    def __init__(self, uri: str):
        self.where = parse(str(uri))
        self.location = self.where.uri
        self.lock_path = self.where.lock_path
        self._client = None
        self._lock = threading.Lock()
        self._loaded: set[str] = set()  # generations whose collections this store has loaded

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                self._client = connect(self.where)
            return self._client

    def _call(self, what: str, method: str, *args, **kwargs):
        with failing(self.where, what):
            return getattr(self.client, method)(*args, **kwargs)

    def _current(self) -> str | None:
        """The passages collection the alias names (None: no index); IndexStateError for a collection of
        that name that is not this store's."""
        base = self.where.collection
        aliases = self._call("listing aliases", "list_aliases").get("aliases", [])
        if base in aliases:
            target = self._call(f"reading alias {base!r}", "describe_alias", base)["collection_name"]
            if schema.generation_of(base, target) is None:
                raise self._not_ours(f"its alias names collection {target!r}")
            return target
        if base in self._call("listing collections", "list_collections"):
            raise self._not_ours("a collection of that name that is no rag index generation")
        return None

    def _not_ours(self, why: str) -> IndexStateError:
        return IndexStateError(f"Milvus collection {self.where.collection!r} at {self.location!r} is not a rag index "
                               f"({why}); choose another collection name")

    def exists(self) -> bool:
        return self._current() is not None

    def _meta(self, name: str, record: str) -> str | None:
        rows = self._call(f"reading the {record} of {name!r}", "query", schema.meta_name(name),
                          filter=f'name == "{record}"', output_fields=["key", "part", "data"], limit=MAX_LIMIT)
        return schema.joined(rows).get(0)

    def read_manifest(self) -> Manifest:
        return self._manifest(self._generation())[0]

    def _generation(self) -> str:
        name = self._current()
        if name is None:
            raise IndexStateError(f"no index at {self.location!r}; build one with `rag index DOCS --store {self.location}`")
        return name

    def _manifest(self, name: str) -> tuple[Manifest, str | None]:
        collections = self._call("listing collections", "list_collections")
        if schema.meta_name(name) not in collections:
            raise self._not_ours(f"generation {name!r} has no {schema.meta_name(name)!r}")
        self._load_generation(name, collections)
        data = self._meta(name, "manifest")
        if data is None:
            raise self._not_ours(f"generation {name!r} has no manifest")
        try:
            raw = json.loads(data)
            manifest = Manifest(**{f.name: raw[f.name] for f in fields(Manifest) if f.name in raw})
        except (ValueError, TypeError) as exc:
            raise IndexStateError(f"index at {self.location!r} could not be read: manifest: {exc}") from None
        return manifest, self._meta(name, "format")

    def _load_generation(self, name: str, collections: list) -> None:
        """Load the generation's collections into memory (a restarted server or another process's
        Milvus Lite file has them released), once per generation for this store."""
        if name in self._loaded:
            return
        for collection in (name, schema.sentences_name(name), schema.meta_name(name)):
            if collection in collections:
                self._call(f"loading {collection!r}", "load_collection", collection)
        self._loaded.add(name)

    def check_replaceable(self) -> None:
        """Refuses a collection that is not a rag index; drops what crashed builds left (generations
        after the current one) and generations before the one it replaced."""
        current = self._current()
        keep = schema.generation_of(self.where.collection, current) if current else None
        names = self._call("listing collections", "list_collections")
        generations = {name: schema.generation_of(self.where.collection, name) for name in names}
        previous = max((g for g in generations.values() if g is not None and keep is not None and g < keep),
                       default=None)
        for name, g in generations.items():
            if g is not None and g not in (keep, previous):
                self._call(f"dropping leftover collection {name!r}", "drop_collection", name)

    def load(self) -> MilvusIndex:
        name = self._generation()
        manifest, fmt = self._manifest(name)
        where = f"index at {self.location!r}"
        if fmt != schema.FORMAT or manifest.format_version != FORMAT_VERSION:
            raise IndexStateError(f"{where} is of format {fmt or '?'}/{manifest.format_version}, not "
                                  f"{schema.FORMAT}/{FORMAT_VERSION}; rebuild it")
        described = self._call(f"describing {name!r}", "describe_collection", name)
        dim = next((f.get("params", {}).get("dim") for f in described["fields"] if f["name"] == "vector"), None)
        if dim is None or int(dim) != manifest.dim:
            raise IndexStateError(f"{where} has vectors of dimension {dim}, manifest says {manifest.dim}")
        docs = json.loads(self._meta(name, "documents") or "[]")
        rows = [None] * manifest.passages
        for row in iterate(self.client, self.where, name, "", schema.PASSAGE_FIELDS, "reading the passages"):
            i = int(row["id"])
            if not 0 <= i < len(rows):
                raise IndexStateError(f"{where} is inconsistent: passage {i}, manifest says {manifest.passages}")
            rows[i] = row
        if any(row is None for row in rows):
            raise IndexStateError(f"{where} is inconsistent: {sum(r is not None for r in rows)} passages, "
                                  f"manifest says {manifest.passages}")
        return self._index(name, manifest, [schema.passage_of(r) for r in rows], docs,
                           [int(r["sentences"]) for r in rows], [int(r["doc_no"]) for r in rows])

    def _index(self, name, manifest, passages, docs, counts, doc_ids) -> MilvusIndex:
        return MilvusIndex(self.where, self.client, name, manifest, tuple(passages), list(docs),
                           np.asarray(counts, np.int64), np.asarray(doc_ids, np.int64),
                           np.asarray([p.year or 0 for p in passages], np.int64))

    def save(self, manifest: Manifest, passages, vectors: np.ndarray, sentences: np.ndarray,
             texts: Mapping[str, str]) -> MilvusIndex:
        """Write a new generation, switch the alias to it, drop the ones before the generation it
        replaced (which is kept for readers still holding it); returns the new one loaded."""
        passages = tuple(passages)
        texts = {doc: texts[doc] for doc in sorted(texts)}
        rows = check_contents(passages, vectors, sentences, texts)
        _check_lengths(passages)
        counts = np.diff(rows)
        current = self._current()
        taken = [schema.generation_of(self.where.collection, n) for n in self._call("listing collections", "list_collections")]
        name = schema.passages_name(self.where.collection, max([g for g in taken if g is not None], default=0) + 1)
        numbers = {doc: i for i, doc in enumerate(texts)}
        contexts = [p.context() for p in passages]
        analysed = [" ".join(tokens) for tokens in lexical.tokenize(contexts)] if passages else []
        stats = lexical.term_stats(lexical.build(contexts))
        manifest = Manifest(**{**asdict(manifest), "passages": len(passages), "checksums": {},
                               "versions": library_versions(("pymilvus", "milvus-lite")), "format_version": FORMAT_VERSION})
        sentences = compact.decode(*compact.encode(sentences)) if len(sentences) else sentences  # as stored locally
        dim = manifest.dim
        with failing(self.where, f"writing generation {name!r}"):
            schema.create(self.client, name, dim, len(passages))
            schema.insert(self.client, name, [
                schema.passage_row(i, p, analysed[i], numbers[p.doc], vectors[i].tolist(), int(counts[i]))
                for i, p in enumerate(passages)], BATCH_BYTES,
                4 * dim + 3 * max((len(p.text) for p in passages), default=0) * 4 + 2048, CALL_TIMEOUT)
            doc_ids = [numbers[p.doc] for p in passages]
            years = [p.year or 0 for p in passages]
            owner = np.repeat(np.arange(len(passages)), counts)
            schema.insert(self.client, schema.sentences_name(name), [
                {"id": j, "passage": int(i), "number": j - int(rows[i]), "doc_no": doc_ids[i], "year": years[i],
                 "vector": sentences[j].tolist()} for j, i in enumerate(owner)], BATCH_BYTES, 12 * dim + 64, CALL_TIMEOUT)
            records = [("format", 0, schema.FORMAT), ("documents", 0, json.dumps(list(texts), ensure_ascii=False)),
                       ("terms", 0, json.dumps({"n": stats.n, "ids": stats.ids, "indptr": stats.indptr.tolist()},
                                               ensure_ascii=False))]
            records += [("text", numbers[doc], text) for doc, text in texts.items()]
            meta = schema.meta_rows(records)
            meta += schema.meta_rows([("manifest", 0, json.dumps(asdict(manifest), ensure_ascii=False))], len(meta))
            schema.insert(self.client, schema.meta_name(name), meta[:-1], BATCH_BYTES, 4 * schema.PIECE, CALL_TIMEOUT)
            for collection in (name, schema.sentences_name(name), schema.meta_name(name)):
                self.client.flush(collection, timeout=CALL_TIMEOUT)
            # the manifest's last piece goes in last: a generation without a whole manifest is unfinished
            schema.insert(self.client, schema.meta_name(name), meta[-1:], BATCH_BYTES, 4 * schema.PIECE, CALL_TIMEOUT)
            self.client.flush(schema.meta_name(name), timeout=CALL_TIMEOUT)
        if current is None:
            self._call(f"creating alias {self.where.collection!r}", "create_alias", name, self.where.collection)
        else:
            self._call(f"switching alias {self.where.collection!r}", "alter_alias", name, self.where.collection)
            replaced = schema.generation_of(self.where.collection, current)
            for old in self._call("listing collections", "list_collections"):  # kept: the one just replaced
                g = schema.generation_of(self.where.collection, old)
                if g is not None and g < replaced:
                    self._call(f"dropping an older generation's {old!r}", "drop_collection", old)
        return self._index(name, manifest, passages, list(texts), counts, doc_ids)


def _check_lengths(passages) -> None:
    """IndexStateError for a passage too long for a Milvus VARCHAR with its analysed text."""
    long = next((p for p in passages if len(p.text.encode("utf-8")) > schema.MAX_VARCHAR // 2), None)
    if long is not None:
        raise IndexStateError(f"passage {long.id} is longer than a Milvus VARCHAR holds with its analysed text")

