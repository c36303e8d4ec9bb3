"""The default model on ONNX Runtime (and, for documents, OpenVINO): sentence-transformers' vectors without torch.

`OnnxEmbedder` tokenizes with the model's own `tokenizer.json` (the `tokenizers` library), runs the
transformer exported to ONNX, and pools in numpy as the model's sentence-transformers configuration
says (mean over the attention mask or the CLS token, then L2 normalisation). Texts are tokenized
once and encoded longest first in small batches of similar length, so little time goes into
padding; many texts (a build) are encoded by one single-threaded session run from a thread per core,
which encodes about 15% more per second on 2 cores than one session with 2 threads, and gives the
same vectors whatever the number of cores.

`runtime="openvino"` runs the same ONNX file on OpenVINO instead, for documents (`rag.index.embed`'s
`document_embedder`): every call, of one text or a million, goes through it, so a text's stored vector
never depends on how many were encoded with it. Where the CPU computes in bfloat16 (AMX, AVX512-BF16)
OpenVINO is asked to (`precision` "bf16"; its vectors are the fp32 ones within 1e-4 cosine, and every
evaluation figure stayed within 0.002) and encodes 2.8x as fast as ONNX Runtime's fp32 on 2 such cores; elsewhere it computes in fp32 ("f32"), as fast as ONNX Runtime. Its batches hold
texts of one length (no padding), so a text's vector is the same bits alone as in any batch, in
bf16 too. It runs one stream of one thread per worker: with one worker, on the calling thread itself;
with more, on threads OpenVINO starts when the model is compiled, at the priority of the thread that
compiled it (`rag.index.embed.document_embedder` makes one per priority).

The ONNX file is made here, from the model folder's own weights, with torch's (TorchScript) exporter:
once, the first time it is needed, and cached under `$XDG_CACHE_HOME/rag/onnx/<key>/` (`~/.cache`
without XDG_CACHE_HOME), where the key is a SHA-256 of the weights file and the model's config.json
(a changed weights file gets a new export). It is written to a temporary folder and renamed, under a
lock, so a crash or two processes exporting at once never leave a half-written model. `int8=True`
adds onnxruntime's dynamic int8 quantisation of the same export; its vectors differ (cosine about
0.99), so it goes by a model name of its own (`rag.index.embed`). Encoding never imports torch,
transformers or sentence-transformers; only a first export does. Nothing is downloaded. Does not
choose between encoders or fall back to another: `rag.index.embed` does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # part of the cache key: bump when the export itself changes
OPSET = 17
BATCH = 8  # texts per ONNX run when encoding many (on one thread, 8 ran 15% faster than 32)
OPENVINO_BATCH = 32  # texts of one length per OpenVINO run (bf16 on 2 cores: 25k word pieces/s; 8: 20k)
WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # the first one the folder has is hashed and exported
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MODEL_FILE = "model.onnx"
RUNTIMES = ("onnxruntime", "openvino")


def cache_root() -> Path:
    """Where exports are kept: $XDG_CACHE_HOME/rag/onnx, else ~/.cache/rag/onnx."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag" / "onnx"


def model_key(folder: Path) -> str:
    """A SHA-256 (hex) of the folder's weights file and config.json, and of the export's version. The
    weights' digest is remembered beside the exports by the file's path, size, inode and times, so a
    cold start does not read 90 MB again; a rewritten file has new times and is hashed anew."""
    weights = next((folder / name for name in WEIGHTS if (folder / name).is_file()), None)
    if weights is None:
        raise FileNotFoundError(f"no weights ({' or '.join(WEIGHTS)}) in {str(folder)!r}")
    digest = hashlib.sha256(f"rag-onnx-export {EXPORT_VERSION} opset {OPSET}\n".encode())
    digest.update(_file_digest(weights).encode())
    digest.update((folder / "config.json").read_bytes())
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    st = path.stat()
    stamp = f"{path.resolve()}|{st.st_size}|{st.st_ino}|{st.st_mtime_ns}|{st.st_ctime_ns}"
    memo = cache_root() / "digests" / (hashlib.sha256(stamp.encode()).hexdigest()[:32] + ".txt")
    try:
        known = memo.read_text(encoding="ascii").strip()
        if len(known) == 64:
            return known
    except OSError:
        pass
    with path.open("rb") as f:
        value = hashlib.file_digest(f, "sha256").hexdigest()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{memo.name}.", dir=memo.parent)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(value + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, memo)
    except OSError as exc:  # a read-only cache only costs the hashing next time
        log.debug("could not remember the digest of %s: %s", path, exc)
    return value


