"""End to end: `python app.py` on a copy of seeds/ (real model, first-run index build) in a subprocess
on a free port (127.0.0.1), called through gradio_client's `/ask` endpoint and raw HTTP: answers, a quiet
console, an upload indexed in the background, and a restart after a crash that serves at once."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
SEED_2025 = "000_dda85c429bc7d5d1.txt"
SEED_2021 = "003_faae33e1e6895e79.txt"
ANSWERABLE = "Which fighter jets did France announce for Ukraine?"
UNANSWERABLE = "What is the capital of Peru?"

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(root: Path, port_via_env: bool = True, copy: bool = True) -> SimpleNamespace:
    """`python app.py` on a fresh copy of the seeds (with `copy`; else on root/docs and root/index as
    they are); returns once it answers HTTP (or fails with its log)."""
    docs, index, log_path = root / "docs", root / "index", root / "app.log"
    if copy:
        shutil.copytree(SEEDS, docs)
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "app.py", "--docs", str(docs), "--index", str(index)]
    if port_via_env:
        env["GRADIO_SERVER_PORT"] = str(port)
    else:
        cmd += ["--port", str(port)]
    log = open(log_path, "w", encoding="utf-8")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.close()
            pytest.fail(f"app.py exited with {proc.returncode}:\n{log_path.read_text(encoding='utf-8')[-3000:]}")
        try:  # the URL line is printed just after the server answers: wait for both
            if httpx.get(url, timeout=2).status_code == 200 and "Running on local URL" in log_path.read_text(encoding="utf-8"):
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"app.py did not start within 300 s:\n{log_path.read_text(encoding='utf-8')[-3000:]}")
    return SimpleNamespace(url=url, port=port, docs=docs, index=index, log_path=log_path, proc=proc, log=log)


def stop_app(app: SimpleNamespace) -> None:
    app.proc.terminate()
    try:
        app.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        app.proc.kill()
        app.proc.wait(timeout=5)
    app.log.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = start_app(tmp_path_factory.mktemp("app"))
    yield app
    stop_app(app)


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False)


def test_first_run_builds_the_index_with_progress_and_no_share_link(app):
    log = app.log_path.read_text(encoding="utf-8")
    assert "Reading files: 2/2 done" in log and "Embedding passages:" in log and "Saving the index: 1/1 done" in log
    assert "Index ready:" in log and "2 added" in log
    assert f"Running on local URL:  http://127.0.0.1:{app.port}" in log
    assert "gradio.live" not in log and "public URL" not in log.lower()
    assert (app.index / "manifest.json").exists()
    assert sorted(p.name for p in app.docs.iterdir()) == sorted([SEED_2025, SEED_2021])


def test_the_console_is_quiet(app):
    log = app.log_path.read_text(encoding="utf-8")
    for noise in ("To create a public link", "share=True", "DEBUG", "INFO", "Building index from"):
        assert noise not in log, log


def test_only_the_ask_endpoint_is_public(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert list(endpoints) == ["/ask"]
    params = {p["parameter_name"]: p for p in endpoints["/ask"]["parameters"]}
    assert not params["question"]["parameter_has_default"]
    assert all(params[name]["parameter_has_default"] for name in ("k", "mode", "doc", "history"))


def test_ask_with_one_argument_returns_cited_json(client, app):
    result = client.predict(ANSWERABLE, api_name="/ask")
    assert isinstance(result, dict)
    assert {"question", "answer", "abstained", "citations"} <= set(result)
    assert result["abstained"] is False and "[1]" in result["answer"] and "Mirage" in result["answer"]
    assert result["citations"]
    for c in result["citations"]:
        assert {"n", "doc", "heading", "start", "end", "page", "quote", "paragraph", "score"} <= set(c)
        assert c["page"] is None  # the seeds are text: no pages
        source = (app.docs / c["doc"]).read_text(encoding="utf-8")
        assert source[c["start"]:c["end"]] == c["quote"]  # the citation is verbatim from the file
        assert c["quote"] in c["paragraph"] and f"[{c['n']}]" in result["answer"]
        assert c["heading"][0] == "Diplomatic Bluebook 2025" and isinstance(c["score"], float) and c["score"] > 0
    assert result["citations"][0]["doc"] == SEED_2025 and "Mirage" in result["citations"][0]["quote"]


def test_unanswerable_question_abstains(client):
    result = client.predict(UNANSWERABLE, api_name="/ask")
    assert result["abstained"] is True
    assert result["answer"] == "The documents do not answer this."
    assert result["citations"] == []


def test_settings_and_follow_ups_through_the_api(client):
    result = client.predict("NATO partners", k=2, mode="bm25", doc=SEED_2021, api_name="/ask")
    assert 0 < len(result["passages"]) <= 2 and {p["doc"] for p in result["passages"]} == {SEED_2021}
    first = client.predict("When was the European Peace Facility set up?", api_name="/ask")
    follow = client.predict("And in 2021?", history=[[first["question"], first["answer"]]], api_name="/ask")
    assert follow["original_question"] == "And in 2021?" and follow["question"] != "And in 2021?"
    assert "2021" in follow["question"]


def test_bad_input_gets_a_message_and_the_server_keeps_serving(client, app):
    from gradio_client.exceptions import AppError

    for question, message in [("", "the question is empty"), ("   \x00\x07 ", "the question is empty"),
                              ("?!?", "has no words to search for"), ("why " * 600, "the limit is 2,000"),
                              ("a" * 2001, "the question is 2,001 characters long; the limit is 2,000")]:
        with pytest.raises(AppError, match=message):
            client.predict(question, api_name="/ask")
    for k in (0, 51):  # refused as the CLI refuses them, not clamped
        with pytest.raises(AppError, match=f"k of {k} is out of range: choose 1 to 50 passages"):
            client.predict("NATO", k=k, api_name="/ask")
    with pytest.raises(AppError, match="'sideways' is not one of"):
        client.predict("NATO", mode="sideways", api_name="/ask")
    with pytest.raises(AppError, match="no document 'missing.txt'"):
        client.predict("NATO", doc="missing.txt", api_name="/ask")
    # lone surrogates and control characters in raw JSON: answered, not a crash
    base = app.url + "gradio_api/call/ask"
    body = b'{"data": ["<script>alert(1)</script> What about NATO \\ud800 \\u0007?", 5, "hybrid", "", null]}'
    event = httpx.post(base, content=body, headers={"content-type": "application/json"}, timeout=30).json()["event_id"]
    text = httpx.get(f"{base}/{event}", timeout=60).text
    assert "event: complete" in text, text[:500]
    data = json.loads(text.split("data:", 1)[1].strip())[0]
    assert data["original_question"] == "<script>alert(1)</script> What about NATO ?"
    result = client.predict(ANSWERABLE, api_name="/ask")
    assert result["abstained"] is False


def test_twenty_users_at_once_all_get_answers(app):
    from gradio_client import Client

    questions = [ANSWERABLE, UNANSWERABLE, "When was the European Peace Facility set up?", "What about NATO?"]

    def user(i: int) -> dict:
        return Client(app.url, verbose=False).predict(questions[i % len(questions)], api_name="/ask")

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(user, range(20)))
    assert len(results) == 20 and all(isinstance(r, dict) and "answer" in r for r in results)
    assert [r["abstained"] for r in results[0::4]] == [False] * 5


def test_help_lists_the_options():
    out = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for option in ("--host", "--port", "--docs", "--index"):
        assert option in out.stdout


def test_page_html(app):
    page = httpx.get(app.url, timeout=10)
    assert page.status_code == 200 and "Ask the documents" in page.text


def test_the_original_files_are_served_read_only(app):
    import http.client

    r = httpx.get(app.url + f"source/{SEED_2025}", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.text == (app.docs / SEED_2025).read_text(encoding="utf-8")
    assert r.headers["x-content-type-options"] == "nosniff" and "sandbox" in r.headers["content-security-policy"]
    for path in ["/source/../app.py", "/source/%2e%2e/app.py", "/source/app.py", "/source/", "/source//etc/passwd",
                 f"/source/{SEED_2025}/..%2f..%2fapp.py"]:
        conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
        conn.request("GET", path)
        response = conn.getresponse()
        assert (response.status, response.read()) == (404, b"Not Found"), path
        conn.close()


def upload_via_http(url: str, name: str, text: str, timeout: float = 60) -> str:
    """Upload `text` as the browser does (file upload, then the upload event); returns the status
    Markdown the event answered with."""
    config = httpx.get(url + "config", timeout=30).json()
    file_id = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "upload")
    fn_index, dep = next((n, d) for n, d in enumerate(config["dependencies"])
                         if [file_id, "upload"] in [list(t) for t in d["targets"]])
    [path] = httpx.post(url + "gradio_api/upload", files=[("files", (name, text.encode(), "text/plain"))],
                        timeout=30).json()
    data = [[{"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}] if i == file_id else None
            for i in dep["inputs"]]
    session = f"test{random.randrange(10**9)}"
    httpx.post(url + "gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
               "event_data": None, "trigger_id": file_id}, timeout=30).raise_for_status()
    with httpx.stream("GET", url + f"gradio_api/queue/data?session_hash={session}", timeout=timeout) as events:
        for line in events.iter_lines():
            if '"process_completed"' in line:
                return json.loads(line.removeprefix("data:").strip())["output"]["data"][0]
    raise AssertionError("the upload event never completed")


def searchable(client, question: str, doc: str, seconds: float) -> dict:
    """Ask `question` about `doc` until the index has it (or fail after `seconds`)."""
    from gradio_client.exceptions import AppError

    deadline = time.monotonic() + seconds
    while True:
        try:
            return client.predict(question, doc=doc, mode="bm25", api_name="/ask")
        except AppError as exc:
            if "no document" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(1)


def test_an_upload_returns_at_once_and_is_indexed_in_the_background(app, client):
    text = "# Heron Notes\n\n" + "\n\n".join(f"Grey herons nest in colony {i} beside the lake." for i in range(300))
    t0 = time.monotonic()
    status = upload_via_http(app.url, "heron notes.md", text)
    assert time.monotonic() - t0 < 15, "the upload waited for the index build"
    assert "Saved 1 document: **heron\\_notes.md**. It is being indexed in the background" in status, status
    assert client.predict(ANSWERABLE, api_name="/ask")["abstained"] is False  # answered meanwhile
    result = searchable(client, "Where do grey herons nest?", "heron_notes.md", 180)
    assert result["passages"] and {p["doc"] for p in result["passages"]} == {"heron_notes.md"}


def test_a_restart_after_a_crash_serves_at_once_and_catches_up_in_the_background(tmp_path):
    first = start_app(tmp_path)
    first.proc.send_signal(signal.SIGKILL)  # a crash: no clean shutdown
    first.proc.wait(timeout=10)
    first.log.close()
    text = "# Kestrel Survey\n\n" + "\n\n".join(f"Kestrels hover over meadow {i} before they dive." for i in range(400))
    (tmp_path / "docs" / "kestrels.md").write_text(text, encoding="utf-8")
    again = start_app(tmp_path, copy=False)
    try:
        log = again.log_path.read_text(encoding="utf-8")
        assert "bringing it up to date with" in log and "in the background" in log
        assert "1 added" not in log, "the app indexed before it served"
        from gradio_client import Client

        client = Client(again.url, verbose=False)
        assert client.predict(ANSWERABLE, api_name="/ask")["abstained"] is False  # from the index it had
        result = searchable(client, "What do kestrels do before they dive?", "kestrels.md", 240)
        assert {p["doc"] for p in result["passages"]} == {"kestrels.md"}
        assert "1 added" in again.log_path.read_text(encoding="utf-8")
    finally:
        stop_app(again)
