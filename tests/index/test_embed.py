"""The embedders: model resolution, the plain-folder detection behind the fast query paths, and
(end to end) that the real embedders give the same normalised vectors (the ONNX encoder has its own
tests in test_onnx.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.errors import RagError
from rag.index.embed import (
    DEFAULT_MODEL,
    SentenceTransformerEmbedder,
    TransformersEmbedder,
    _plain_pooling,
    query_embedder,
    resolve_model,
)


def write_model_folder(folder, modules, pooling=None, max_len=128):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_len}))
    if pooling is not None:
        (folder / "1_Pooling").mkdir(exist_ok=True)
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder


T = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
P = {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
N = {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
D = {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
MEAN = {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False}
CLS = {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True, "pooling_mode_max_tokens": False}
MAX = {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": False, "pooling_mode_max_tokens": True}


@pytest.mark.parametrize("modules, pooling, expected", [
    ([T, P, N], MEAN, ("mean", 128)),
    ([T, P], CLS, ("cls", 128)),
    ([T, P, D], MEAN, None),          # a Dense layer after pooling: only sentence-transformers knows it
    ([T, P, N], MAX, None),           # max pooling is not reproduced
    ([T, P], {**MEAN, "pooling_mode_cls_token": True}, None),  # two modes at once
    ([P, T], MEAN, None),
])
def test_plain_pooling_detection(tmp_path, modules, pooling, expected):
    assert _plain_pooling(write_model_folder(tmp_path / "m", modules, pooling)) == expected


def test_plain_pooling_on_a_folder_without_config(tmp_path):
    assert _plain_pooling(tmp_path) is None


def test_default_model_resolves_to_the_packaged_folder():
    folder = resolve_model(DEFAULT_MODEL)
    assert (resolve_model(f"sentence-transformers/{DEFAULT_MODEL}") == folder)
    assert _plain_pooling(Path(folder)) == ("mean", 256)
    assert resolve_model("some/other-model") == "some/other-model"


def test_an_unloadable_model_is_one_clear_error(tmp_path):
    with pytest.raises(RagError, match="could not load embedding model"):
        SentenceTransformerEmbedder(str(tmp_path / "no-such-model"))


@pytest.mark.e2e
def test_fast_query_paths_give_the_sentence_transformers_vectors(real_embedder):
    from rag.index.onnx import OnnxEmbedder

    folder = Path(resolve_model(DEFAULT_MODEL))
    onnx, plain = query_embedder(DEFAULT_MODEL), TransformersEmbedder(DEFAULT_MODEL, folder, *_plain_pooling(folder))
    assert isinstance(onnx, OnnxEmbedder)  # the default model; a plain folder of another one runs on transformers
    texts = ["When was the European Peace Facility set up?", "NATO", "a long sentence about Europe " * 40]
    for fast in (onnx, plain):
        assert fast.dim == real_embedder.dim == 384
        a, b = fast.encode(texts), real_embedder.encode(texts)
        assert a.dtype == np.float32 and a.shape == (3, 384)
        np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(a, b, atol=1e-5)
