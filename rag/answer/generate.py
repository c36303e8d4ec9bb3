"""Optional answer generation by a language model, with the same citation verification.

`Generator` is the small interface: `generate(question, passages) -> text` where the text cites the
numbered passages as `[1]`, `[2]`, ... `OpenAICompatible` calls any OpenAI-compatible chat endpoint
(base URL, model and key from the environment: RAG_LLM_BASE_URL, RAG_LLM_MODEL, RAG_LLM_API_KEY or
OPENAI_API_KEY) with the standard library only. `verified_answer` keeps a generated sentence only
when a marker in it points to a passage sentence that supports it (most of its content terms occur
there); that passage sentence becomes the citation, checked against the source text
(`rag.answer.compose.verify`). Nothing here runs unless a generator is passed to `Assistant`; the
offline answerer stays the default.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Protocol

from rag.answer import weights
from rag.answer.compose import verify
from rag.errors import RagError
from rag.index import lexical
from rag.ingest.sentences import split_sentences
from rag.types import Answer, Citation, Passage

NOT_FOUND = "NOT FOUND"
_MARKER = re.compile(r"\[(\d{1,2})\]")
_MARKER_AFTER_STOP = re.compile(r"\s*([.!?])\s*((?:\[\d{1,2}\]\s*)+)(?=\s|$)")
PROMPT = (
    "Answer the question using only the numbered passages. Write one or two short sentences and put the "
    "number of the passage that supports each sentence in brackets after it, like [1]. If the passages do "
    f"not answer the question, reply exactly {NOT_FOUND}."
)


class Generator(Protocol):
    def generate(self, question: str, passages: Sequence[Passage]) -> str: ...


class OpenAICompatible:
    """A chat-completions endpoint; nothing is sent until `generate` is called."""

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0):
        self.base_url = (base_url or os.environ.get("RAG_LLM_BASE_URL") or "").rstrip("/")
        self.model = model or os.environ.get("RAG_LLM_MODEL") or ""
        self.api_key = api_key or os.environ.get("RAG_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or ""
        if not self.base_url or not self.model:
            raise RagError("an OpenAI-compatible generator needs RAG_LLM_BASE_URL and RAG_LLM_MODEL to be set")
        self.timeout = timeout

    def generate(self, question: str, passages: Sequence[Passage]) -> str:
        numbered = "\n\n".join(f"[{n}] {p.text}" for n, p in enumerate(passages, 1))
        body = {"model": self.model, "temperature": 0, "messages": [
            {"role": "system", "content": PROMPT},
            {"role": "user", "content": f"Passages:\n{numbered}\n\nQuestion: {question}"}]}
        request = urllib.request.Request(
            f"{self.base_url}/chat/completions", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.load(response)["choices"][0]["message"]["content"] or ""
        except (urllib.error.URLError, TimeoutError, KeyError, IndexError, ValueError) as exc:
            raise RagError(f"generator at {self.base_url!r} failed: {exc}") from None


def _support(claim: str, passage: Passage) -> tuple[float, int, int]:
    """How well the passage's best sentence supports `claim`: (share of claim terms, start, end)."""
    terms = set(lexical.tokenize([_MARKER.sub(" ", claim)])[0])
    best = (0.0, passage.start, passage.end)
    if not terms:
        return best
    for s, e in split_sentences(passage.text):
        present = set(lexical.tokenize([passage.text[s:e]])[0])
        share = len(terms & present) / len(terms)
        if share > best[0]:
            best = (share, passage.start + s, passage.start + e)
    return best


def verified_answer(generator: Generator, question: str, original: str, passages: Sequence[Passage],
                    document_text: Callable[[str], str | None]) -> Answer:
    """Generate, then keep only sentences whose markers point to supporting, verified source text."""
    text = generator.generate(question, passages).strip()
    text = _MARKER_AFTER_STOP.sub(r" \2\1", text)  # "... shrimp. [2]" -> "... shrimp [2]." so it stays with its sentence
    citations: list[Citation] = []
    kept: list[str] = []
    if text and NOT_FOUND not in text:
        for s, e in split_sentences(text):
            sentence = text[s:e]
            numbers = [int(n) for n in _MARKER.findall(sentence)]
            renumbered = []
            for n in dict.fromkeys(numbers):
                if not 1 <= n <= len(passages):
                    continue
                share, start, end = _support(sentence, passages[n - 1])
                if share < weights.MIN_SUPPORT:
                    continue
                p = passages[n - 1]
                existing = next((c for c in citations if (c.doc, c.start, c.end) == (p.doc, start, end)), None)
                citation = existing or Citation(len(citations) + 1, p.doc, start, end, p.text[start - p.start:end - p.start], p)
                if existing is None:
                    if not verify(citation, document_text(citation.doc)):
                        continue
                    citations.append(citation)
                renumbered.append(citation.n)
            if renumbered:
                body = _MARKER.sub("", sentence).strip()
                body = re.sub(r"\s+([.,;:!?])", r"\1", body)
                kept.append(body + " " + "".join(f"[{n}]" for n in renumbered))
    if not kept:
        reason = ("the generator found no answer in the passages" if not text or NOT_FOUND in text
                  else "no generated sentence was supported by the passage it cited")
        return Answer.abstain(question, reason=reason, original_question=original, passages=tuple(passages))
    return Answer.cited(question, " ".join(kept), tuple(citations), original_question=original,
                        passages=tuple(passages))
