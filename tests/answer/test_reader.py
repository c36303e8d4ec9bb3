"""rag.answer.reader and the assistant with a reader: a tiny CrossEncoder built in the test (loaded by path,
quietly, lazily), deterministic fake readers (an object with `predict`) for what the reader changes:
the passages' order, the quoted sentence, the abstention; no reader answers as before; a bad name or
folder is one line naming it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import TOY_FILES, assert_answer_well_formed

from answer.tiny_cross_encoder import build_cross_encoder
from rag.answer.assistant import Assistant
from rag.answer.reader import CrossEncoderReader, Reader, answerability, as_reader, rerank, sigmoid
from rag.answer.score import candidates, score
from rag.errors import InputError
from rag.query import make_query


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny random (seeded) cross-encoder folder over the toy corpus's words."""
    return build_cross_encoder(tmp_path_factory.mktemp("reader") / "tiny", list(TOY_FILES.values()))


class Liking:
    """A fake model: logit +4 for a text holding `liked`, -4 for any other; records every pair."""

    def __init__(self, liked: str):
        self.liked, self.pairs = liked, []

    def predict(self, pairs):
        self.pairs.extend(pairs)
        return np.array([4.0 if self.liked in text else -4.0 for _, text in pairs])


class Fixed:
    """A `Reader` (with `rank`) giving each text the logit `logits[text]` (0 when not listed)."""

    def __init__(self, logits: dict[str, float]):
        self.logits = logits

    def rank(self, question, texts):
        return [self.logits.get(t, 0.0) for t in texts]


# ---- loading ------------------------------------------------------------------------------------------

def test_loads_by_path_lazily_and_quietly_and_ranks_like_the_cross_encoder(tiny_model, capfd):
    import torch
    from sentence_transformers import CrossEncoder

    reader = as_reader(str(tiny_model))
    assert isinstance(reader, CrossEncoderReader) and isinstance(reader, Reader)
    assert reader._model is None  # nothing loaded until the first question
    texts = ["Cats are small furry pets that purr.", "Goldfish eat flakes.", "A dog needs a long walk."]
    logits = reader.rank("What do goldfish eat?", texts)
    assert capfd.readouterr().err == ""  # no progress bar, no library warning
    expected = CrossEncoder(str(tiny_model)).predict([("What do goldfish eat?", t) for t in texts],
                                                     activation_fn=torch.nn.Identity(), show_progress_bar=False)
    assert logits == pytest.approx(expected.tolist(), abs=1e-5)
    assert len(set(np.round(logits, 3))) == 3  # the seeded weights tell these apart
    assert reader.rank("anything", []) == []
    assert as_reader(tiny_model).rank("What do goldfish eat?", texts) == pytest.approx(logits, abs=1e-5)  # a Path


def test_an_already_built_cross_encoder_is_read_without_its_activation(tiny_model):
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(tiny_model))  # its predict applies a sigmoid; the reader wants the logit
    texts = ["Goldfish eat flakes.", "Dogs bark at strangers."]
    assert as_reader(model).rank("q?", texts) == pytest.approx(as_reader(str(tiny_model)).rank("q?", texts), abs=1e-5)


