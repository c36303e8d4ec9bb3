"""Retrieval and answer figures of one system over a QA set.

`retrieval_metrics`: recall@1/3/5/10, mrr@10 and search latency; `answer_metrics`: answer and
citation accuracy, abstention precision and recall, answer length and ask latency. Each takes the
system as a plain function of the question. Does not build indexes or load QA files.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from rag.evaluate.qa import QAItem, answer_correct, overlaps
from rag.types import Answer, Passage

KS = (1, 3, 5, 10)


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


