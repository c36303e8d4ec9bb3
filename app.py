"""The web chat: `python app.py [--host H] [--port P] [--docs DIR] [--index DIR] [--reader NAME_OR_PATH]`.

Loads the model and the index once for every session and serves a Gradio chat on 127.0.0.1:7860 (or
GRADIO_SERVER_PORT). The first start builds the index, with progress on the console; a later start
(after a crash too) serves the index it finds at once and, when its documents changed, brings it up to
date in the background. spaCy is loaded on a thread of its own once the chat is served.
Uploads are indexed in the background as well, while questions are answered from the index as it
was. Every torch, BLAS and faiss call runs on one thread and builds at a lower priority, so a build
beside the questions does not slow them much (`rag.index.cpu`). Up to `QUEUE_SIZE` questions wait
in the queue. Never creates a share link, and keeps the console to its own lines (no library debug
logging). Also serves the API endpoint `/ask`:

    from gradio_client import Client
    Client("http://127.0.0.1:7860/").predict("When was the European Peace Facility set up?", api_name="/ask")

and, read-only, the original file of every indexed document at `/source/<doc>` (a PDF inline, so a
citation's link opens it at its page with `#page=N`; see `rag.serve.files`). Uploads are saved into
the documents folder given with `--docs`, except for the repository's own seeds/ (tracked by git):
then they go to the git-ignored uploads/ folder, indexed together with the seeds.

This file only lays out the UI: one `rag.pipeline.Pipeline` serves every session, and the helpers
it calls (rendering, upload checks, progress) are in `rag/serve/`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402

from rag import InputError, RagError  # noqa: E402
from rag.index.cpu import SERVE_THREADS, serve_threads  # noqa: E402
from rag.pipeline import Pipeline, load_reader, warm_up_language  # noqa: E402
from rag.serve.files import source_routes  # noqa: E402
from rag.serve.progress import console_progress  # noqa: E402
from rag.serve.render import (  # noqa: E402
    ALL_DOCS, EMPTY_SOURCES, answer_json, answer_markdown, doc_choices, escape_markdown, message_html,
    question_markdown, sources_html,
)
from rag.serve.theme import CSS, THEME  # noqa: E402
from rag.serve.uploads import MAX_DOCUMENT_BYTES, limits_text, start_upload  # noqa: E402
from rag.settings import (  # noqa: E402
    DEFAULT_DOCS, DEFAULT_INDEX, DEFAULT_K, DEFAULT_MODE, DEFAULT_UPLOADS, MAX_QUESTION_CHARS, MODES,
)

log = logging.getLogger("rag.app")
ROOT = Path(__file__).resolve().parent  # the repository: its seeds/ are tracked, its uploads/ are not
CONCURRENCY = 4  # questions answered at once; the rest wait in the queue
QUEUE_SIZE = 2000  # questions (and other queued events) that may wait; a burst of 1,000 at once is accepted
POLL_SECONDS = 1.0  # how often a page that uploaded asks how the indexing is going
QUIET_LOGGERS = ("bm25s", "abbreviations", "httpx", "httpcore", "faiss", "sentence_transformers", "transformers",
                 "urllib3", "asyncio", "multipart", "PIL", "matplotlib", "trafilatura", "htmldate", "charset_normalizer",
                 "pypdfium2", "docx", "fpdf")
EXAMPLES = [
    "Which fighter jets did France announce for Ukraine?",
    "When was the European Peace Facility set up?",
    "How much military assistance per year has the UK promised Ukraine?",
    "What did the 2021 Bluebook say about ASEM?",
    "Who won the 2024 European Parliament elections?",
]


def build_demo(pipeline: Pipeline) -> gr.Blocks:
    """The Blocks app around one shared `pipeline`."""

    def docs_update():
        return gr.update(choices=doc_choices(pipeline.retriever.first_passages()))

    def index_info() -> str:
        status = pipeline.indexing
        busy = f" Updating it in the background: {status}." if status.busy else ""
        return f"Index: {pipeline.describe()}.{busy}"

    # -- chat ----------------------------------------------------------------------------------
    def show_question(message, chat):
        chat = list(chat or [])
        shown = question_markdown(message)
        if shown:
            chat.append({"role": "user", "content": shown})
        return "", chat, message

    def respond(pending, chat, turns, k, mode, doc):
        chat, turns = list(chat or []), list(turns or [])
        if not question_markdown(pending):
            # Nothing typed, so no question was shown: a reply here would merge into the last answer's
            # bubble. Say it in a toast and leave the chat and the Sources panel as they were.
            gr.Warning("Please type a question first.")
            return chat, turns, gr.update()
        try:
            answer = pipeline.ask(pending, history=turns, k=k, mode=mode, doc=doc)
        except InputError as exc:
            chat.append({"role": "assistant", "content": escape_markdown(str(exc))})
            return chat, turns, message_html(str(exc), "warn")
        except RagError as exc:
            msg = f"Sorry, that did not work: {exc}"
            chat.append({"role": "assistant", "content": escape_markdown(msg)})
            return chat, turns, message_html(msg, "warn")
        except Exception as exc:  # noqa: BLE001 - the UI boundary: log it, tell the person, keep serving
            log.exception("answering %r failed", pending)
            msg = f"Sorry, something went wrong ({type(exc).__name__}). Please try again."
            chat.append({"role": "assistant", "content": escape_markdown(msg)})
            return chat, turns, message_html(msg, "warn")
        chat.append({"role": "assistant", "content": answer_markdown(answer)})
        turns.append((answer.question, answer.text))
        return chat, turns, sources_html(answer)

    def show_example(chat, evt: gr.SelectData):
        text = evt.value.get("text", "") if isinstance(evt.value, dict) else str(evt.value or "")
        return show_question(text, chat)

    def new_chat():
        return [], [], EMPTY_SOURCES, "", ""

    # -- uploads: saved at once, indexed in the background, followed by a timer -----------------
    def upload(files, report):
        if not files:
            return gr.update(), gr.update(), None, gr.update(), report, gr.update()
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in files]
        new = start_upload(pipeline, [(p, None) for p in paths])
        message = new.message(str(pipeline.indexing))
        if not new.pending and report is not None and report.pending:  # keep following the earlier one
            message, new = f"{message}\n\n{report.message(str(pipeline.indexing))}", report
        return message, docs_update(), None, index_info(), new, gr.Timer(active=new.pending)

    def follow(report):
        """The timer's tick: how the indexing of this page's upload is going; stops once it is done."""
        if report is None or report.pending:
            status = str(pipeline.indexing)
            return (report.message(status) if report else gr.update()), gr.update(), index_info(), gr.update()
        return report.message(), docs_update(), index_info(), gr.Timer(active=False)

    # -- API -----------------------------------------------------------------------------------
    def ask(question: str, k: int = DEFAULT_K, mode: str = DEFAULT_MODE, doc: str = "",
            history: list[list[str]] | None = None) -> dict:
        """Answer `question` from the documents. Returns {question, answer, abstained, citations:
        [{n, doc, heading, start, end, page, quote, paragraph, score}], passages, original_question}
        (`page`: the 1-based page of the quote in a PDF, else null)."""
        try:
            answer = pipeline.ask(question, history=history, k=k, mode=mode, doc=doc)
        except RagError as exc:
            raise gr.Error(str(exc)) from None
        return answer_json(answer)

    with gr.Blocks(title="Ask the documents", delete_cache=(3600, 3600)) as demo:
        turns = gr.State([])
        pending = gr.State("")
        gr.Markdown("# Ask the documents\nShort answers quoted from the documents, with **[n]** citations "
                    "you can check in the Sources panel. If the documents do not answer, it says so.",
                    elem_id="title")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=420):
                chatbot = gr.Chatbot(label="Chat", show_label=False, height=420, latex_delimiters=[], buttons=[],
                                     feedback_options=None, elem_id="chat",
                                     examples=[{"text": q} for q in EXAMPLES],
                                     placeholder="**Ask a question about the documents**, or start with an example:")
                with gr.Row(equal_height=True):
                    message = gr.Textbox(placeholder="Ask a question about the documents…", show_label=False,
                                         scale=8, max_lines=4, max_length=MAX_QUESTION_CHARS * 2,
                                         elem_id="question", autofocus=True)
                    send = gr.Button("Ask", variant="primary", scale=0, min_width=90, elem_id="ask")
                    clear = gr.Button("New chat", variant="secondary", scale=0, min_width=130, elem_id="new-chat")
                with gr.Row(equal_height=False):
                    with gr.Accordion("Settings", open=False):
                        k = gr.Slider(1, 10, value=DEFAULT_K, step=1, label="Passages to retrieve")
                        mode = gr.Radio(list(MODES), value=DEFAULT_MODE, label="Retrieval mode",
                                        info="hybrid = meaning + keywords; dense = meaning; bm25 = keywords")
                        doc = gr.Dropdown(doc_choices(pipeline.retriever.first_passages()), value=ALL_DOCS, label="Only this document")
                    with gr.Accordion("Add your own documents", open=False):
                        # A short label: a long one wraps onto Gradio's "Drop File Here" text in the box.
                        files = gr.File(file_count="multiple", type="filepath", elem_id="upload", height=120,
                                        label="Files to add")
                        gr.Markdown(f"PDF, Word (.docx), HTML, text or Markdown files. {limits_text()}",
                                    elem_id="upload-info")
                        upload_status = gr.Markdown(elem_id="upload-status")
                        upload_report = gr.State(None)
                        timer = gr.Timer(POLL_SECONDS, active=False)
                info = gr.Markdown(index_info(), elem_id="index-info")
            with gr.Column(scale=4, min_width=360):
                gr.Markdown("### Sources")
                sources = gr.HTML(EMPTY_SOURCES, elem_id="sources-box")

        chat_inputs = [pending, chatbot, turns, k, mode, doc]
        chat_outputs = [chatbot, turns, sources]
        for trigger in (message.submit, send.click):
            trigger(show_question, [message, chatbot], [message, chatbot, pending], queue=False,
                    api_visibility="private").then(
                respond, chat_inputs, chat_outputs, concurrency_id="answer", api_visibility="private")
        chatbot.example_select(show_example, [chatbot], [message, chatbot, pending], queue=False,
                               api_visibility="private").then(
            respond, chat_inputs, chat_outputs, concurrency_id="answer", api_visibility="private")
        for trigger in (clear.click, chatbot.clear):
            trigger(new_chat, None, [chatbot, turns, sources, message, pending], queue=False,
                    api_visibility="private")
        files.upload(upload, [files, upload_report], [upload_status, doc, files, info, upload_report, timer],
                     concurrency_limit=1, api_visibility="private")
        timer.tick(follow, [upload_report], [upload_status, doc, info, timer], queue=False, show_progress="hidden",
                   api_visibility="private")
        demo.load(lambda: (docs_update(), index_info()), None, [doc, info], api_visibility="private")
        gr.api(ask, api_name="ask", concurrency_id="answer")
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def launch(demo: gr.Blocks, host: str, port: int, block: bool = True, routes=(), **kwargs):
    """Start serving `demo` (never with a share link; Gradio's own hints are not printed, only where
    it listens) and, with `block`, serve until interrupted. `routes` (Starlette routes, such as
    `rag.serve.files.source_routes`) are put on the app's FastAPI app ahead of Gradio's own. Returns
    `demo`, serving."""
    demo.launch(server_name=host, server_port=port, share=False, show_error=True, theme=THEME, css=CSS,
                max_file_size=MAX_DOCUMENT_BYTES, footer_links=["api"], quiet=True, prevent_thread_lock=True,
                app_kwargs={"routes": list(routes)}, **kwargs)
    print(f"Running on local URL:  {demo.local_url.rstrip('/')}", file=sys.stderr, flush=True)
    if block:
        demo.block_thread()
    return demo


def quiet_logging() -> None:
    """Warnings and errors only, from us and from the libraries: some set their own loggers to DEBUG
    when imported (bm25s) or configure the root logger (abbreviations), so the handler filters too."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the document chat in a browser.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=os.environ.get("GRADIO_SERVER_PORT", "7860"),  # parsed as typed
                        help="port (default 7860 or $GRADIO_SERVER_PORT)")
    parser.add_argument("--docs", default=DEFAULT_DOCS, help=f"documents folder; uploads are saved here (default "
                        f"{DEFAULT_DOCS}/, whose uploads are saved in {DEFAULT_UPLOADS}/)")
    parser.add_argument("--index", default=DEFAULT_INDEX, help=f"index directory (default {DEFAULT_INDEX}/)")
    parser.add_argument("--store", default=None, metavar="URI", help="where the index is instead of --index: "
                        "milvus://HOST:PORT/COLLECTION (a Milvus server; token from $MILVUS_TOKEN) or "
                        "milvus:PATH.db (Milvus Lite)")
    parser.add_argument("--reader", default=None, metavar="NAME_OR_PATH", help="a sentence-transformers CrossEncoder "
                        "(a folder, or a name in the Hugging Face cache) that reranks passages and reads which "
                        "sentences answer (rag.answer.reader)")
    args = parser.parse_args(argv)
    if args.store:
        args.index = args.store
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_logging()
    for name, value in SERVE_THREADS.items():  # before torch loads (numpy's BLAS is limited at run time)
        os.environ.setdefault(name, value)
    print(f"Loading the model and the index of {args.docs!r} into {args.index!r} …", file=sys.stderr, flush=True)
    reader = None
    if args.reader:  # loaded now: a reader that cannot be is one line, not an error at every question
        try:
            reader = load_reader(args.reader)
        except RagError as exc:
            print(f"app: error: {exc}", file=sys.stderr)
            return 2
    try:
        serve_threads()
        pipeline = Pipeline.open(args.index, args.docs, uploads=uploads_folder(args.docs), keep_model=True,
                                 progress=console_progress(), background=True, reader=reader)
        pipeline.warm_up(language=False)  # spaCy is loaded once the chat is served, beside the first questions
    except RagError as exc:
        print(f"app: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. an index path under a file
        print(f"app: error: {exc.strerror or exc}{f': {exc.filename!r}' if exc.filename else ''}", file=sys.stderr)
        return 1
    quiet_logging()  # again: libraries imported since may have changed their loggers
    if pipeline.updating is not None:  # served as it was; the update runs in the background
        print(f"Index ready: {pipeline.describe()}; bringing it up to date with {args.docs!r} in the background",
              file=sys.stderr, flush=True)
        pipeline.updating.add_done_callback(lambda done: report_update(
            None if done.exception() else done.result(), done.exception()))
    elif pipeline.summary is None:  # served as it was: its documents did not change
        print(f"Index ready: {pipeline.describe()}; up to date with {args.docs!r}", file=sys.stderr, flush=True)
    else:
        report_update(pipeline.summary, None)
    demo = launch(build_demo(pipeline), args.host, args.port, block=False, routes=source_routes(pipeline))
    threading.Thread(target=warm_up_language, name="warm-up-language", daemon=True).start()
    if demo is not None:
        demo.block_thread()
    return 0


def uploads_folder(docs: str | Path) -> Path | None:
    """Where uploads go when they must not go into `docs`: the git-ignored uploads/ of the repository
    when `docs` is its own seeds/ (tracked by git); None (into `docs` itself) for any other folder."""
    try:
        if Path(docs).resolve() == (ROOT / DEFAULT_DOCS).resolve():
            return ROOT / DEFAULT_UPLOADS
    except OSError:
        pass
    return None


def report_update(summary, error) -> None:
    """One line on the console when the index was built or updated (or could not be)."""
    if error is not None:
        print(f"warning: updating the index failed: {error}", file=sys.stderr, flush=True)
        return
    print(f"Index ready: {summary}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
