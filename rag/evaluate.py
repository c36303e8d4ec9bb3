"""Score retrieval and answers against a QA set (one JSON object a line).

Format: {"id", "question", "answers": [...] | [] (unanswerable) | null (retrieval only),
"sources": [{"doc", "quote"?}]}. A retrieved passage is relevant when it overlaps the character span
of a gold quote in the right file (a source without a quote makes every passage of that doc
relevant), so the figures do not depend on how a system chunks. Reports recall@1/3/5/10 and
mrr@10 and search latency per config; with an answerer, also answer and citation accuracy,
abstention precision and recall, answer length and ask latency. Does not build indexes itself.
"""

from __future__ import annotations

import json
import re
import statistics
import string
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import DocumentError, RagError
from rag.load import read_text
from rag.types import Answer, Passage

KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class GoldSpan:
    doc: str
    start: int | None = None  # None: any passage of the doc is relevant
    end: int | None = None


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: tuple[str, ...] | None  # () unanswerable, None retrieval only
    gold: tuple[GoldSpan, ...]

    @property
    def unanswerable(self) -> bool:
        return self.answers == ()


def load_qa(path: str | Path, docs: str | Path) -> list[QAItem]:
    """Read a QA file and locate every gold quote in its document; errors name the line."""
    path, docs = Path(path), Path(docs)
    if not path.is_file():
        raise RagError(f"QA file {str(path)!r} does not exist")
    texts: dict[str, str] = {}
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question, answers, sources = row["question"], row.get("answers"), row.get("sources") or []
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{path}:{n}: not a QA object ({exc})") from None
        gold = []
        for src in sources:
            if not isinstance(src, dict) or not isinstance(src.get("doc"), str):
                raise RagError(f"{path}:{n}: a source must be an object with a \"doc\" file name, not {src!r}")
            doc = src["doc"]
            if doc not in texts:
                try:
                    texts[doc] = read_text(docs / doc)
                except (OSError, DocumentError) as exc:
                    raise RagError(f"{path}:{n}: source document {doc!r} cannot be read from {str(docs)!r}: {exc}") from None
            quote = src.get("quote")
            if not quote:
                gold.append(GoldSpan(doc))
                continue
            at = texts[doc].find(quote)
            if at < 0:
                raise RagError(f"{path}:{n}: quote {quote[:50]!r} not found in {doc!r}")
            while at >= 0:  # a quote that occurs twice (a repeated caption) is found at either place
                gold.append(GoldSpan(doc, at, at + len(quote)))
                at = texts[doc].find(quote, at + 1)
        items.append(QAItem(str(row.get("id", n)), question, None if answers is None else tuple(answers), tuple(gold)))
    if not items:
        raise RagError(f"QA file {str(path)!r} has no questions")
    return items


def overlaps(doc: str, start: int, end: int, gold: Iterable[GoldSpan]) -> bool:
    return any(g.doc == doc and (g.start is None or (start < g.end and g.start < end)) for g in gold)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_MARKERS = re.compile(r"\[\d+\]")
_PUNCT = str.maketrans({c: " " for c in string.punctuation + "“”‘’–—"})


def normalize(text: str) -> str:
    """SQuAD-style: lower-case, drop [n] markers, punctuation and articles, fold white space."""
    text = _MARKERS.sub(" ", text.lower()).translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_correct(answer_text: str, answers: Iterable[str]) -> bool:
    got = f" {normalize(answer_text)} "
    return any(normalize(a) and f" {normalize(a)} " in got for a in answers)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))]


def retrieval_metrics(items: list[QAItem], search: Callable[[str], list[Passage]]) -> dict:
    """recall@k, mrr@10 and latency for the items that have gold sources."""
    scored = [it for it in items if it.gold]
    ranks, latencies = [], []
    for it in scored:
        t0 = time.perf_counter()
        passages = search(it.question)
        latencies.append((time.perf_counter() - t0) * 1000)
        rank = next((r for r, p in enumerate(passages[:10], 1) if overlaps(p.doc, p.start, p.end, it.gold)), None)
        ranks.append(rank)
    n = len(scored) or 1
    out = {f"recall@{k}": round(sum(1 for r in ranks if r and r <= k) / n, 4) for k in KS}
    out["mrr@10"] = round(sum(1 / r for r in ranks if r) / n, 4)
    out["latency_p50_ms"] = round(_percentile(latencies, 50), 2)
    out["latency_p95_ms"] = round(_percentile(latencies, 95), 2)
    out["n_retrieval"] = len(scored)
    return out


