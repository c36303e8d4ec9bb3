"""`rag eval --conversations`: how well follow-ups are read and answered, turn by turn.

A conversation file has one object a line: {"id", "turns": [{"question", "standalone", "answers",
"sources": [{"doc", "quote"}]}, ...]}: each turn as a person types it, the standalone question it
stands for (or a list of wordings that ask the same, the first the reference), the gold answers ([] when the documents do not answer it) and the gold quotes. Every turn
is asked with the earlier turns as history (the questions as typed and the assistant's own answers,
as in a chat), and judged on:

- rewrite: `Answer.question` against the gold standalone question (`same_question`);
- answer: for an answerable turn a gold answer in the text (`rag.evaluate.qa.answer_correct`), for an
  unanswerable one an abstention; first turns and follow-ups are reported apart.

Does not build indexes beyond opening the pipeline, and does not render beyond its own small table.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import DocumentError, RagError
from rag.evaluate.qa import GoldSpan, answer_correct, find_quote, normalize, overlaps
from rag.index import lexical
from rag.ingest.load import read_text
from rag.types import Answer

Ask = Callable[[str, Sequence[tuple[str, str]]], Answer]  # (question, history) -> answer

# Words that carry no content of their own in a question (beside what `normalize` drops).
_FUNCTION = set("""a about according after all also an and any are as at be been before by can could did do does
during for from had has have he her him his how i if in into is it its me my of on or our she so than that the
their them then there these they this those to was we were what when where which who whom whose why will with
would you your""".split())
_NAME = re.compile(r"\b(?:[A-Z][\w'’-]*|\d[\w.,-]*)")


@dataclass(frozen=True)
class Turn:
    question: str
    standalone: tuple[str, ...]  # the gold standalone question, then any other wording that asks the same
    answers: tuple[str, ...]  # () when the documents do not answer it
    gold: tuple[GoldSpan, ...]


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: tuple[Turn, ...]


def load_conversations(path: str | Path, docs: str | Path,
                       text_of: Callable[[str], str | None] | None = None) -> list[Conversation]:
    """Read a conversation file, every gold quote located in its document (in `text_of(doc)` when known,
    else in the file as its converter reads it); errors name the line."""
    path, docs = Path(path), Path(docs)
    if not path.is_file():
        raise RagError(f"conversation file {str(path)!r} does not exist")
    texts: dict[str, str] = {}
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows = row["turns"]
            turns = [(t["question"], (t["standalone"],) if isinstance(t["standalone"], str) else tuple(t["standalone"]),
                      tuple(t["answers"]), t.get("sources") or []) for t in rows]
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{path}:{n}: not a conversation object ({exc})") from None
        if not turns:
            raise RagError(f"{path}:{n}: a conversation needs at least one turn")
        parsed = []
        for question, standalone, answers, sources in turns:
            gold = []
            for src in sources:
                doc, quote = src.get("doc"), src.get("quote")
                if doc not in texts:
                    known = text_of(doc) if text_of is not None else None
                    try:
                        texts[doc] = known if known is not None else read_text(docs / doc)
                    except (OSError, DocumentError, TypeError) as exc:
                        raise RagError(f"{path}:{n}: source document {doc!r} cannot be read: {exc}") from None
                spans = find_quote(texts[doc], quote) if quote else [(None, None)]
                if not spans:
                    raise RagError(f"{path}:{n}: quote {quote[:50]!r} not found in {doc!r}")
                gold += [GoldSpan(doc, s, e) for s, e in spans]
            parsed.append(Turn(question, standalone, answers, tuple(gold)))
        out.append(Conversation(str(row.get("id", n)), tuple(parsed)))
    if not out:
        raise RagError(f"conversation file {str(path)!r} has no conversations")
    return out


def _terms(text: str) -> tuple[set[str], set[str]]:
    """(names and numbers, content terms) of a question, stemmed and lower-cased. A name is a word
    written with a capital or a digit anywhere but at the start of the question."""
    body = text.strip()
    names = {m.group(0) for m in _NAME.finditer(body) if m.start() > 0}
    stem = lambda words: {lexical.stem(w) or w for w in words}  # noqa: E731
    names = stem(w for n in names for w in normalize(n).split() if w not in _FUNCTION)
    content = stem(w for w in normalize(body).split() if w not in _FUNCTION)
    return names, content


def same_question(rewrite: str, gold: str, min_overlap: float = 0.6) -> bool:
    """Whether a rewritten question asks what the gold standalone question asks: the same names and
    numbers (case-folded and stemmed: no name of one missing from the other, sentence-initial words
    aside) and at least `min_overlap` of their content terms shared (Jaccard, stemmed, function words
    dropped), so "How much has Germany given?" is not "How much has France given?" while word order
    and small rewordings do not count."""
    names_r, content_r = _terms(rewrite)
    names_g, content_g = _terms(gold)
    if names_r != names_g:
        return False
    union = content_r | content_g
    return not union or len(content_r & content_g) / len(union) >= min_overlap


def conversation_metrics(conversations: Sequence[Conversation], ask: Ask) -> dict:
    """Rewrite accuracy over follow-ups; answer accuracy (a gold answer given, or an abstention where
    there is none) over first turns and follow-ups apart; citation accuracy over answered answerable
    turns; abstention precision and recall over all turns; ask latency. `rows` lists every turn."""
    rows, latencies = [], []
    for conv in conversations:
        history: list[tuple[str, str]] = []
        for i, turn in enumerate(conv.turns):
            t0 = time.perf_counter()
            answer = ask(turn.question, list(history))
            latencies.append((time.perf_counter() - t0) * 1000)
            history.append((turn.question, answer.text))
            if turn.answers:
                right = not answer.abstained and answer_correct(answer.text, turn.answers)
            else:
                right = answer.abstained
            cited = (not answer.abstained and bool(turn.answers) and bool(turn.gold)
                     and any(overlaps(c.doc, c.start, c.end, turn.gold) for c in answer.citations))
            rows.append({"id": conv.id, "turn": i + 1, "question": turn.question, "gold_standalone": turn.standalone[0],
                         "standalone": answer.question,
                         "rewrite_ok": any(same_question(answer.question, s) for s in turn.standalone),
                         "answerable": bool(turn.answers), "abstained": answer.abstained, "correct": right,
                         "cited": cited, "answer": answer.text, "reason": answer.reason})
    first = [r for r in rows if r["turn"] == 1]
    follow = [r for r in rows if r["turn"] > 1]
    share = lambda rs, key: round(sum(r[key] for r in rs) / len(rs), 4) if rs else None  # noqa: E731
    answered = [r for r in rows if r["answerable"] and not r["abstained"]]
    abstained = [r for r in rows if r["abstained"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    return {
        "n_conversations": len(conversations), "n_turns": len(rows), "n_followups": len(follow),
        "n_unanswerable": len(unanswerable),
        "rewrite_accuracy": share(follow, "rewrite_ok"),
        "first_turn_accuracy": share(first, "correct"),
        "followup_accuracy": share(follow, "correct"),
        "followup_answerable_accuracy": share([r for r in follow if r["answerable"]], "correct"),
        "citation_accuracy": share(answered, "cited"),
        "abstention_precision": round(sum(not r["answerable"] for r in abstained) / len(abstained), 4) if abstained else None,
        "abstention_recall": share(unanswerable, "abstained"),
        "ask_latency_p50_ms": round(statistics.median(latencies), 2) if latencies else 0.0,
        "rows": rows,
    }


def run_conversations(path: str | Path, docs: str | Path, index_dir: str | Path | None = None,
                      configs: Sequence[str] = ("hybrid",), progress=None) -> dict:
    """Open (or build) the index of `docs` and score each config on the conversation file."""
    from rag.evaluate.run import default_index_for
    from rag.pipeline import Pipeline
    from rag.settings import MODES

    load_conversations(path, docs)  # a bad file is refused before any index work
    unknown = [c for c in configs if c not in MODES]
    if unknown:
        raise RagError(f"unknown config {unknown[0]!r} for conversations; choose from {', '.join(MODES)}")
    index_dir = index_dir or default_index_for(docs)  # a directory or a store URI
    pipeline = Pipeline.open(index_dir, docs, progress=progress, uploads=False)
    conversations = load_conversations(path, docs, pipeline.retriever.document_text)
    report = {"conversations": str(path), "docs": str(docs), "index": str(index_dir), "configs": {}}
    for config in configs:
        pipeline.ask("warm up", mode=config)
        report["configs"][config] = conversation_metrics(
            conversations, lambda q, history: pipeline.ask(q, history, mode=config))
    return report


_ROWS = ("rewrite_accuracy", "first_turn_accuracy", "followup_accuracy", "followup_answerable_accuracy",
         "citation_accuracy", "abstention_precision", "abstention_recall", "ask_latency_p50_ms")


def conversation_table(report: dict) -> str:
    """The report as a small text table, one column per config."""
    configs = report["configs"]
    some = next(iter(configs.values()), {})
    head = (f"{report['conversations']} on {report['docs']}: {some.get('n_conversations', 0)} conversations, "
            f"{some.get('n_turns', 0)} turns ({some.get('n_followups', 0)} follow-ups, "
            f"{some.get('n_unanswerable', 0)} unanswerable)")
    lines = [head, f"{'metric':<30}" + "".join(f"{c:>10}" for c in configs)]
    for key in _ROWS:
        cells = [configs[c].get(key) for c in configs]
        lines.append(f"{key:<30}" + "".join(f"{'-' if v is None else format(v, '.3f'):>10}" for v in cells))
    return "\n".join(lines)
