"""The `rag` command: parse arguments, call the pipeline, print. Errors become one line on stderr.

  rag index [DOCS] [--index DIR | --store URI] [--model NAME] [--lock-timeout S] [--max-file-mb MB] [--ray [ADDRESS]]   build or update (incremental; --ray: on Ray workers)
  rag search QUESTION [-k N] [--mode M] [--doc NAME] [--year YYYY] [--json]
  rag ask QUESTION [-k N] [--mode M] [--doc NAME] [--year YYYY] [--json] [--llm] [--reader NAME_OR_PATH]
  rag eval --qa FILE --docs DIR [--conversations FILE] [--reader NAME_OR_PATH] [--json]

Every command takes `--store URI` instead of `--index DIR` for an index elsewhere: `milvus://HOST:PORT/COLLECTION`
(a Milvus server; a token from $MILVUS_TOKEN) or `milvus:PATH.db` (a Milvus Lite file).

Heavy libraries are imported only by the command that needs them. No retrieval logic lives here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile

from rag.settings import DEFAULT_DOCS, DEFAULT_INDEX, DEFAULT_K, DEFAULT_MODE, LOCK_TIMEOUT, MAX_K, MODES


STORE_HELP = ("where the index is instead of --index: milvus://HOST:PORT/COLLECTION (a Milvus server; "
              "token from $MILVUS_TOKEN) or milvus:PATH.db (Milvus Lite)")


class _ArgumentError(Exception):
    """A command-line value that cannot be used, found before any index work: one line, exit 2 (as argparse)."""

READER_HELP = ("a sentence-transformers CrossEncoder (a folder, or a name in the Hugging Face cache; nothing is "
               "downloaded) that reranks the passages and reads which sentences answer")


def _note(message: str) -> None:
    print(message, file=sys.stderr)


class _WarningLines(logging.Handler):
    """The package's warnings (a skipped file, a wait for another build) as "warning: ..." lines on
    whatever stderr is at the time."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"warning: {record.getMessage()}", file=sys.stderr)


def _show_warnings() -> None:
    logger = logging.getLogger("rag")
    if not any(isinstance(h, _WarningLines) for h in logger.handlers):
        handler = _WarningLines(logging.WARNING)
        logger.addHandler(handler)


def _open(args, generator=None):
    """The pipeline over `--index`, built from `--docs` on first use and updated when stale; the
    question, k and mode are checked first, so bad ones cost no index work."""
    from rag.pipeline import Pipeline, precheck
    from rag.serve.progress import progress_bars

    precheck(args.question, k=args.k, mode=args.mode)
    reader = _reader(getattr(args, "reader", None))
    # A first use of the default index/ builds it from seeds/; any other missing index needs --docs.
    first_docs = args.docs or (DEFAULT_DOCS if args.index == DEFAULT_INDEX else None)
    return Pipeline.open(args.index, default_docs=first_docs, progress=progress_bars(), notify=_note,
                         generator=generator, reader=reader)


def _reader(name: str | None):
    """The reader `--reader` names, loaded now (local files only); _ArgumentError when it cannot be."""
    if name is None:
        return None
    from rag.errors import InputError
    from rag.pipeline import load_reader

    try:
        return load_reader(name)
    except InputError as exc:
        raise _ArgumentError(str(exc)) from None


def cmd_index(args) -> int:
    from rag.errors import InputError
    from rag.pipeline import build_index
    from rag.serve.progress import progress_bars

    if args.max_file_mb is not None and not args.max_file_mb > 0:
        raise InputError(f"--max-file-mb of {args.max_file_mb:g} must be a positive number of megabytes")
    max_bytes = None if args.max_file_mb is None else max(1, int(args.max_file_mb * 1024 * 1024))
    summary = build_index(args.docs, args.index, model=args.model, progress=None if args.quiet else progress_bars(),
                          lock_timeout=LOCK_TIMEOUT if args.lock_timeout is None else args.lock_timeout,
                          max_file_bytes=max_bytes, ray=args.ray)
    print(summary)  # each skipped file was logged as a warning line already
    return 0


def cmd_search(args) -> int:
    from rag.serve.render import search_json

    pipeline = _open(args)
    passages = pipeline.search(args.question, k=args.k, mode=args.mode, doc=args.doc, year=args.year)
    if args.json:
        print(json.dumps(search_json(args.question, args.mode, args.k, passages), ensure_ascii=False, indent=1))
        return 0
    if not passages:
        print("no passages found")
    for n, p in enumerate(passages, 1):
        where = " > ".join(p.heading[1:]) or p.title
        page = f"  p. {p.page}" if p.page is not None else ""
        print(f"[{n}] {p.score:.4f}  {p.doc}:{p.start}-{p.end}{page}  {where}")
        print("    " + p.text.replace("\n", "\n    ") + "\n")
    return 0


def cmd_ask(args) -> int:
    from rag.serve.render import answer_json, answer_text

    generator = None
    if args.llm:
        from rag.pipeline import OpenAICompatible

        generator = OpenAICompatible()
    pipeline = _open(args, generator)
    answer = pipeline.ask(args.question, k=args.k, mode=args.mode, doc=args.doc, year=args.year)
    print(json.dumps(answer_json(answer), ensure_ascii=False, indent=1) if args.json else answer_text(answer))
    return 0