def answer_metrics(items: list[QAItem], ask: Callable[[str], Answer]) -> dict:
    """Answer and citation accuracy, abstention precision/recall, answer length and latency."""
    answerable = correct = answered = cited = abstained = true_abstained = unanswerable = 0
    lengths, latencies = [], []
    for it in items:
        if it.answers is None:
            continue
        t0 = time.perf_counter()
        answer = ask(it.question)
        latencies.append((time.perf_counter() - t0) * 1000)
        abstained += answer.abstained
        if it.unanswerable:
            unanswerable += 1
            true_abstained += answer.abstained
            continue
        answerable += 1
        if answer.abstained:
            continue
        answered += 1
        lengths.append(len(answer.text))
        correct += answer_correct(answer.text, it.answers)
        cited += any(overlaps(c.doc, c.start, c.end, it.gold) for c in answer.citations) if it.gold else 0
    with_quotes = sum(1 for it in items if it.answers and it.gold)
    return {
        "answer_accuracy": round(correct / answerable, 4) if answerable else None,
        "citation_accuracy": round(cited / answered, 4) if answered and with_quotes else None,
        "abstention_precision": round(true_abstained / abstained, 4) if abstained else None,
        "abstention_recall": round(true_abstained / unanswerable, 4) if unanswerable else None,
        "answered": answered,
        "answer_chars_p50": round(float(statistics.median(lengths)), 1) if lengths else 0.0,
        "ask_latency_p50_ms": round(_percentile(latencies, 50), 2),
        "ask_latency_p95_ms": round(_percentile(latencies, 95), 2),
    }


def default_index_for(docs: str | Path) -> Path:
    """`index/` for the seeds; a per-folder cache directory for any other documents folder."""
    import hashlib
    import os

    docs = Path(docs).resolve()
    if docs == Path("seeds").resolve():
        return Path("index")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag" / "indexes"
    return cache / f"{docs.name}-{hashlib.sha256(str(docs).encode()).hexdigest()[:8]}"


CONFIGS = ("hybrid", "dense", "bm25", "naive")


def run_eval(qa: str | Path, docs: str | Path, index_dir: str | Path | None = None,
             configs: Sequence[str] = CONFIGS, answers: bool = True, progress=None) -> dict:
    """Build (or reuse) the index for `docs`, then score every config on the QA file."""
    from rag.answer import Assistant
    from rag.build import build_index
    from rag.retrieve import Retriever

    items = load_qa(qa, docs)
    index_dir = Path(index_dir) if index_dir else default_index_for(docs)
    build_index(docs, index_dir, progress=progress)  # loads a model only if something needs embedding
    retriever = Retriever.load(index_dir)
    embedder = retriever.embedder
    report = {"qa": str(qa), "docs": str(docs), "index": str(index_dir), "n": len(items),
              "n_answerable": sum(1 for it in items if it.answers), "n_unanswerable": sum(it.unanswerable for it in items),
              "configs": {}}
    for config in configs:
        if config == "naive":
            from rag.baseline import NaiveRetriever

            searcher, mode = NaiveRetriever(docs, embedder), "naive"
        elif config in ("hybrid", "dense", "bm25"):
            searcher, mode = retriever, config
        else:
            raise RagError(f"unknown config {config!r}; choose from {', '.join(CONFIGS)}")
        searcher.search("warm up", k=1, mode=mode)
        if hasattr(searcher, "clear_cache"):
            searcher.clear_cache()  # every config pays for encoding its questions
        result = retrieval_metrics(items, lambda q: searcher.search(q, k=10, mode=mode))
        if answers:
            if hasattr(searcher, "clear_cache"):
                searcher.clear_cache()
            assistant = Assistant(searcher, mode=mode, docs=docs)
            result.update(answer_metrics(items, lambda q: assistant.ask(q)))
        report["configs"][config] = result
    return report