def exported_model(folder: str | Path, *, int8: bool = False) -> Path:
    """The ONNX file of the model in `folder` (int8-quantised with `int8`), made on first use: in
    `<cache>/<key>/fp32/` or `int8/`, as `model.onnx` with its weights beside it in `model.onnx.data`
    (ONNX Runtime maps them instead of parsing them out of the graph: a session opens in half the
    time). Each folder is written under a temporary name and renamed whole, under a lock."""
    folder = Path(folder)
    key_dir = cache_root() / model_key(folder)[:16]
    target = key_dir / ("int8" if int8 else "fp32") / MODEL_FILE
    if target.is_file():
        return target
    from filelock import FileLock

    key_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(key_dir / ".export.lock")):
        fp32 = key_dir / "fp32" / MODEL_FILE
        if not fp32.is_file():
            log.info("exporting the model in %s to ONNX (once) into %s", folder, key_dir)
            _publish(fp32.parent, lambda raw: export(folder, raw))
            about = {"model": str(folder.resolve()), "export_version": EXPORT_VERSION, "opset": OPSET}
            (key_dir / "source.json").write_text(json.dumps(about) + "\n", encoding="utf-8")
        if int8 and not target.is_file():
            _publish(target.parent, lambda raw: quantize(fp32, raw))
    return target


def _publish(final: Path, make) -> None:
    """`make(path)` writes a whole ONNX model to `path`; it is saved as MODEL_FILE + its data file in a
    temporary folder beside `final`, which is then renamed to `final` (removed again on failure)."""
    import onnx

    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        raw = tmp / "raw.onnx"
        make(raw)
        model = onnx.load(str(raw))
        onnx.save_model(model, str(tmp / MODEL_FILE), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=MODEL_FILE + ".data", size_threshold=1024)
        raw.unlink()
        for path in tmp.iterdir():  # mkdtemp's 0700 and onnx's 0600 would keep others from a shared cache
            path.chmod(0o644)
        tmp.chmod(0o755)
        if final.exists():  # a folder left without its model (say, by hand): replaced whole
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def export(folder: str | Path, target: str | Path) -> None:
    """Write the transformer of `folder` (inputs INPUTS, output last_hidden_state) to `target` as ONNX,
    with torch's TorchScript exporter (offline; no dynamo, no onnxscript downloads)."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):  # the model's output object as one tensor
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    # a padded batch, so the traced graph keeps the attention mask (an all-ones one may be optimised away)
    ids = torch.tensor([[101, 7592, 2088, 1012, 102], [101, 7592, 102, 0, 0]])
    mask = (ids != 0).long()
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes it treats as constants
        torch.onnx.export(Hidden(model), (ids, mask, torch.zeros_like(ids)), str(target), input_names=list(INPUTS),
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)


def quantize(fp32: str | Path, target: str | Path) -> None:
    """Dynamic int8 quantisation of the weights, per output channel (per tensor, the vectors of the
    seeds were 0.95 cosine of the fp32 ones; per channel 0.993); activations are quantised at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def not_quantization_advice(record: logging.LogRecord) -> bool:  # its "consider pre-processing" on the root logger
        return "quantization" not in record.pathname

    root = logging.getLogger()
    placeholder = logging.NullHandler() if not root.handlers else None  # else `logging.warning` calls basicConfig
    if placeholder:
        root.addHandler(placeholder)
    root.addFilter(not_quantization_advice)
    try:
        quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.removeFilter(not_quantization_advice)
        if placeholder:
            root.removeHandler(placeholder)


