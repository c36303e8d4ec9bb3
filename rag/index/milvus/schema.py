"""The three collections of one generation of a Milvus index, and how rows are written to them.

A generation `g` of collection C is:
  C__g<g>            a row per passage: `id` (its position in index order, the primary key), `vector`
                     (FLOAT_VECTOR, inner product), `bm25_text` (the passage's context analysed by
                     `rag.index.lexical.tokenize`, stems joined by spaces) feeding Milvus's own BM25
                     function into `sparse`, and the passage's fields (doc, doc_no, start, end, heading
                     and page_breaks as JSON, title, year (0: none), kind, line, page (0: none), text,
                     sentences: how many sentence vectors it has)
  C__g<g>_sentences  a row per sentence: `id` (its row over all passages), `passage`, `number` (its
                     place in `split_sentences` order), `vector`, `doc_no`, `year` (for filters)
  C__g<g>_meta       named records as VARCHAR pieces (`name`, `key`, `part`, `data`): "manifest" (last
                     written: a generation without one is unfinished), "documents", "terms" (the BM25
                     term statistics) and "text" (one per document, `key` its number); `dummy` is the
                     tiny vector field Milvus requires of every collection
The alias C names the current generation. Vectors are searched exactly (FLAT) up to `ANN_THRESHOLD`
passages, through HNSW above. Does not decide when generations are made or dropped.
"""

from __future__ import annotations

import json
import re

from rag.index.ann import ANN_THRESHOLD

MAX_VARCHAR = 65535  # bytes in a Milvus VARCHAR
PIECE = 16000  # characters of a meta record per row (at most 4 bytes each in UTF-8)
BM25_K1, BM25_B = 1.5, 0.75  # bm25s's defaults, which `rag.index.lexical.build` uses
HNSW_PARAMS = {"M": 48, "efConstruction": 200}
HNSW_EF = 256
FORMAT = "rag-milvus-1"  # the "format" record of a generation this module writes
DOC_BYTES, SHORT = 4096, 1024


def passages_name(collection: str, generation: int) -> str:
    return f"{collection}__g{generation}"


def sentences_name(passages: str) -> str:
    return f"{passages}_sentences"


def meta_name(passages: str) -> str:
    return f"{passages}_meta"


def generation_of(collection: str, name: str) -> int | None:
    """The generation a collection named `name` belongs to (any of its three), or None."""
    found = re.fullmatch(re.escape(collection) + r"__g(\d+)(?:_sentences|_meta)?", name)
    return int(found[1]) if found else None


def approximate(passages: int) -> bool:
    return passages > ANN_THRESHOLD


def create(client, passages: str, dim: int, count: int) -> None:
    """Create the three collections of a generation (indexed, loaded, empty)."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    dense = ({"index_type": "HNSW", "metric_type": "IP", "params": HNSW_PARAMS} if approximate(count)
             else {"index_type": "FLAT", "metric_type": "IP", "params": {}})

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("bm25_text", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True,
                     analyzer_params={"tokenizer": "standard"})
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    for name, size in (("doc", DOC_BYTES), ("heading", MAX_VARCHAR), ("title", SHORT * 4), ("kind", 64),
                       ("page_breaks", MAX_VARCHAR), ("text", MAX_VARCHAR)):
        schema.add_field(name, DataType.VARCHAR, max_length=size)
    for name in ("doc_no", "start", "end", "year", "line", "page", "sentences"):
        schema.add_field(name, DataType.INT64)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["bm25_text"],
                                 output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index(field_name="vector", **dense)
    index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                    params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
    client.create_collection(passages, schema=schema, index_params=index)

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    for name in ("passage", "number", "doc_no", "year"):
        schema.add_field(name, DataType.INT64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", **dense)
    client.create_collection(sentences_name(passages), schema=schema, index_params=index)

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("name", DataType.VARCHAR, max_length=64)
    schema.add_field("key", DataType.INT64)
    schema.add_field("part", DataType.INT64)
    schema.add_field("data", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("dummy", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index(field_name="dummy", index_type="FLAT", metric_type="L2", params={})
    client.create_collection(meta_name(passages), schema=schema, index_params=index)


def passage_row(i: int, p, bm25_text: str, doc_no: int, vector, sentences: int) -> dict:
    return {"id": i, "vector": vector, "bm25_text": bm25_text, "doc": p.doc, "doc_no": doc_no, "start": p.start,
            "end": p.end, "heading": json.dumps(list(p.heading), ensure_ascii=False), "title": p.title,
            "year": p.year or 0, "kind": p.kind, "line": p.line, "page": p.page or 0,
            "page_breaks": json.dumps(list(p.page_breaks)), "text": p.text, "sentences": sentences}


PASSAGE_FIELDS = ["id", "doc", "doc_no", "start", "end", "heading", "title", "year", "kind", "line", "page",
                  "page_breaks", "text", "sentences"]


def passage_of(row: dict):
    from rag.types import Passage

    return Passage(doc=row["doc"], start=int(row["start"]), end=int(row["end"]), text=row["text"],
                   heading=tuple(json.loads(row["heading"])), title=row["title"], year=int(row["year"]) or None,
                   kind=row["kind"], line=int(row["line"]), page=int(row["page"]) or None,
                   page_breaks=tuple(json.loads(row["page_breaks"])))


def meta_rows(records: list[tuple[str, int, str]], first_id: int = 0) -> list[dict]:
    """Rows holding each (name, key, data) record in pieces of at most `PIECE` characters."""
    rows = []
    for name, key, data in records:
        pieces = [data[a:a + PIECE] for a in range(0, len(data), PIECE)] or [""]
        for part, piece in enumerate(pieces):
            rows.append({"id": first_id + len(rows), "name": name, "key": key, "part": part, "data": piece,
                         "dummy": [0.0, 0.0]})
    return rows


def joined(rows: list[dict]) -> dict[int, str]:
    """Each key's record put back together from its rows."""
    parts: dict[int, list[tuple[int, str]]] = {}
    for row in rows:
        parts.setdefault(int(row["key"]), []).append((int(row["part"]), row["data"]))
    return {key: "".join(data for _, data in sorted(pieces)) for key, pieces in parts.items()}


def insert(client, name: str, rows: list[dict], batch_bytes: int, row_bytes: int, timeout: float) -> None:
    """Insert `rows` in batches of about `batch_bytes` (a gRPC message has a size limit)."""
    step = max(1, batch_bytes // max(1, row_bytes))
    for a in range(0, len(rows), step):
        client.insert(name, rows[a:a + step], timeout=timeout)
