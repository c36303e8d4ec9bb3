"""The web app's read-only file route: `GET /source/<doc>` serves the original file of an indexed
document, so that a citation's link opens the PDF at its page (`#page=12`) or the text it quotes.

Only what `Pipeline.source_file(doc)` resolves is served: an indexed document's own file, inside the
documents folder or the uploads folder. Anything else is a bare 404 that never echoes the request: an
unknown document, a name with "..", ".", an empty part, a backslash, a NUL or a leading "/" (after
the server's percent-decoding, so "%2e%2e" too), a symlink that leads out of the folders, a folder (no
listings). The type served is what the content is, not what the name says:

- a PDF: `application/pdf`, inline (the browser's viewer honours `#page=N`), with Range support;
- a Word file: the .docx type as an attachment (a download);
- anything else (text, Markdown, HTML): decoded as the index reads it and sent as `text/plain;
  charset=utf-8` with `Content-Security-Policy: sandbox`, so a user's HTML never runs as a page of this
  app; bytes that are no text are sent as an `application/octet-stream` attachment.

Every response has `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
`Cache-Control: no-cache` (an upload may replace a file). Does not list, write, convert or index.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from rag.errors import RagError
from rag.serve.render import SOURCE_ROUTE

log = logging.getLogger(__name__)
MAX_DOC_CHARS = 1000  # a longer document name is no document's
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}
SANDBOX = "sandbox; default-src 'none'"  # text shown by the browser: no scripts, no requests, no forms


def not_found() -> Response:
    return PlainTextResponse("Not Found", status_code=404, headers=HEADERS)


def plausible(doc: str) -> bool:
    """Whether `doc` looks like a document name at all: a relative path of plain parts ('/' only)."""
    if not doc or len(doc) > MAX_DOC_CHARS or doc.startswith("/") or "\\" in doc or "\x00" in doc:
        return False
    return all(part not in ("", ".", "..") for part in doc.split("/"))


def resolve(pipeline, doc: str) -> Path | None:
    """The file to serve for `doc`, or None: what `pipeline.source_file` resolves, checked once more
    to be a regular file inside the documents folder or the uploads folder."""
    if not plausible(doc):
        return None
    try:
        path = pipeline.source_file(doc)
        if path is None:
            return None
        path = Path(path).resolve()
        roots = {Path(pipeline.docs_dir).resolve(), Path(pipeline.upload_dir).resolve()}
        if not any(path.is_relative_to(root) for root in roots) or not path.is_file():
            return None
    except (RagError, OSError, ValueError):
        return None
    return path


def source_response(pipeline, doc: str) -> Response:
    """The response for `GET /source/<doc>` (see the module docstring)."""
    path = resolve(pipeline, doc)
    if path is None:
        return not_found()
    try:
        stat = os.stat(path)
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return not_found()
    name = path.name
    if b"%PDF-" in head:
        return FileResponse(path, media_type="application/pdf", filename=_named(name, ".pdf"), stat_result=stat,
                            content_disposition_type="inline", headers=HEADERS)
    if head.startswith(b"PK\x03\x04"):
        media = DOCX_TYPE if name.lower().endswith(".docx") else "application/octet-stream"
        return FileResponse(path, media_type=media, filename=name, stat_result=stat,
                            content_disposition_type="attachment", headers=HEADERS)
    try:
        data = path.read_bytes()
    except OSError:
        return not_found()
    from rag.ingest.formats.text import decode

    try:
        text = decode(data, name)
    except RagError:  # not text in any encoding: a download, never shown
        return Response(data, media_type="application/octet-stream",
                        headers={**HEADERS, "Content-Disposition": _disposition("attachment", name)})
    return Response(text.encode("utf-8"), media_type="text/plain; charset=utf-8",
                    headers={**HEADERS, "Content-Security-Policy": SANDBOX,
                             "Content-Disposition": _disposition("inline", name)})


def _named(name: str, suffix: str) -> str:
    """`name` with `suffix` when it lacks it (a PDF in the folder under another name still saves as one)."""
    return name if name.lower().endswith(suffix) else name + suffix


def _disposition(kind: str, name: str) -> str:
    """A Content-Disposition header for `name` (an ASCII fallback and the UTF-8 name)."""
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in name)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def source_routes(pipeline) -> list[Route]:
    """The file route for a Starlette/FastAPI app (GET and HEAD; runs on the thread pool)."""

    def serve(request: Request) -> Response:
        try:
            return source_response(pipeline, request.path_params.get("doc", ""))
        except Exception:  # noqa: BLE001 - the UI boundary: a bug here is a 404 and one log line, never a crash
            log.warning("serving %r failed", request.path_params.get("doc", ""), exc_info=False)
            return not_found()

    return [Route(f"/{SOURCE_ROUTE}/{{doc:path}}", serve, methods=["GET"], name="source")]
