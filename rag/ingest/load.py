"""Load a folder of documents (any format `rag.ingest.formats` reads) into `Document`s with their structure.

Recognises a title line (and the year in it), headings (Markdown `#`, "Chapter 2", "Section 5 Europe",
"1 Overview", "(2) NATO", "<...>", "[...]", and short title-like lines), footnotes ("- (1) ..." with
the URL lines under them), photo captions ("(December 10, Singapore; Photo: ASEF)", kept with the
paragraph they illustrate) and paragraphs that continue on the next line without naming their subject
("They also ..."). Every block keeps its exact character span in the file's text.

The converters give the text (for `.txt`/`.md` the file's own, decoded, with universal newlines) and
the headings a format declares; `parse` finds the blocks in it. A file that cannot be a document
(an unknown type, binary, undecodable, corrupt, or over the size limit a build passes to `check_size`)
raises `UnreadableFile`, a `DocumentError` that carries the reason apart from the path, so a build can
record why it skipped the file. Does not chunk, embed or index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from rag.errors import DocumentError, UnreadableFile  # noqa: F401 - re-exported
from rag.ingest.formats import convert, detect
from rag.settings import YEAR
from rag.types import Block, Document

MAX_HEADING_CHARS = 120
_URL = re.compile(r"^(https?://|www\.)\S+$")
_FOOTNOTE = re.compile(r"^(-\s*)?(\(\d+\)|\d{1,2}|\*\d*)\s+\S")
_CAPTION = re.compile(r"^(\(.*\b(Photo|Source|Courtesy)\b.*\)|(Photo|Figure|Fig\.|Source)\s*\d*\s*[:.].*)$")
_BULLET = re.compile(r"^([-*+•]|\d+[.)])\s+\S")
_CONTINUES = re.compile(r"^(They|He|She|It|This|These|Those|Its|Their|His|Her|Both|The two)\b")
_HEADINGS = (  # (pattern, level); first match wins, checked only on short lines
    (re.compile(r"^(#{1,6})\s+\S"), None),  # Markdown: level = number of '#'
    (re.compile(r"^Chapter\s+\d+\b"), 1.0),
    (re.compile(r"^(Section|Part)\s+\d+\b"), 2.0),
    (re.compile(r"^\d+(\.\d+)*\.?\s+[A-Z]"), 3.0),
    (re.compile(r"^\(\d+\)\s+\S"), 4.0),
    (re.compile(r"^\([a-z]\)\s+\S"), 5.0),
    (re.compile(r"^<[^<>]+>$"), 5.0),
    (re.compile(r"^\[[^\[\]]+\]$"), 5.0),
)


MB = 1024 * 1024  # what the messages (and `rag index --max-file-mb`) call a megabyte


def check_size(path: Path | str, size: int, max_bytes: int | None) -> None:
    """UnreadableFile when `size` (the file's bytes) is over `max_bytes` (None: no limit)."""
    if max_bytes is not None and size > max_bytes:
        raise UnreadableFile(path, f"{size / MB:.1f} MB ({size:,} bytes) is over the limit of {max_bytes / MB:.3g} MB "
                                   f"({max_bytes:,} bytes) per file; raise it with `rag index --max-file-mb`")


def decode_text(data: bytes, path: Path | str) -> str:
    """`data` as text with universal newlines (UTF-8, else the encoding charset-normalizer finds);
    UnreadableFile names `path` otherwise."""
    from rag.ingest.formats.text import decode

    return decode(data, str(path))


def read_text(path: Path) -> str:
    """The text a file's converter extracts (for `.txt`/`.md` the file's own text, universal newlines):
    what spans index into. DocumentError (UnreadableFile) names the file when there is none."""
    return convert(path.read_bytes(), str(path)).text


def source_text(folder: str | Path, doc: str) -> str | None:
    """The text of document `doc` under `folder` as `read_text` gives it (the text spans index into),
    cached while the file is unchanged; None when it cannot be read."""
    path = Path(folder) / doc
    try:
        st = path.stat()
        return _cached_text(str(path), st.st_mtime_ns, st.st_size)
    except (OSError, DocumentError):
        return None


@lru_cache(maxsize=64)
def _cached_text(path: str, mtime_ns: int, size: int) -> str:
    return read_text(Path(path))


def list_files(folder: Path) -> list[Path]:
    """Every file under `folder`, recursively, sorted, hidden paths skipped; files of a type no
    converter reads are listed too, so a build can say it skipped them."""
    return [path for _, path in list_documents(folder)]


def list_documents(folder: Path, extra: Mapping[str, str | Path] | None = None) -> list[tuple[str, Path]]:
    """(doc, path) of every file under `folder` (doc: its path relative to `folder`) and under each
    `extra` folder (doc: "PREFIX/relative path"; a missing extra folder has none), sorted by doc, hidden
    paths skipped. Files under `folder`/PREFIX are left to the extra folder of that prefix."""
    if not folder.exists():
        raise DocumentError(f"documents folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise DocumentError(f"{str(folder)!r} is not a folder")
    extra = {prefix.strip("/"): Path(path) for prefix, path in (extra or {}).items()}
    found = [(doc, path) for doc, path in _files(folder, "") if doc.split("/", 1)[0] not in extra]
    for prefix, path in extra.items():
        if path.is_dir():
            found += _files(path, prefix + "/")
    return sorted(found)


def _files(folder: Path, prefix: str) -> list[tuple[str, Path]]:
    out = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if not any(part.startswith(".") for part in rel.parts) and path.is_file():
            out.append((prefix + rel.as_posix(), path))
    return out


def _heading_level(line: str, markdown: bool = True) -> float | None:
    if len(line) > MAX_HEADING_CHARS:
        return None
    for pattern, level in _HEADINGS if markdown else _HEADINGS[1:]:
        m = pattern.match(line)
        if m:
            if level is None:
                return float(len(m.group(1)))
            if level >= 3 and line[-1] in ".;,:" and not line.endswith("..."):
                return None
            return level
    return None


def _plain_heading(line: str) -> bool:
    """A short title-like line: no sentence punctuation at the end, starts upper-case, few words."""
    return (
        len(line) <= 80 and line[0].isupper() and line[-1] not in ".;,:!?\"”'" and len(line.split()) <= 10
        and not _BULLET.match(line)
    )


def _strip_md(line: str, markdown: bool = True) -> str:
    return line.lstrip("#").strip() if markdown and line.startswith("#") else line


def parse(doc: str, text: str, headings: Mapping[int, float] | None = None, *, pages: tuple[int, ...] = (),
          title: str | None = None, markdown: bool = True) -> Document:
    """Split one file's text into blocks under their heading paths. `headings` maps the offset where a
    line starts to its heading level, for the headings a format declares (other lines are recognised
    as in a `.txt`, but for Markdown's "# ..." when `markdown` is False: in a PDF, Word file or web
    page such a line is a comment in a code listing, not a heading); `pages` and `title` (used when
    the text opens with no title line) are what the converter found."""
    declared = headings or {}
    lines, pos = [], 0
    for raw in text.split("\n"):
        stripped = raw.rstrip()
        lead = len(stripped) - len(stripped.lstrip("\ufeff \t"))  # a byte-order mark is not text
        lines.append((pos + lead, pos + len(stripped), stripped[lead:].strip()))
        pos += len(raw) + 1
    nonblank = [i for i, (_, _, s) in enumerate(lines) if s]
    fallback = title or Path(doc).stem.replace("_", " ")
    if not nonblank:
        return Document(doc, text, fallback, None, (), pages)

    first = lines[nonblank[0]][2]
    has_title = len(nonblank) > 1 and len(first) <= MAX_HEADING_CHARS and first[-1] not in ".;,:"
    title = _strip_md(first, markdown) if has_title else fallback
    year_match = YEAR.search(title)
    year = int(year_match.group(1)) if year_match else None

    stack: list[tuple[float, str]] = [(0.0, title)]
    blocks: list[Block] = []
    cur: dict | None = None  # the block being built: start, end, kind, heading, last_line, blank_before
    pending_caption: tuple[int, int] | None = None
    prev_kind = "blank"  # kind of the previous non-blank line: heading | body

    def flush() -> None:
        nonlocal cur, pending_caption
        if cur is not None:
            blocks.append(Block(cur["start"], cur["end"], cur["heading"], cur["kind"]))
            cur = None
        if pending_caption is not None:  # a caption not followed by its paragraph stands alone
            blocks.append(Block(*pending_caption, tuple(h for _, h in stack), "caption"))
            pending_caption = None

    for n, i in enumerate(nonblank):
        start, end, line = lines[i]
        if has_title and n == 0:
            prev_kind = "heading"
            continue
        blank_before = n > 0 and nonblank[n - 1] != i - 1
        next_is_text = n + 1 < len(nonblank)
        level = declared.get(start) or _heading_level(line, markdown)
        if level is None and next_is_text and _plain_heading(line) and not (cur and cur["kind"] == "footnote"):
            prev_level = stack[-1][0]
            level = prev_level + 0.5 if prev_kind == "heading" and prev_level < 3 else (
                5.0 if prev_kind == "heading" else 3.0)
        if level is not None and (start in declared or not _FOOTNOTE_LINE(line)):
            flush()
            while len(stack) > 1 and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, _strip_md(line, markdown)))
            prev_kind = "heading"
            continue
        prev_kind = "body"
        heading = tuple(h for _, h in stack)
        if _URL.match(line) and cur is not None and not blank_before:
            cur["end"] = end
        elif _CAPTION.match(line):
            flush()
            pending_caption = (start, end)
            continue
        elif _FOOTNOTE_LINE(line):
            flush()
            cur = {"start": start, "end": end, "kind": "footnote", "heading": heading, "line": line}
        elif cur is not None and not blank_before and cur["heading"] == heading and (
            (cur["kind"] == "paragraph" and (_CONTINUES.match(line) or cur["line"][-1] not in ".!?\"”')]:"))
            or (cur["kind"] == "list" and _BULLET.match(line))
        ):
            cur["end"], cur["line"] = end, line
        else:
            caption, pending_caption = pending_caption, None  # the paragraph right after a caption takes it
            flush()
            kind = "list" if _BULLET.match(line) else "paragraph"
            cur = {"start": start, "end": end, "kind": kind, "heading": heading, "line": line}
            if caption is not None and not blank_before:
                cur["start"], cur["kind"] = caption[0], "caption"
            elif caption is not None:
                blocks.append(Block(*caption, heading, "caption"))
        if pending_caption is not None and n + 1 < len(nonblank) and nonblank[n + 1] != i + 1:
            flush()  # a blank line after the caption: it stands alone
    flush()
    return Document(doc, text, title, year, tuple(blocks), pages)


def load_document(doc: str, data: bytes, name: str | None = None) -> Document:
    """The `Document` in a file's bytes, whatever its format (`rag.ingest.formats`); `doc` is its path
    relative to the documents folder, `name` what messages call it. UnreadableFile says why there is none."""
    fmt = detect(data, name or doc)
    extracted = convert(data, name or doc, fmt)
    return parse(doc, extracted.text, dict(extracted.headings), pages=extracted.pages, title=extracted.title,
                 markdown=fmt == "text")


def _FOOTNOTE_LINE(line: str) -> bool:
    return line.startswith("-") and bool(_FOOTNOTE.match(line))
