"""Calibrate the answerer's relevance threshold (`rag.answer.weights.MIN_RELEVANCE`), reproducibly.

The threshold refuses questions the documents are not about ("How do I bake sourdough bread?"); the
other evidence checks handle on-topic questions they do not answer. This asks the seed set's
questions, a few off-topic ones (eval/offtopic.jsonl) and SQuAD's fixed 500 with the threshold off,
records each answer's relevance (`Answer.score`) and whether the other checks already abstain, and
sweeps thresholds. It picks the threshold halfway between the lowest one that refuses every
off-topic question and the highest one that refuses at most 1% (`--max-loss`) of the answerable
questions (seed and SQuAD together) that the other checks let through, and prints the table with the
seed set's abstention precision and recall. Run from the project root:

    python eval/calibrate.py [--qa eval/qa.jsonl --docs seeds] [--squad ../shared/benchmarks/squad-dev]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rag.evaluate.qa import load_qa
from rag.evaluate.run import default_index_for
from rag.pipeline import MIN_RELEVANCE, Pipeline


def observe(qa: str, docs: str, embedder=None) -> tuple[list[tuple[bool, bool, float]], object]:
    """(unanswerable, abstained by the other evidence checks, relevance) per question with answers,
    and the embedder used (loaded once, then shared)."""
    pipeline = Pipeline.open(default_index_for(docs), docs, embedder=embedder, keep_model=True,
                             min_relevance=-math.inf)
    out = []
    for item in load_qa(qa, docs):
        if item.answers is None:
            continue
        answer = pipeline.ask(item.question)
        out.append((item.unanswerable, answer.abstained, answer.score))
    return out, pipeline.retriever.embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qa", default="eval/qa.jsonl")
    parser.add_argument("--offtopic", default="eval/offtopic.jsonl")
    parser.add_argument("--docs", default="seeds")
    parser.add_argument("--squad", default="../shared/benchmarks/squad-dev")
    parser.add_argument("--max-loss", type=float, default=0.01,
                        help="the largest share of answerable questions the threshold may refuse")
    args = parser.parse_args()
    seeds, embedder = observe(args.qa, args.docs)
    offtopic = observe(args.offtopic, args.docs, embedder)[0] if Path(args.offtopic).exists() else []
    squad_dir = Path(args.squad)
    squad = observe(str(squad_dir / "qa-small.jsonl"), str(squad_dir / "docs"), embedder)[0] if squad_dir.exists() else []
    answerable = [(gap, r) for u, gap, r in seeds + squad if not u]

    print(f"{'threshold':>9} {'seed prec':>9} {'recall':>7} {'off-topic refused':>17} {'answerable refused':>18}")
    low = high = None
    for t in [round(0.2 + 0.025 * i, 3) for i in range(25)]:
        abstain = [(u, gap or r < t) for u, gap, r in seeds]
        tp = sum(1 for u, a in abstain if u and a)
        n_abstain, n_unans = sum(a for _, a in abstain), sum(u for u, _ in abstain)
        p = tp / n_abstain if n_abstain else 0.0
        recall = tp / n_unans if n_unans else 0.0
        off = sum(gap or r < t for _, gap, r in offtopic)
        loss = sum(not gap and r < t for gap, r in answerable) / len(answerable)
        print(f"{t:>9.3f} {p:>9.3f} {recall:>7.3f} {off:>10}/{len(offtopic):<6} {loss:>18.3f}")
        if low is None and offtopic and off == len(offtopic):
            low = t
        if loss <= args.max_loss:
            high = t
    # Halfway between the lowest threshold that refuses every off-topic question and the highest that
    # refuses at most --max-loss of the answerable ones: the widest margin on both sides.
    chosen = round((low + high) / 2, 3) if low is not None and high is not None and low <= high else high
    print(f"refuses all off-topic from {low}; refuses at most {args.max_loss:.0%} of answerable up to {high}")
    print(f"chosen threshold: {chosen} (in use: MIN_RELEVANCE = {MIN_RELEVANCE})")


if __name__ == "__main__":
    main()
