"""The optional reader: a cross-encoder that reads the question together with each passage or sentence.

`as_reader` turns what a caller gives (a sentence-transformers `CrossEncoder`'s name or local folder,
an already built object with `predict(pairs)`, or any `Reader`) into a `Reader`, whose
`rank(question, texts)` gives one logit per text: above 0, the text more likely answers the question
than not. `rerank` orders retrieved passages by it; `answerability` is its sigmoid, the probability
that `rag.answer.score` blends with a sentence's relevance. `CrossEncoderReader` loads its model on
first use (or `load()`), from local files only: a folder, or a name already in the Hugging Face cache.
Nothing is downloaded, and no progress bar or library warning reaches the console. Does not choose
sentences or decide to abstain (`rag.answer.assistant` does), and trains nothing.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rag.errors import InputError
from rag.types import Passage


@runtime_checkable
class Reader(Protocol):
    def rank(self, question: str, texts: Sequence[str]) -> list[float]:
        """One logit per text, in order: how likely it answers `question` (above 0: more likely than not)."""
        ...


class CrossEncoderReader:
    """A `Reader` over a sentence-transformers `CrossEncoder` (by name or folder, loaded lazily) or over
    any object with `predict(pairs)` that gives one logit per (question, text) pair, or two (not, yes)."""

    def __init__(self, model: str | os.PathLike | object):
        self._lock = threading.Lock()
        if isinstance(model, (str, os.PathLike)):
            self.name, self.path, self._model = str(model), _local(str(model)), None
        else:
            self.name, self.path, self._model = type(model).__name__, None, model
        self._options: dict | None = None

    def load(self) -> CrossEncoderReader:
        """Load the model now (InputError naming the folder when it is no cross-encoder)."""
        with self._lock:
            if self._model is None:
                self._model = _load(self.path, self.name)
        return self

    def rank(self, question: str, texts: Sequence[str]) -> list[float]:
        texts = list(texts)
        if not texts:
            return []
        model = self.load()._model
        if self._options is None:
            self._options = _raw_options(model)
        scores = np.asarray(model.predict([(question, t) for t in texts], **self._options), dtype=np.float64)
        return _logits(scores, len(texts), self.name)


def as_reader(reader: object) -> Reader | None:
    """`reader` as a `Reader`: None stays None; a name or folder, a `CrossEncoder` (whose own `rank` gives
    no logits), or another object with `predict` becomes a `CrossEncoderReader`; a `Reader` is used as it is."""
    if reader is None:
        return None
    if isinstance(reader, (str, os.PathLike)) or _sentence_transformers(reader):
        return CrossEncoderReader(reader)
    if isinstance(reader, Reader):
        return reader
    if callable(getattr(reader, "predict", None)):
        return CrossEncoderReader(reader)
    raise InputError(f"reader of type {type(reader).__name__} has neither rank(question, texts) nor predict(pairs)")


def sigmoid(logit: float) -> float:
    """The probability a logit stands for."""
    return 1.0 / (1.0 + math.exp(-logit)) if logit >= 0 else math.exp(logit) / (1.0 + math.exp(logit))


def answerability(reader: Reader, question: str, texts: Sequence[str]) -> list[float]:
    """The reader's probability that each of `texts` answers `question`."""
    return [sigmoid(x) for x in reader.rank(question, list(texts))]


def rerank(reader: Reader, question: str, passages: Sequence[Passage]) -> list[Passage]:
    """`passages` best first by the reader (ties keep retrieval order), each scored with its probability."""
    probabilities = answerability(reader, question, [p.text for p in passages])
    order = sorted(range(len(passages)), key=lambda i: -probabilities[i])
    return [replace(passages[i], score=probabilities[i]) for i in order]


def _logits(scores: np.ndarray, n: int, name: str) -> list[float]:
    """One logit per pair from what `predict` gave: a column of logits, or (not, yes) logit pairs."""
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    elif scores.ndim == 2 and scores.shape[1] == 2:
        scores = scores[:, 1] - scores[:, 0]  # log-odds of "yes": softmax's second probability is its sigmoid
    if scores.shape != (n,) or not np.isfinite(scores).all():
        raise InputError(f"reader {name!r} gave scores of shape {scores.shape} for {n} pairs; a reader gives "
                         "one finite score per pair (a model with one or two labels)")
    return [float(x) for x in scores]


def _local(name: str) -> Path:
    """The folder of model `name`: a local folder, or its snapshot in the Hugging Face cache (no download)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise InputError(f"reader {name!r} is a file; give a model folder or a cached model's name")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, local_files_only=True))
    except (OSError, ValueError) as exc:  # not cached (LocalEntryNotFoundError), or no valid name at all
        raise InputError(f"reader {name!r} is neither a model folder nor a model in the Hugging Face cache "
                         f"(nothing is downloaded; {type(exc).__name__})") from None


def _load(path: Path, name: str):
    """The `CrossEncoder` saved at `path`, loaded quietly, its inputs cut to what its positions allow."""
    with _quiet():
        from sentence_transformers import CrossEncoder

        try:
            model = CrossEncoder(str(path), local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise InputError(f"reader {name!r}: no cross-encoder could be loaded from {str(path)!r}: {first}") from None
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    limit = "max_seq_length" if hasattr(type(model), "max_seq_length") else "max_length"  # 5+, 3-4
    current = getattr(model, limit, None)
    if isinstance(positions, int) and (current is None or current > positions):
        setattr(model, limit, positions)
    return model


def _raw_options(model: object) -> dict:
    """`predict` options for logits without a progress bar: a `CrossEncoder`'s own activation is
    switched off (the sigmoid is applied here, once)."""
    try:
        params = inspect.signature(model.predict).parameters
    except (TypeError, ValueError):
        return {}
    options = {"show_progress_bar": False} if "show_progress_bar" in params else {}
    if _sentence_transformers(model):
        import torch

        for name in ("activation_fn", "activation_fct"):  # sentence-transformers 4+, 3
            if name in params:
                options[name] = torch.nn.Identity()
                break
    return options


def _sentence_transformers(model: object) -> bool:
    return type(model).__module__.startswith("sentence_transformers.")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No progress bars and only errors from transformers and sentence-transformers while loading."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    st_log = logging.getLogger("sentence_transformers")
    st_level = st_log.level
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    st_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        st_log.setLevel(st_level)
