"""rag.answer.generate: generated answers go through the same citation verification (fake generators), and the
OpenAI-compatible client against a local stub server on 127.0.0.1 (no real network)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag.answer.assistant import Assistant
from rag.answer.generate import NOT_FOUND, PROMPT, OpenAICompatible, verified_answer
from rag.errors import RagError
from rag.serve.cli import main
from rag.types import ABSTAIN_MESSAGE, Passage

PAINTED = "They are painted blue every spring by volunteers from the rowing club."
GOLDFISH = "Goldfish eat flakes, plankton and tiny shrimp."


class FakeGenerator:
    """Returns fixed text, or text built from the numbered passages it is given (to cite the right number)."""

    def __init__(self, reply):
        self.reply = reply
        self.calls: list[tuple[str, list[Passage]]] = []

    def generate(self, question, passages):
        self.calls.append((question, list(passages)))
        return self.reply(Numbers(passages)) if callable(self.reply) else self.reply


class Numbers:
    """`n["goldfish"]`: the 1-based number of the passage whose text contains "goldfish"."""

    def __init__(self, passages):
        self.passages = list(passages)

    def __getitem__(self, words: str) -> int:
        hits = [n for n, p in enumerate(self.passages, 1) if words.lower() in p.text.lower()]
        assert len(hits) == 1, (words, hits)
        return hits[0]

    def __len__(self):
        return len(self.passages)


@pytest.fixture
def ask(story_retriever, story_docs):
    """ask(reply, question=...) -> (Answer, FakeGenerator); every passage of the corpus is numbered."""

    def run(reply, question="What do volunteers paint, and what do goldfish eat?", **kwargs):
        generator = FakeGenerator(reply)
        assistant = Assistant(story_retriever, generator=generator,
                              k=len(story_retriever.passages))
        return assistant.ask(question, **kwargs), generator

    return run


def source(docs, doc):
    return (docs / doc).read_text(encoding="utf-8")


# ---- verified_answer with a fake generator ---------------------------------------------------------------

def test_supported_sentence_is_kept_and_cites_the_supporting_sentence(ask, story_docs):
    answer, gen = ask(lambda n: f"Volunteers paint the boats blue every spring [{n['painted blue']}].")
    assert not answer.abstained
    assert answer.text == "Volunteers paint the boats blue every spring. [1]"
    (c,) = answer.citations
    # the citation is the one sentence of the three-sentence passage that supports the claim
    assert c.n == 1 and c.doc == "harbour.txt" and c.quote == PAINTED
    assert source(story_docs, "harbour.txt")[c.start:c.end] == PAINTED
    assert c.passage.start < c.start and c.end == c.passage.end and c.line == 4
    assert answer.passages == tuple(gen.calls[0][1])


def test_sentence_citing_a_passage_that_does_not_support_it_is_removed(ask):
    answer, _ = ask(lambda n: f"Volunteers paint the boats blue every spring [{n['goldfish']}].")
    assert answer.abstained and answer.text == ABSTAIN_MESSAGE and answer.citations == ()
    assert answer.passages
    assert answer.reason == "no generated sentence was supported by the passage it cited"


def test_only_the_supported_sentences_stay(ask):
    answer, _ = ask(lambda n: f"Goldfish eat flakes and tiny shrimp [{n['goldfish']}]. "
                              f"Goldfish also bark at strangers [{n['goldfish']}]. "
                              f"Dogs fetch sticks in the park [{n['sticks']}].")
    assert answer.text == "Goldfish eat flakes and tiny shrimp. [1] Dogs fetch sticks in the park. [2]"
    assert [c.doc for c in answer.citations] == ["fish.md", "dog.txt"]


@pytest.mark.parametrize("number", [0, "past the end", 99])
def test_marker_out_of_range_is_removed(ask, number):
    def reply(n):
        bad = len(n) + 1 if number == "past the end" else number
        return f"Goldfish eat flakes and tiny shrimp [{bad}]. Dogs fetch sticks in the park [{n['sticks']}]."

    answer, _ = ask(reply)
    assert answer.text == "Dogs fetch sticks in the park. [1]"
    assert [c.doc for c in answer.citations] == ["dog.txt"]


def test_bad_marker_next_to_a_good_one_is_dropped(ask):
    answer, _ = ask(lambda n: f"Goldfish eat flakes and tiny shrimp [{n['sticks']}][{len(n) + 5}][{n['goldfish']}].")
    assert answer.text == "Goldfish eat flakes and tiny shrimp. [1]"
    assert [(c.n, c.quote) for c in answer.citations] == [(1, GOLDFISH)]


def test_sentence_without_a_marker_is_removed(ask):
    answer, _ = ask(lambda n: f"Goldfish eat flakes and tiny shrimp. Dogs fetch sticks in the park [{n['sticks']}].")
    assert answer.text == "Dogs fetch sticks in the park. [1]"


def test_markers_are_renumbered_in_order_of_first_use(ask):
    def reply(n):
        g, d = n["goldfish"], n["sticks"]
        first, second = ("Goldfish eat flakes and tiny shrimp", g), ("Dogs fetch sticks in the park", d)
        if g < d:  # cite the higher number first, so renumbering has something to do
            first, second = second, first
        reply.first_doc = "fish.md" if first[1] == g else "dog.txt"
        return f"{first[0]} [{first[1]}]. {second[0]} [{second[1]}]."

    answer, _ = ask(reply)
    assert [c.n for c in answer.citations] == [1, 2]
    assert answer.citations[0].doc == reply.first_doc
    assert answer.text.index("[1]") < answer.text.index("[2]")


def test_the_same_source_sentence_is_one_citation(ask):
    answer, _ = ask(lambda n: f"Goldfish eat flakes [{n['goldfish']}]. Goldfish eat tiny shrimp [{n['goldfish']}].")
    assert answer.text == "Goldfish eat flakes. [1] Goldfish eat tiny shrimp. [1]"
    assert len(answer.citations) == 1 and answer.citations[0].quote == GOLDFISH


@pytest.mark.parametrize("reply", [NOT_FOUND, f"{NOT_FOUND}.", f"  {NOT_FOUND}\n", "", "   "])
def test_not_found_abstains(ask, reply):
    answer, gen = ask(reply)
    assert answer.abstained and answer.text == ABSTAIN_MESSAGE and answer.citations == ()
    assert answer.passages and len(gen.calls) == 1
    assert answer.reason == "the generator found no answer in the passages"


def test_verified_answer_over_given_passages_and_source_text():
    """The function itself: no assistant, only passages and a `document_text(doc)` callable."""
    text = f"Fish\n\n{GOLDFISH} They sleep at night.\n"
    p = Passage("fish.txt", 6, len(text) - 1, text[6:-1], line=3)
    gen = FakeGenerator("Goldfish eat tiny shrimp [1]. They sleep at night [1].")
    answer = verified_answer(gen, "What do goldfish eat?", "And goldfish?", [p], {"fish.txt": text}.get)
    assert gen.calls == [("What do goldfish eat?", [p])]
    assert answer.text == "Goldfish eat tiny shrimp. [1] They sleep at night. [2]"
    assert [(c.quote, text[c.start:c.end]) for c in answer.citations] == [(GOLDFISH,) * 2, ("They sleep at night.",) * 2]
    assert (answer.question, answer.original_question, answer.passages) == ("What do goldfish eat?", "And goldfish?", (p,))
    unreadable = verified_answer(gen, "What do goldfish eat?", "And goldfish?", [p], lambda doc: None)
    assert unreadable.abstained and unreadable.citations == () and unreadable.passages == (p,)


def test_generated_citations_are_verified_against_the_indexed_text(ask, story_retriever, monkeypatch):
    texts = dict(story_retriever.index.texts)
    texts["fish.md"] = texts["fish.md"].replace("tiny shrimp", "small krill")  # as if the stored text differed
    monkeypatch.setattr(story_retriever, "document_text", texts.get)
    answer, _ = ask(lambda n: f"Goldfish eat flakes and tiny shrimp [{n['goldfish']}]. "
                              f"Dogs fetch sticks in the park [{n['sticks']}].")
    assert answer.text == "Dogs fetch sticks in the park. [1]"
    assert [c.doc for c in answer.citations] == ["dog.txt"]


def test_generator_gets_the_standalone_question(ask):
    history = [("What does the guide say about Dogs?", "A dog needs a long walk every morning. [1]")]
    answer, gen = ask(lambda n: f"Dogs fetch sticks in the park [{n['sticks']}].", question="And what about Goldfish?",
                      history=history)
    assert gen.calls[0][0] == answer.question == "What does the guide say about Goldfish?"
    assert answer.original_question == "And what about Goldfish?"


@pytest.mark.parametrize("style", ["one", "two"])
def test_marker_after_the_full_stop(ask, style):
    def reply(n):
        one = f"Goldfish eat flakes and tiny shrimp. [{n['goldfish']}]"
        return one if style == "one" else f"{one} Dogs fetch sticks in the park. [{n['sticks']}]"

    answer, _ = ask(reply)
    assert not answer.abstained
    assert answer.citations[0].quote == GOLDFISH
    assert answer.text.startswith("Goldfish eat flakes and tiny shrimp. [1]")


# ---- OpenAICompatible: configuration ------------------------------------------------------------------

@pytest.fixture
def no_llm_env(monkeypatch):
    for name in ("RAG_LLM_BASE_URL", "RAG_LLM_MODEL", "RAG_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("env", [{}, {"RAG_LLM_BASE_URL": "http://127.0.0.1:9"}, {"RAG_LLM_MODEL": "m"},
                                 {"RAG_LLM_BASE_URL": "", "RAG_LLM_MODEL": "m"}])
def test_missing_configuration_is_an_error(no_llm_env, env):
    for name, value in env.items():
        no_llm_env.setenv(name, value)
    with pytest.raises(RagError, match="RAG_LLM_BASE_URL and RAG_LLM_MODEL"):
        OpenAICompatible()


def test_configuration_from_the_environment(no_llm_env):
    no_llm_env.setenv("RAG_LLM_BASE_URL", "http://127.0.0.1:9/v1/")
    no_llm_env.setenv("RAG_LLM_MODEL", "tiny")
    no_llm_env.setenv("OPENAI_API_KEY", "sk-openai")
    g = OpenAICompatible()
    assert (g.base_url, g.model, g.api_key) == ("http://127.0.0.1:9/v1", "tiny", "sk-openai")
    no_llm_env.setenv("RAG_LLM_API_KEY", "sk-rag")
    assert OpenAICompatible().api_key == "sk-rag"
    explicit = OpenAICompatible(base_url="http://127.0.0.1:8/", model="other", api_key="k")
    assert (explicit.base_url, explicit.model, explicit.api_key) == ("http://127.0.0.1:8", "other", "k")


def test_cli_ask_llm_without_configuration(no_llm_env, toy_index, capsys):
    code = main(["ask", "What do goldfish eat?", "--llm", "--index", str(toy_index), "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.strip().startswith("rag: error:") and "RAG_LLM_MODEL" in err and len(err.strip().splitlines()) == 1


# ---- OpenAICompatible against a stub server --------------------------------------------------------------

class Stub:
    """A chat-completions endpoint on 127.0.0.1: records requests; `respond(body) -> (status, bytes)`."""

    def __init__(self):
        self.requests: list[dict] = []
        self.respond = lambda body: (200, completion("hello"))
        self.delay = 0.0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                data = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(data)
                stub.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if stub.delay:
                    time.sleep(stub.delay)
                status, payload = stub.respond(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda request, address: None  # a client that timed out has hung up
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def completion(content) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()


@pytest.fixture
def stub():
    s = Stub()
    yield s
    s.close()


PASSAGES = [Passage("a.txt", 0, 20, "Goldfish eat flakes."), Passage("b.txt", 5, 30, "Dogs fetch sticks.")]


def test_generate_returns_the_content(stub):
    stub.respond = lambda body: (200, completion("Goldfish eat flakes [1]."))
    g = OpenAICompatible(base_url=stub.url + "/", model="tiny", api_key="sk-test", timeout=5)
    assert g.generate("What do goldfish eat?", PASSAGES) == "Goldfish eat flakes [1]."
    (req,) = stub.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer sk-test"
    assert req["headers"]["Content-Type"] == "application/json"
    body = req["body"]
    assert body["model"] == "tiny" and body["temperature"] == 0
    system, user = body["messages"]
    assert system == {"role": "system", "content": PROMPT}
    assert user["role"] == "user"
    assert user["content"] == ("Passages:\n[1] Goldfish eat flakes.\n\n[2] Dogs fetch sticks.\n\n"
                               "Question: What do goldfish eat?")


def test_no_key_no_authorization_header(stub, no_llm_env):
    g = OpenAICompatible(base_url=stub.url, model="tiny", timeout=5)
    assert g.generate("q", PASSAGES) == "hello"
    assert "Authorization" not in stub.requests[0]["headers"]


def test_null_content_is_empty_text(stub):
    stub.respond = lambda body: (200, completion(None))
    assert OpenAICompatible(base_url=stub.url, model="tiny", timeout=5).generate("q", PASSAGES) == ""


@pytest.mark.parametrize("status, payload", [
    (500, b'{"error": "boom"}'),
    (404, b'{"error": "no such model"}'),
    (200, b"this is not json"),
    (200, b'{"choices": []}'),
    (200, b'{"result": "no choices key"}'),
])
def test_server_errors_become_rag_errors(stub, status, payload):
    stub.respond = lambda body: (status, payload)
    g = OpenAICompatible(base_url=stub.url, model="tiny", timeout=5)
    with pytest.raises(RagError, match="generator at 'http://127.0.0.1:"):
        g.generate("q", PASSAGES)


def test_timeout_is_a_rag_error(stub):
    stub.delay = 1.0
    g = OpenAICompatible(base_url=stub.url, model="tiny", timeout=0.2)
    t0 = time.perf_counter()
    with pytest.raises(RagError, match="failed"):
        g.generate("q", PASSAGES)
    assert time.perf_counter() - t0 < 0.9


def test_connection_refused_is_a_rag_error():
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    g = OpenAICompatible(base_url=f"http://127.0.0.1:{port}", model="tiny", timeout=2)
    with pytest.raises(RagError, match=str(port)):
        g.generate("q", PASSAGES)


def test_assistant_with_the_openai_client(stub, story_retriever, story_docs):
    """The whole path: retrieved passages are sent numbered, the reply is verified into citations."""

    def respond(body):
        user = body["messages"][1]["content"]
        blocks = user.split("Passages:\n", 1)[1].split("\n\nQuestion:")[0].split("\n\n")
        n = next(int(b[1:b.index("]")]) for b in blocks if "Goldfish" in b)
        return 200, completion(f"Goldfish eat flakes and tiny shrimp [{n}]. Goldfish sing at dawn [{n}].")

    stub.respond = respond
    assistant = Assistant(story_retriever, k=4,
                          generator=OpenAICompatible(base_url=stub.url, model="tiny", timeout=5))
    answer = assistant.ask("What do goldfish eat?")
    assert answer.text == "Goldfish eat flakes and tiny shrimp. [1]"
    (c,) = answer.citations
    assert c.quote == GOLDFISH == source(story_docs, "fish.md")[c.start:c.end]
    assert "Question: What do goldfish eat?" in stub.requests[0]["body"]["messages"][1]["content"]
    assert len(answer.passages) == 4
