"""`rag eval`: score our pipeline's configs and the textbook LangChain pipeline on one QA set.

Builds (or reuses) the index of the documents folder through `rag.pipeline`, then runs each config
("hybrid", "dense", "bm25", "naive") over every question: search figures, then answer figures. Each
finished config is handed to `on_config` at once (the CLI saves the report as it goes); a config
that cannot run (the baseline without its extra) is skipped with the reason and the others still
run. An index for a folder other than `seeds/` is cached under `~/.cache/rag/indexes/`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rag.errors import RagError
from rag.evaluate.metrics import answer_metrics, retrieval_metrics
from rag.evaluate.qa import load_qa
from rag.pipeline import Pipeline
from rag.settings import DEFAULT_DOCS, DEFAULT_INDEX, MODES
from rag.types import Progress

CONFIGS = (*MODES, "naive")


def default_index_for(docs: str | Path) -> Path:
    """`index/` for the seeds; a per-folder cache directory for any other documents folder."""
    import hashlib
    import os

    docs = Path(docs).resolve()
    if docs == Path(DEFAULT_DOCS).resolve():
        return Path(DEFAULT_INDEX)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag" / "indexes"
    return cache / f"{docs.name}-{hashlib.sha256(str(docs).encode()).hexdigest()[:8]}"


def run_eval(qa: str | Path, docs: str | Path, index_dir: str | Path | None = None,
             configs: Sequence[str] = CONFIGS, answers: bool = True, progress: Progress | None = None,
             on_config: Callable[[dict], None] | None = None, reader: object = None) -> dict:
    """Build (or reuse) the index for `docs`, then score every config on the QA file; `on_config(report)`
    after each config (report["configs"] holds the finished ones, report["skipped"] config -> why).
    `reader`: the optional reader every config answers with (`rag.answer.reader`)."""
    load_qa(qa, docs)  # a bad QA file is refused before any index work
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise RagError(f"unknown config {unknown[0]!r}; choose from {', '.join(CONFIGS)}")
    index_dir = index_dir or default_index_for(docs)  # a directory or a store URI
    # `docs` alone (no uploads folder), so the figures are of that folder; a model loads only to embed something
    ours = Pipeline.open(index_dir, docs, progress=progress, uploads=False, reader=reader)
    items = load_qa(qa, docs, ours.retriever.document_text)  # gold spans in the very text the index cites
    report = {"qa": str(qa), "docs": str(docs), "index": str(index_dir), "n": len(items),
              "n_answerable": sum(1 for it in items if it.answers), "n_unanswerable": sum(it.unanswerable for it in items),
              "configs": {}, "skipped": {}}
    for config in configs:
        if config == "naive":
            from rag.evaluate.baseline import NaiveRetriever

            try:
                pipeline, mode = Pipeline(NaiveRetriever(docs, ours.retriever.embedder), reader=ours.reader), None
            except RagError as exc:  # e.g. langchain-community not installed: the other configs still count
                report["skipped"][config] = str(exc)
                if on_config:
                    on_config(report)
                continue
        else:
            pipeline, mode = ours, config
        pipeline.search("warm up", k=1, mode=mode)
        pipeline.retriever.clear_cache()  # every config pays for encoding its questions
        result = retrieval_metrics(items, lambda q: pipeline.search(q, k=10, mode=mode))
        if answers:
            pipeline.retriever.clear_cache()
            result.update(answer_metrics(items, lambda q: pipeline.ask(q, mode=mode)))
        report["configs"][config] = result
        if on_config:
            on_config(report)
    return report
