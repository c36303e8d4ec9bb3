"""The web chat: `python app.py [--host H] [--port P] [--docs DIR] [--index DIR]`.

Builds (or updates) the index of the documents folder on start, with progress on the console, loads
the model and the index once for every session, and serves a Gradio chat on 127.0.0.1:7860 (or
GRADIO_SERVER_PORT). Never creates a share link. Also serves the API endpoint `/ask`:

    from gradio_client import Client
    Client("http://127.0.0.1:7860/").predict("When was the European Peace Facility set up?", api_name="/ask")

This file only lays out the UI: one `rag.pipeline.Pipeline` serves every session, and the helpers
it calls (rendering, upload checks, progress) are in `rag/serve/`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402

from rag import InputError, RagError  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.serve.progress import STAGES, console_progress  # noqa: E402
from rag.serve.render import (  # noqa: E402
    ALL_DOCS, EMPTY_SOURCES, answer_json, answer_markdown, doc_choices, escape_markdown, message_html,
    question_markdown, sources_html,
)
from rag.serve.uploads import MAX_UPLOAD_BYTES, add_documents  # noqa: E402
from rag.settings import DEFAULT_DOCS, DEFAULT_INDEX, DEFAULT_K, DEFAULT_MODE, MAX_QUESTION_CHARS, MODES  # noqa: E402

log = logging.getLogger("rag.app")
CONCURRENCY = 4  # questions answered at once; the rest wait in the queue (none are dropped)
EXAMPLES = [
    "Which fighter jets did France announce for Ukraine?",
    "When was the European Peace Facility set up?",
    "How much military assistance per year has the UK promised Ukraine?",
    "What did the 2021 Bluebook say about ASEM?",
    "Who won the 2024 European Parliament elections?",
]

CSS = """
.gradio-container { max-width: 1400px !important; margin: 0 auto !important; }
#title h1 { margin-bottom: 0; }
#title p { margin-top: 4px; color: var(--body-text-color-subdued); }
#sources-box { max-height: 560px; overflow-y: auto !important; padding-right: 6px; }
.src-panel { display: flex; flex-direction: column; gap: 10px; font-size: 14px; line-height: 1.5; }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px;
            background: var(--background-fill-primary); }
.src-cited { border-left: 4px solid #d97706; }
.src-title { font-size: 15px; }
.src-doc { font-weight: 700; }
.src-n { display: inline-block; background: #d97706; color: #fff; border-radius: 4px; padding: 0 6px;
         font-weight: 600; font-size: 13px; margin-right: 4px; }
.src-other .src-n { background: var(--neutral-400); }
.src-path { color: var(--body-text-color-subdued); font-size: 13px; margin-top: 2px; }
.src-meta { color: var(--body-text-color-subdued); font-size: 12px; font-family: var(--font-mono); margin-top: 2px; }
.src-text { margin: 8px 0 0 0; white-space: normal; }
.src-text mark { background: #fde68a; color: #1f2937; padding: 1px 2px; border-radius: 3px; }
.src-more summary { cursor: pointer; font-weight: 600; padding: 4px 0; }
.src-more .src-card { margin-top: 8px; }
.src-abstain, .src-warn { border: 1px solid #f59e0b; background: #fffbeb; color: #78350f; border-radius: 8px;
                          padding: 8px 12px; font-weight: 600; }
.src-sup { color: #b45309; font-weight: 700; font-size: 11px; margin: 0 3px 0 1px; }
.src-empty { color: var(--body-text-color-subdued); padding: 8px 2px; }
#chat button.example { border: 1px solid var(--border-color-primary); border-radius: 10px;
                       background: var(--background-fill-secondary); }
#chat button.example:hover { border-color: #d97706; }
#new-chat, #ask { white-space: nowrap; }
#index-info { color: var(--body-text-color-subdued); font-size: 13px; }
"""


def build_demo(pipeline: Pipeline) -> gr.Blocks:
    """The Blocks app around one shared `pipeline`."""

    def docs_update():
        return gr.update(choices=doc_choices(pipeline.retriever.passages))

    def index_info() -> str:
        return f"Index: {pipeline.describe()}."

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

    # -- uploads -------------------------------------------------------------------------------
    def upload(files, progress=gr.Progress()):
        if not files:
            return gr.update(), gr.update(), None, gr.update()
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in files]
        progress(0, desc="Checking files")

        def on_progress(stage: str, done: int, total: int) -> None:
            progress((done, max(total, 1)), desc=STAGES.get(stage, stage), unit="steps")

        report = add_documents(pipeline, [(p, None) for p in paths], progress=on_progress)
        return report.message(), docs_update(), None, index_info()

    # -- API -----------------------------------------------------------------------------------
    def ask(question: str, k: int = DEFAULT_K, mode: str = DEFAULT_MODE, doc: str = "",
            history: list[list[str]] | None = None) -> dict:
        """Answer `question` from the documents. Returns {question, answer, abstained, citations:
        [{n, doc, heading, start, end, quote, paragraph, score}], passages, original_question}."""
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
                        doc = gr.Dropdown(doc_choices(pipeline.retriever.passages), value=ALL_DOCS, label="Only this document")
                    with gr.Accordion("Add your own documents", open=False):
                        files = gr.File(file_count="multiple", type="filepath", elem_id="upload", height=120,
                                        label=f".txt or .md, UTF-8, up to {MAX_UPLOAD_BYTES // 2**20} MB each")
                        upload_status = gr.Markdown(elem_id="upload-status")
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
        files.upload(upload, [files], [upload_status, doc, files, info], concurrency_limit=1,
                     api_visibility="private")
        demo.load(lambda: (docs_update(), index_info()), None, [doc, info], api_visibility="private")
        gr.api(ask, api_name="ask", concurrency_id="answer")
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=512)
    return demo


THEME = gr.themes.Soft(
    primary_hue="amber", neutral_hue="slate",
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
)


def launch(demo: gr.Blocks, host: str, port: int, **kwargs):
    """Start serving `demo` (never with a share link)."""
    return demo.launch(server_name=host, server_port=port, share=False, show_error=True, theme=THEME, css=CSS,
                       max_file_size="25mb", footer_links=["api"], **kwargs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the document chat in a browser.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=os.environ.get("GRADIO_SERVER_PORT", "7860"),  # parsed as typed
                        help="port (default 7860 or $GRADIO_SERVER_PORT)")
    parser.add_argument("--docs", default=DEFAULT_DOCS, help=f"documents folder; uploads are saved here (default {DEFAULT_DOCS}/)")
    parser.add_argument("--index", default=DEFAULT_INDEX, help=f"index directory (default {DEFAULT_INDEX}/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print(f"Loading the model and the index of {args.docs!r} into {args.index!r} …", file=sys.stderr, flush=True)
    try:
        pipeline = Pipeline.open(args.index, args.docs, keep_model=True, progress=console_progress())
        pipeline.warm_up()
    except RagError as exc:
        print(f"app: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. an index path under a file
        print(f"app: error: {exc.strerror or exc}{f': {exc.filename!r}' if exc.filename else ''}", file=sys.stderr)
        return 1
    for warning in pipeline.summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"Index ready: {pipeline.summary}", file=sys.stderr, flush=True)
    launch(build_demo(pipeline), args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