def cmd_eval(args) -> int:
    from rag.evaluate.run import CONFIGS, run_eval
    from rag.serve.progress import progress_bars
    from rag.serve.render import eval_table

    configs = args.configs.split(",") if args.configs else CONFIGS
    if args.conversations:  # conversations (hybrid unless --configs says otherwise), and the QA file if given
        from rag.evaluate.conversations import conversation_table, run_conversations

        report = run_conversations(args.conversations, args.docs, args.index,
                                   configs=args.configs.split(",") if args.configs else ("hybrid",),
                                   progress=None if args.json else progress_bars())
        if args.out:
            _write_json(args.out, report)
        print(json.dumps(report, ensure_ascii=False) if args.json else conversation_table(report))
        if args.qa is None:
            return 0
    save = (lambda report: _write_json(args.out, report)) if args.out and not args.conversations else None
    report = run_eval(args.qa or "eval/qa.jsonl", args.docs, args.index, configs=configs, answers=not args.no_answers,
                      progress=None if args.json else progress_bars(), on_config=save, reader=_reader(args.reader))
    print(json.dumps(report, ensure_ascii=False) if args.json else eval_table(report))
    return 0


def _write_json(path: str, report: dict) -> None:
    """Replace `path` with the report, whole (a crash leaves the previous version)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".eval-", suffix=".json", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(report, f, ensure_ascii=False, indent=1)
    os.replace(tmp, path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions about a folder of documents.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build or update the index of a documents folder")
    p.add_argument("docs", nargs="?", default=DEFAULT_DOCS, help=f"documents folder (default: {DEFAULT_DOCS}/)")
    p.add_argument("--index", default=DEFAULT_INDEX, help=f"index directory (default: {DEFAULT_INDEX}/)")
    p.add_argument("--store", default=None, metavar="URI", help=STORE_HELP)
    p.add_argument("--model", default=None, help="sentence-transformers model name or path "
                   "(default: the index's model, else all-MiniLM-L6-v2)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--lock-timeout", type=float, default=None, metavar="SECONDS",
                   help=f"how long to wait for another build of the same index (default {LOCK_TIMEOUT:g})")
    p.add_argument("--max-file-mb", type=float, default=None, metavar="MB",
                   help="skip document files bigger than this (default: the index's limit, else 10 MB)")
    p.add_argument("--ray", nargs="?", const=True, default=None, metavar="ADDRESS",
                   help="read, chunk and embed on Ray workers (same index): a local Ray, one worker per core, "
                   "or the cluster at ADDRESS (ray://HOST:10001, HOST:6379, auto); needs the cluster extra")
    p.set_defaults(func=cmd_index)

    def common(p) -> None:
        p.add_argument("question")
        p.add_argument("-k", type=int, default=DEFAULT_K, help=f"number of passages, 1 to {MAX_K} (default {DEFAULT_K})")
        p.add_argument("--mode", default=DEFAULT_MODE, choices=MODES)
        p.add_argument("--doc", default=None, help="only this document (file name)")
        p.add_argument("--year", type=int, default=None, help="only documents of this year")
        p.add_argument("--index", default=DEFAULT_INDEX)
        p.add_argument("--store", default=None, metavar="URI", help=STORE_HELP)
        p.add_argument("--docs", default=None, help=f"documents folder, to build a missing index from "
                       f"(default: {DEFAULT_DOCS}/ for the default index/)")
        p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("search", help="show the passages that best match a question")
    common(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question with cited sentences, or say the documents do not")
    common(p)
    p.add_argument("--llm", action="store_true", help="write the answer with an OpenAI-compatible model "
                   "(RAG_LLM_BASE_URL, RAG_LLM_MODEL, RAG_LLM_API_KEY); citations are verified the same way")
    p.add_argument("--reader", default=None, metavar="NAME_OR_PATH", help=READER_HELP)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="score retrieval and answers against a QA file")
    p.add_argument("--qa", default=None, help="QA file (JSON lines; default eval/qa.jsonl unless --conversations)")
    p.add_argument("--conversations", default=None, metavar="FILE",
                   help="conversation file (JSON lines): rewrite and per-turn answer accuracy")
    p.add_argument("--docs", default=DEFAULT_DOCS, help="documents folder the QA file is about")
    p.add_argument("--index", default=None, help="index directory (default: index/ for seeds, else a cache dir)")
    p.add_argument("--store", default=None, metavar="URI", help=STORE_HELP)
    p.add_argument("--configs", default=None, help="comma-separated subset of hybrid,dense,bm25,naive")
    p.add_argument("--no-answers", action="store_true", help="retrieval figures only")
    p.add_argument("--reader", default=None, metavar="NAME_OR_PATH", help=READER_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="also save the report as JSON to FILE, rewritten after each finished config")
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a model name that is not on this machine fails at once
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "store", None):  # an index elsewhere takes the place of --index
        args.index = args.store
    _show_warnings()
    from rag.errors import RagError

    try:
        return args.func(args)
    except _ArgumentError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return 2
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