class OnnxEmbedder:
    """A Transformer + mean/CLS Pooling (+ Normalize) model folder on ONNX Runtime (or OpenVINO, with
    `runtime="openvino"`); safe to share between threads. `threads`: ONNX Runtime threads for a call
    of a few texts, and worker threads for one of many (None: what `rag.index.cpu` set, else one per
    core); on OpenVINO, its streams of one thread each."""

    def __init__(self, name: str, folder: str | Path, pooling: str, max_length: int, *, int8: bool = False,
                 threads: int | None = None, runtime: str = "onnxruntime"):
        from tokenizers import Tokenizer

        from rag.index.cpu import intra_op_threads, query_threads

        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling {pooling!r} is neither 'mean' nor 'cls'")
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
        if int8 and runtime != "onnxruntime":
            raise ValueError(f"the int8 model runs on onnxruntime only, not on {runtime!r}")
        folder = Path(folder)
        self.name, self.pooling, self.int8, self.runtime = name, pooling, int8, runtime
        self.dim = int(json.loads((folder / "config.json").read_text(encoding="utf-8"))["hidden_size"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        padding = self.tokenizer.padding
        self.pad_id = padding["pad_id"] if padding else (self.tokenizer.token_to_id("[PAD]") or 0)
        self.tokenizer.no_padding()  # padded here, per batch; the file pads everything to 128 tokens
        self.tokenizer.enable_truncation(max_length)  # the model's limit, not the file's 128
        self.path = exported_model(folder, int8=int8)
        self.threads = intra_op_threads() if threads is None else threads
        self.workers = self.threads or query_threads()
        self._bulk = None  # the single-threaded session for many texts, made on first use
        self._bulk_lock = threading.Lock()
        if runtime == "openvino":
            self.session = None
            self.precision, self._requests = _openvino_requests(self.path, self.workers)
        else:
            self.precision = "int8" if int8 else "f32"
            self.session = self._session(self.threads)

    def _session(self, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def _bulk_session(self):
        with self._bulk_lock:
            if self._bulk is None:
                self._bulk = self._session(1)
            return self._bulk

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=True)
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(-lengths, kind="stable")  # longest first: batches of similar length
        if self.runtime == "openvino":
            batches = _same_length(order, lengths, OPENVINO_BATCH)
            session = self._requests
        else:
            batches = [order[start:start + BATCH] for start in range(0, len(texts), BATCH)]
            session = self.session if min(self.workers, len(batches)) < 2 else self._bulk_session()
        workers = min(self.workers, len(batches))

        def run(rows: np.ndarray) -> np.ndarray:
            return self._run(session, [encodings[i] for i in rows], int(lengths[rows].max()))

        if workers < 2:
            for rows in batches:
                out[rows] = run(rows)
        else:  # ONNX Runtime and OpenVINO let go of the GIL while they run
            with ThreadPoolExecutor(workers, thread_name_prefix="onnx-encode") as pool:
                for rows, vectors in zip(batches, pool.map(run, batches)):
                    out[rows] = vectors
        return out

    def _run(self, session, encodings, width: int) -> np.ndarray:
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = e.ids, e.attention_mask, e.type_ids
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        if self.pooling == "cls":
            vectors = hidden[:, 0]
        else:
            weights = mask[:, :, None].astype(np.float32)
            vectors = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def _same_length(order: np.ndarray, lengths: np.ndarray, size: int) -> list[np.ndarray]:
    """`order` (rows by falling length) cut into batches of at most `size` rows of one length each:
    no padding, so a text's bf16 vector is the same bits alone as in any batch (in bf16, padding a
    text by even one token can move its vector by 4e-4)."""
    ordered = lengths[order]
    cuts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    return [part[start:start + size] for part in np.split(order, cuts) for start in range(0, len(part), size)]


class _Requests:
    """OpenVINO infer requests, one per stream, with an ONNX Runtime session's `run(None, feeds)`: each
    run takes a free request (a request runs one batch at a time) and gives it back."""

    def __init__(self, requests: list):
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for request in requests:
            self._free.put(request)

    def run(self, _outputs, feeds: dict) -> list[np.ndarray]:
        request = self._free.get()
        try:
            return [request.infer(feeds)[0].copy()]  # the request's output buffer is reused by its next run
        finally:
            self._free.put(request)


def _openvino_requests(path: Path, streams: int) -> tuple[str, _Requests]:
    """("bf16" or "f32", `streams` infer requests) of the ONNX file at `path` compiled for OpenVINO's
    CPU plugin with `streams` streams of one thread each, in bfloat16 where the CPU can."""
    import openvino as ov

    core = ov.Core()
    precision = "bf16" if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "f32"
    compiled = core.compile_model(str(path), "CPU", {
        "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "THROUGHPUT",
        "NUM_STREAMS": streams, "INFERENCE_NUM_THREADS": streams})
    return precision, _Requests([compiled.create_infer_request() for _ in range(streams)])
