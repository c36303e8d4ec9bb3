"""Retrieval and answer figures of the default model's encoders on one QA set (hybrid mode).

Builds an index of the documents folder with each encoder, in a temporary folder, and scores it the
way `rag eval` does (`rag.evaluate.metrics`):

  sentence-transformers   built and asked with sentence-transformers (the figures before ONNX)
  ST index, ONNX fp32     the same index, questions encoded with ONNX Runtime (an index built
                          before the change, searched after it)
  ONNX fp32               built and asked with ONNX Runtime (today's default)
  ONNX int8               built and asked with the int8 model (all-MiniLM-L6-v2-int8)

    python eval/eval_encoders.py [--qa eval/qa.jsonl] [--docs seeds] [--runs st,st-onnx,onnx,int8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("recall@1", "recall@5", "mrr@10", "answer_accuracy", "citation_accuracy", "abstention_precision",
           "abstention_recall", "answered")


def score(pipeline, qa: Path, docs: Path) -> dict:
    from rag.evaluate.metrics import answer_metrics, retrieval_metrics
    from rag.evaluate.qa import load_qa

    items = load_qa(qa, docs, pipeline.retriever.document_text)
    result = retrieval_metrics(items, lambda q: pipeline.search(q, k=10, mode="hybrid"))
    pipeline.retriever.clear_cache()
    result.update(answer_metrics(items, lambda q: pipeline.ask(q, mode="hybrid")))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qa", type=Path, default=ROOT / "eval" / "qa.jsonl")
    parser.add_argument("--docs", type=Path, default=ROOT / "seeds")
    parser.add_argument("--runs", default="st,st-onnx,onnx,int8",
                        help="which of st, st-onnx, onnx, int8 (comma-separated; default all)")
    args = parser.parse_args(argv)
    wanted = args.runs.split(",")

    from rag.index.embed import DEFAULT_MODEL, INT8_MODEL, SentenceTransformerEmbedder, query_embedder
    from rag.pipeline import Pipeline

    torch_encoder, fp32, int8 = SentenceTransformerEmbedder(DEFAULT_MODEL), query_embedder(DEFAULT_MODEL), \
        query_embedder(INT8_MODEL)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="rag-encoders-") as tmp:
        runs = {"st": ("sentence-transformers", "st", torch_encoder), "st-onnx": ("ST index, ONNX fp32", "st", fp32),
                "onnx": ("ONNX fp32", "onnx", fp32), "int8": ("ONNX int8", "int8", int8)}
        for label, folder, encoder in (runs[name] for name in wanted):
            t0 = time.perf_counter()
            pipeline = Pipeline.open(Path(tmp) / folder, args.docs, embedder=encoder, uploads=False)
            built = time.perf_counter() - t0
            rows[label] = {**score(pipeline, args.qa, args.docs), "open_s": round(built, 1)}
            print(f"{label}: done", file=sys.stderr)
    print(f"{len(rows)} encoders on {args.qa} over {args.docs}, hybrid")
    columns = (*COLUMNS, "open_s")
    print("| encoder | " + " | ".join(columns) + " |")
    print("| --- |" + " ---: |" * len(columns))
    for label, row in rows.items():
        print(f"| {label} | " + " | ".join("-" if row.get(c) is None else str(row[c]) for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
