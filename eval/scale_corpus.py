"""A generated corpus and a fast deterministic encoder for `eval/bench_scale.py`.

`generate(n, seed)` makes `n` passages in documents of eight, written in pseudo-English: a vocabulary
of made-up words drawn with Zipf-like frequencies (the 33 English stop words bm25s drops are the most
frequent words, as in real text), each document leaning on the words of one of 2,000 topics (so
vectors cluster as real ones do), capitalised names here and there, sentences of 8 to 25 words and
passages of 1 to 8 sentences (about 4 on average). `HashEncoder` embeds a text as the weighted sum
of its words' fixed random vectors (rare words weigh more), normalised: similar texts get similar
vectors, fast enough for millions of passages. Neither is a model of meaning; the benchmark measures
sizes and speeds, not answers. Same `n` and seed, same corpus, byte for byte.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

from bm25s.stopwords import STOPWORDS_EN

from rag.types import Passage

DIM = 384
VOCAB = 120_000  # content words; plus stop words and names
NAMES = 4_000
TOPICS = 2_000
TOPIC_WORDS = 100
TOPIC_SHARE = 0.6  # share of a document's words drawn from its topic's
PASSAGES_PER_DOC = 8
SPECTRUM = (0.8, 3.0)  # word vectors' variance along their i-th direction falls as (i + 3) ** -0.8
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"] + [c + v + "n" for c in "bdgkmprst" for v in "aeiou"]
_WORD = re.compile(r"[A-Za-z]+")


def _words(rng: np.random.Generator, n: int, syllables: tuple[int, int]) -> list[str]:
    """`n` distinct made-up words of 2 to 4 syllables."""
    out, seen = [], set()
    while len(out) < n:
        counts = rng.integers(*syllables, size=n)
        picks = rng.integers(0, len(_SYLLABLES), size=(n, syllables[1]))
        for k, row in zip(counts, picks):
            word = "".join(_SYLLABLES[j] for j in row[:k])
            if word not in seen and len(out) < n:
                seen.add(word)
                out.append(word)
    return out


@dataclass(frozen=True)
class Vocabulary:
    words: list[str]  # stop words, then content words by frequency rank, then names (lower case)
    stop: int  # words[:stop] are stop words
    names: int  # words[-names:] are names
    cdf: np.ndarray  # Zipf-like cumulative frequencies over words[:-names]
    weight: np.ndarray  # per word: how much it weighs in a vector

    @classmethod
    def make(cls, seed: int) -> Vocabulary:
        rng = np.random.default_rng(seed)
        stop = sorted(STOPWORDS_EN, key=lambda w: (len(w), w))
        content = _words(rng, VOCAB, (2, 5))
        known = set(content)
        names = [w for w in _words(rng, 2 * NAMES, (2, 4)) if w not in known][:NAMES]
        ranks = np.arange(len(stop) + VOCAB, dtype=np.float64)
        freq = 1.0 / (ranks + 2.7) ** 1.07  # Zipf-Mandelbrot, as English text roughly follows
        cdf = np.cumsum(freq) / freq.sum()
        weight = np.log1p(np.arange(len(stop) + VOCAB + NAMES) / 50.0).astype(np.float32)
        weight[-NAMES:] = weight.max()
        return cls(stop + content + names, len(stop), NAMES, cdf, weight)

    @property
    def ids(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}


@dataclass(frozen=True)
class Corpus:
    passages: list[Passage]
    texts: dict[str, str]  # doc -> its text
    words: list[np.ndarray]  # per passage: its word ids (for the encoder)
    sentence_words: list[list[np.ndarray]]  # per passage, per sentence: word ids
    vocabulary: Vocabulary


def generate(n: int, seed: int = 0) -> Corpus:
    """`n` passages of pseudo-English in documents of `PASSAGES_PER_DOC` (see the module docstring)."""
    vocab = Vocabulary.make(seed)
    rng = np.random.default_rng(seed + 1)
    n_general = len(vocab.words) - vocab.names
    topic_words = rng.integers(vocab.stop + 300, n_general, size=(TOPICS, TOPIC_WORDS))
    topic_cdf = np.cumsum(1.0 / np.arange(1, TOPIC_WORDS + 1)) / np.sum(1.0 / np.arange(1, TOPIC_WORDS + 1))
    n_sent = np.clip(rng.poisson(3.0, size=n) + 1, 1, 8)
    lengths = np.clip(rng.poisson(9.0, size=int(n_sent.sum())) + 8, 8, 25)
    total = int(lengths.sum())
    ids = np.searchsorted(vocab.cdf, rng.random(total)).astype(np.int64)
    docs_topic = rng.integers(0, TOPICS, size=n // PASSAGES_PER_DOC + 1)
    sentence_passage = np.repeat(np.arange(n), n_sent)
    token_doc = np.repeat(sentence_passage // PASSAGES_PER_DOC, lengths)
    from_topic = rng.random(total) < TOPIC_SHARE
    picks = np.searchsorted(topic_cdf, rng.random(int(from_topic.sum())))
    ids[from_topic] = topic_words[docs_topic[token_doc[from_topic]], picks]
    is_name = rng.random(total) < 0.03
    ids[is_name] = n_general + np.minimum(rng.zipf(1.3, size=int(is_name.sum())) - 1, vocab.names - 1)
    ends = np.cumsum(lengths) - 1
    short = ids[ends] < vocab.stop  # "... a." would not end a sentence ("a." reads as an initial)
    ids[ends[short]] = rng.integers(vocab.stop, n_general, size=int(short.sum()))
    years = rng.integers(1990, 2025, size=len(docs_topic))
    words, names_from = vocab.words, n_general
    shown = words[:names_from] + [w.title() for w in words[names_from:]]  # names capitalised

    passages, texts, passage_words, sentence_words = [], {}, [], []
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    s = 0
    for d in range((n + PASSAGES_PER_DOC - 1) // PASSAGES_PER_DOC):
        doc, year = f"doc{d:07d}.txt", int(years[d])
        title = f"Report {d} of the {shown[names_from + d % vocab.names]} office"
        body, spans = [title, ""], []
        pos = len(title) + 2
        for i in range(d * PASSAGES_PER_DOC, min(n, (d + 1) * PASSAGES_PER_DOC)):
            sentences, ws = [], []
            for _ in range(int(n_sent[i])):
                w = ids[bounds[s]:bounds[s + 1]]
                sentence = " ".join([shown[j] for j in w.tolist()])
                sentences.append(sentence[0].upper() + sentence[1:] + ".")
                ws.append(w)
                s += 1
            text = " ".join(sentences)
            spans.append((i, pos, text, ws))
            body += [text, ""]
            pos += len(text) + 2
        texts[doc] = "\n".join(body)
        for j, (i, start, text, ws) in enumerate(spans):
            passages.append(Passage(doc=doc, start=start, end=start + len(text), text=text,
                                    heading=(title, f"Section {j + 1}"), title=title, year=year,
                                    line=3 + 2 * j))
            passage_words.append(np.concatenate(ws))
            sentence_words.append(ws)
    return Corpus(passages, texts, passage_words, sentence_words, vocab)


class HashEncoder:
    """The `Embedder` protocol with fixed random word vectors: a text's vector is the weighted sum of its
    words' (a word outside the vocabulary gets one from its hash), normalised. Word vectors have a
    decaying spectrum in a random basis, as real sentence embeddings put most of their variance in a
    few dozen directions (all-MiniLM-L6-v2 on SQuAD: 21% in the top 10 principal components, 53% in
    the top 50; these: 22% and 50%). Deterministic; `table()` makes every word's vector at once for
    bulk encoding, `encode` makes the few a question needs."""

    name = "bench-hash-384"
    dim = DIM

    def __init__(self, vocabulary: Vocabulary, seed: int = 0):
        self.vocabulary, self.seed = vocabulary, seed
        self._ids = vocabulary.ids
        rng = np.random.default_rng(seed + 2)
        self._scale = ((np.arange(DIM) + SPECTRUM[1]) ** (-SPECTRUM[0] / 2)).astype(np.float32)
        self._basis = np.linalg.qr(rng.standard_normal((DIM, DIM)))[0].T.astype(np.float32)
        self._table: np.ndarray | None = None

    def _raw(self, ids: np.ndarray) -> np.ndarray:
        """The words' vectors before the spectrum and basis, weighted."""
        raw = np.stack([np.random.default_rng([self.seed, int(i)]).standard_normal(DIM, dtype=np.float32)
                        for i in ids]) if len(ids) else np.zeros((0, DIM), np.float32)
        return raw * self.vocabulary.weight[np.minimum(ids, len(self.vocabulary.weight) - 1)][:, None]

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        return (self._raw(ids) * self._scale) @ self._basis

    def table(self) -> np.ndarray:
        """Every vocabulary word's vector (words by id)."""
        if self._table is None:
            self._table = self._rows(np.arange(len(self.vocabulary.words)))
        return self._table

    def encode_ids(self, rows: list[np.ndarray]) -> np.ndarray:
        """The vectors of texts given as word ids, one row each (the whole table is made first)."""
        from scipy import sparse

        table = self.table()
        out = np.zeros((len(rows), DIM), np.float32)
        for a in range(0, len(rows), 20_000):
            part = rows[a:a + 20_000]
            indptr = np.concatenate([[0], np.cumsum([len(r) for r in part])])
            flat = np.concatenate(part) if part else np.zeros(0, np.int64)
            counts = sparse.csr_matrix((np.ones(len(flat), np.float32), flat, indptr), shape=(len(part), len(table)))
            out[a:a + len(part)] = counts @ table
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    def word_ids(self, text: str) -> np.ndarray:
        return np.array([self._ids.get(w, len(self.vocabulary.words) + zlib.crc32(w.encode()) % 1_000_000)
                         for w in map(str.lower, _WORD.findall(text))], dtype=np.int64)

    def encode(self, texts) -> np.ndarray:
        """Vectors of a few texts, made from their words' alone (no table)."""
        out = np.zeros((len(texts), DIM), np.float32)
        for k, text in enumerate(texts):
            ids, counts = np.unique(self.word_ids(text), return_counts=True)
            out[k] = ((counts.astype(np.float32) @ self._raw(ids)) * self._scale) @ self._basis
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


def questions(corpus: Corpus, count: int, seed: int = 0) -> list[str]:
    """`count` questions, each of eight to fourteen words of one random passage, the rarer the likelier
    (people ask about the specific: names, terms)."""
    rng = np.random.default_rng(seed + 3)
    vocab, out = corpus.vocabulary, []
    names_from = len(vocab.words) - vocab.names
    for i in rng.integers(0, len(corpus.passages), size=count):
        w = np.unique(corpus.words[i][corpus.words[i] >= vocab.stop])
        odds = vocab.weight[w].astype(np.float64) ** 2
        pick = rng.choice(w, size=min(len(w), int(rng.integers(8, 15))), replace=False, p=odds / odds.sum())
        tokens = [vocab.words[j].title() if j >= names_from else vocab.words[j] for j in pick.tolist()]
        out.append("What about " + " ".join(tokens) + "?")
    return out