@pytest.mark.parametrize("given, words", [
    ("nosuch", ["'nosuch'", "Hugging Face cache"]),
    ("no/such/model/here", ["'no/such/model/here'"]),
    ("FILE", ["is a file"]),
    ("EMPTY", ["no cross-encoder could be loaded"]),
])
def test_a_bad_name_or_folder_is_one_line_naming_it(tmp_path, given, words):
    if given == "FILE":
        given = str(tmp_path / "model.bin")
        (tmp_path / "model.bin").write_bytes(b"\x00")
    elif given == "EMPTY":
        given = str(tmp_path / "empty")
        (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as info:
        as_reader(given).load()
    message = str(info.value)
    assert "\n" not in message and repr(given) in message
    assert all(w in message for w in words), message


def test_what_is_no_reader_is_refused_by_type():
    with pytest.raises(InputError, match="int"):
        as_reader(42)


def test_scores_become_one_logit_per_pair():
    class TwoLabels:
        def predict(self, pairs):
            return np.array([[0.0, 2.0], [1.0, -1.0]])  # (not, yes): the log-odds of yes

    assert as_reader(TwoLabels()).rank("q", ["a", "b"]) == [2.0, -2.0]

    class Wrong:
        def predict(self, pairs):
            return np.zeros((len(pairs), 3))

    with pytest.raises(InputError, match="shape"):
        as_reader(Wrong()).rank("q", ["a", "b"])
    assert sigmoid(0.0) == 0.5 and sigmoid(-800.0) == 0.0 and sigmoid(800.0) == 1.0
    assert answerability(Fixed({"a": math.log(3)}), "q", ["a"]) == [pytest.approx(0.75)]


# ---- reranking ----------------------------------------------------------------------------------------

def test_rerank_follows_the_tiny_model(tiny_model, toy_retriever):
    passages = toy_retriever.retrieve(make_query("What do goldfish eat?", k=6))
    reader = as_reader(str(tiny_model))
    ranked = rerank(reader, "What do goldfish eat?", passages)
    assert sorted((p.doc, p.start) for p in ranked) == sorted((p.doc, p.start) for p in passages)
    logits = dict(zip([(p.doc, p.start) for p in passages], reader.rank("What do goldfish eat?",
                                                                        [p.text for p in passages])))
    assert [p.score for p in ranked] == sorted((p.score for p in ranked), reverse=True)
    for p in ranked:
        assert p.score == pytest.approx(sigmoid(logits[(p.doc, p.start)]), abs=1e-5)


def test_the_assistant_reranks_a_wider_pool_and_keeps_k(toy_retriever):
    from rag.answer import weights

    question = "What do cats chase?"
    pool = [p.text for p in toy_retriever.retrieve(make_query(question, k=weights.READER_POOL * 2))]
    liking = Liking(pool[-1])  # the last passage retrieved is the reader's favourite
    answer = Assistant(toy_retriever, min_relevance=0.3, reader=liking).ask(question, k=2)
    assert len(answer.passages) == 2 and answer.passages[0].text == pool[-1]
    assert [p.score for p in answer.passages] == [pytest.approx(sigmoid(4.0)), pytest.approx(sigmoid(-4.0))]
    assert answer.passages[1].text == pool[0]  # the others in retrieval order
    assert {q for q, _ in liking.pairs} == {question}
    read = [text for _, text in liking.pairs]
    assert read[:len(pool)] == pool  # first the passages, READER_POOL times k of them ...
    kept = {c.text for c in candidates(answer.passages)}
    assert set(read[len(pool):]) == kept  # ... then the sentences of the k it kept


# ---- answerability ------------------------------------------------------------------------------------

def test_answerability_changes_which_sentence_is_quoted(toy_retriever, toy_docs):
    question = "What do cats do?"
    today = Assistant(toy_retriever, min_relevance=0.3).ask(question)
    assert today.citations[0].quote.startswith("Cats are small furry pets")
    answer = Assistant(toy_retriever, min_relevance=0.3, reader=Liking("sleeps")).ask(question)
    assert_answer_well_formed(answer, toy_docs)
    assert [c.quote for c in answer.citations] == ["A cat sleeps for most of the day and hunts at night."]


def test_sentence_relevance_is_blended_with_the_readers_probability(toy_retriever):
    from rag.answer import weights

    question = "What do goldfish eat?"
    found = candidates(toy_retriever.retrieve(make_query(question, k=3)))
    plain = {c.text: c for c in score(toy_retriever, question, found)}
    read = score(toy_retriever, question, found, Fixed({"Goldfish eat flakes, plankton and tiny shrimp.": 2.0}))
    for c in read:
        p = sigmoid(2.0) if c.text.startswith("Goldfish") else 0.5
        assert c.answerable == pytest.approx(p)
        w = weights.READER_WEIGHT
        assert c.relevance == pytest.approx((1 - w) * plain[c.text].relevance + w * p)
    assert all(c.answerable is None for c in plain.values())


def test_a_reader_that_finds_no_answer_abstains_in_plain_words(toy_retriever):
    answer = Assistant(toy_retriever, min_relevance=0.3, reader=Liking("nothing holds this")).ask("What do goldfish eat?")
    assert answer.abstained and answer.citations == ()
    assert answer.reason and "reader" not in answer.reason and not any(ch.isdigit() for ch in answer.reason)
    assert answer.passages  # the closest passages are still shown


def test_a_reader_that_finds_every_sentence_an_answer_keeps_todays_choice(toy_retriever):
    question = "What do goldfish eat?"
    today = Assistant(toy_retriever, min_relevance=0.3).ask(question)
    read = Assistant(toy_retriever, min_relevance=0.3, reader=Fixed({})).ask(question)  # every logit 0: p = 0.5
    assert [c.quote for c in read.citations] == [c.quote for c in today.citations]


# ---- no reader ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("question", ["What do goldfish eat?", "What do cats do?", "How many offices did the company "
                                      "open?", "Who won the chess tournament?", "Where do birds fly for the winter?"])
def test_no_reader_answers_as_before(toy_retriever, question):
    default = Assistant(toy_retriever, min_relevance=0.3)
    assert default.reader is None
    assert Assistant(toy_retriever, min_relevance=0.3, reader=None).ask(question) == default.ask(question)
