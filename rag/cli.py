"""The `rag` command: parse arguments, call the public API, print. Errors become one line on stderr.

  rag index [DOCS] [--index DIR] [--model NAME] [--lock-timeout S]   build or update an index (incremental)
  rag search QUESTION [-k N] [--mode M] [--doc NAME] [--json]
  rag ask QUESTION [-k N] [--doc NAME] [--json]
  rag eval --qa FILE --docs DIR [--json]

Heavy libraries are imported only by the command that needs them. No retrieval logic lives here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

DEFAULT_DOCS, DEFAULT_INDEX = "seeds", "index"


def _progress_bar():
    """A build progress callback drawing tqdm bars on stderr, one per stage."""
    from tqdm import tqdm

    bars: dict = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            unit = {"read": "file", "wait": "build"}.get(stage, "passage")
            bar = bars[stage] = tqdm(total=total, desc=f"{stage:>5}", unit=unit,
                                     file=sys.stderr, leave=False, disable=None)
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return progress


def ensure_index(docs: str, index: str, model: str | None = None, quiet: bool = False,
                 lock_timeout: float | None = None):
    """Build or update `index` from `docs` when needed (cheap when nothing changed); returns the summary."""
    from rag.build import LOCK_TIMEOUT, build_index

    summary = build_index(docs, index, model=model, progress=None if quiet else _progress_bar(),
                          lock_timeout=LOCK_TIMEOUT if lock_timeout is None else lock_timeout)
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return summary


def _load_retriever(args):
    from rag.errors import IndexStateError
    from rag.retrieve import Retriever

    from rag.store import stale_files

    try:
        retriever = Retriever.load(args.index, check_sources=False)  # a stale index is updated below
    except IndexStateError:
        if Path(args.index).exists() or not Path(args.docs).is_dir():
            raise
    else:
        manifest = retriever.index.manifest
        changed = stale_files(manifest)
        if not changed:
            return retriever
        print(f"index at {args.index!r} is stale ({len(changed)} changed in {manifest.docs}: "
              f"{', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''}); updating it", file=sys.stderr)
        ensure_index(manifest.docs, args.index, quiet=True)
        return Retriever.load(args.index)
    print(f"no index at {args.index!r} yet; building it from {args.docs!r}", file=sys.stderr)
    ensure_index(args.docs, args.index)
    return Retriever.load(args.index)


def _check_question(question: str) -> None:
    """RagError for a question with nothing to search for: empty, or no letter or digit ("?!?")."""
    from rag.errors import RagError

    if not question.strip():
        raise RagError("the question is empty")
    if not re.search(r"[^\W_]", question):
        raise RagError(f"the question {question.strip()!r} has no words to search for")


def _check_year(retriever, year: int | None) -> None:
    """RagError naming the years there are, when `--year` matches no document (like an unknown `--doc`)."""
    from rag.errors import RagError

    known = sorted({y for y in retriever.years.values() if y})
    if year is not None and year not in known:
        raise RagError(f"no document of year {year} in the index (it has "
                       f"{', '.join(map(str, known)) if known else 'no dated documents'})")


def _passage_json(p) -> dict:
    return {"doc": p.doc, "start": p.start, "end": p.end, "heading": list(p.heading), "title": p.title,
            "year": p.year, "kind": p.kind, "line": p.line, "score": p.score, "text": p.text}


def cmd_index(args) -> int:
    summary = ensure_index(args.docs, args.index, args.model, quiet=args.quiet, lock_timeout=args.lock_timeout)
    print(summary)
    return 0


def cmd_search(args) -> int:
    _check_question(args.question)
    retriever = _load_retriever(args)
    _check_year(retriever, args.year)
    passages = retriever.search(args.question, k=args.k, mode=args.mode, doc=args.doc, year=args.year)
    if args.json:
        print(json.dumps({"question": args.question, "mode": args.mode, "k": args.k,
                          "passages": [_passage_json(p) for p in passages]}, ensure_ascii=False, indent=1))
        return 0
    if not passages:
        print("no passages found")
    for n, p in enumerate(passages, 1):
        where = " > ".join(p.heading[1:]) or p.title
        print(f"[{n}] {p.score:.4f}  {p.doc}:{p.start}-{p.end}  {where}")
        print("    " + p.text.replace("\n", "\n    ") + "\n")
    return 0


def answer_json(answer) -> dict:
    """The JSON shape of an `Answer`, shared by `rag ask --json` and the web API."""
    return {
        "question": answer.question, "original_question": answer.original_question, "answer": answer.text,
        "abstained": answer.abstained, "reason": answer.reason,
        "citations": [{"n": c.n, "doc": c.doc, "heading": list(c.passage.heading), "start": c.start, "end": c.end,
                       "quote": c.quote, "paragraph": c.passage.text, "score": c.passage.score} for c in answer.citations],
        "passages": [_passage_json(p) for p in answer.passages],
    }


def cmd_ask(args) -> int:
    from rag.answer import Assistant
    from rag.followup import reworded

    _check_question(args.question)
    generator = None
    if args.llm:
        from rag.generate import OpenAICompatible

        generator = OpenAICompatible()
    retriever = _load_retriever(args)
    _check_year(retriever, args.year)
    assistant = Assistant(retriever, k=args.k, mode=args.mode, generator=generator)
    answer = assistant.ask(args.question, doc=args.doc, year=args.year)
    if args.json:
        print(json.dumps(answer_json(answer), ensure_ascii=False, indent=1))
        return 0
    if reworded(answer.original_question, answer.question):
        print(f"(question read as: {answer.question})")
    print(answer.text + (f"\nWhy: {answer.reason}." if answer.abstained and answer.reason else "") + "\n")
    if answer.abstained:
        print("Closest passages:" if answer.passages else "No passages were found.")
        for n, p in enumerate(answer.passages[:3], 1):
            where = " > ".join((p.doc, *p.heading[1:]))
            text = " ".join(p.text.split())
            print(f"  - {where}: {text[:200]}{'…' if len(text) > 200 else ''}")
    for c in answer.citations:
        print(f"[{c.n}] {c.doc}, line {c.line} ({' > '.join(c.passage.heading[1:]) or c.passage.title})")
        print(f"    \"{c.quote}\"")
    return 0


def cmd_eval(args) -> int:
    from rag.evaluate import CONFIGS, run_eval

    configs = args.configs.split(",") if args.configs else CONFIGS
    report = run_eval(args.qa, args.docs, args.index, configs=configs, answers=not args.no_answers,
                      progress=None if args.json else _progress_bar())
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(f"{report['qa']} on {report['docs']}: {report['n']} questions "
          f"({report['n_answerable']} answerable, {report['n_unanswerable']} unanswerable)")
    columns = ["recall@1", "recall@3", "recall@5", "recall@10", "mrr@10", "latency_p50_ms", "latency_p95_ms",
               "answer_accuracy", "citation_accuracy", "abstention_precision", "abstention_recall",
               "answer_chars_p50", "ask_latency_p50_ms", "ask_latency_p95_ms"]
    rows = report["configs"]
    print(f"{'metric':22}" + "".join(f"{c:>10}" for c in rows))
    for col in columns:
        if any(col in r for r in rows.values()):
            cells = ["-" if r.get(col) is None else f"{r[col]:.3f}" if isinstance(r[col], float) else str(r[col])
                     for r in rows.values()]
            print(f"{col:22}" + "".join(f"{c:>10}" for c in cells))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions about a folder of documents.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build or update the index of a documents folder")
    p.add_argument("docs", nargs="?", default=DEFAULT_DOCS, help="documents folder (default: seeds/)")
    p.add_argument("--index", default=DEFAULT_INDEX, help="index directory (default: index/)")
    p.add_argument("--model", default=None, help="sentence-transformers model name or path "
                   "(default: the index's model, else all-MiniLM-L6-v2)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--lock-timeout", type=float, default=None, metavar="SECONDS",
                   help="how long to wait for another build of the same index (default 600)")
    p.set_defaults(func=cmd_index)

    def common(p, modes: bool) -> None:
        p.add_argument("question")
        p.add_argument("-k", type=int, default=5, help="number of passages (default 5)")
        if modes:
            p.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "bm25"])
        p.add_argument("--doc", default=None, help="only this document (file name)")
        p.add_argument("--year", type=int, default=None, help="only documents of this year")
        p.add_argument("--index", default=DEFAULT_INDEX)
        p.add_argument("--docs", default=DEFAULT_DOCS, help="documents folder, to build the index on first use")
        p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("search", help="show the passages that best match a question")
    common(p, modes=True)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question with cited sentences, or say the documents do not")
    common(p, modes=True)
    p.add_argument("--llm", action="store_true", help="write the answer with an OpenAI-compatible model "
                   "(RAG_LLM_BASE_URL, RAG_LLM_MODEL, RAG_LLM_API_KEY); citations are verified the same way")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="score retrieval and answers against a QA file")
    p.add_argument("--qa", default="eval/qa.jsonl", help="QA file (JSON lines)")
    p.add_argument("--docs", default=DEFAULT_DOCS, help="documents folder the QA file is about")
    p.add_argument("--index", default=None, help="index directory (default: index/ for seeds, else a cache dir)")
    p.add_argument("--configs", default=None, help="comma-separated subset of hybrid,dense,bm25,naive")
    p.add_argument("--no-answers", action="store_true", help="retrieval figures only")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    from rag.errors import RagError

    try:
        return args.func(args)
    except RagError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # e.g. an index path under a file: one line, not a traceback
        where = f": {exc.filename!r}" if exc.filename else ""
        print(f"rag: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
