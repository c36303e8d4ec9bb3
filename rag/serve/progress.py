"""Progress of a build shown to a person: tqdm bars for the `rag` command, plain lines for the
web app's console. Both are `rag.types.Progress` callbacks `(stage, done, total)`. Does not build.
"""

from __future__ import annotations

import sys

from rag.types import Progress

STAGES = {"wait": "Waiting for another build", "read": "Reading files", "embed": "Embedding passages",
          "save": "Saving the index"}


def progress_bars(stream=None) -> Progress:
    """One tqdm bar per stage on `stream` (stderr), hidden when it is not a terminal."""
    from tqdm import tqdm

    stream = stream or sys.stderr
    bars: dict = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            unit = {"read": "file", "wait": "build"}.get(stage, "passage")
            bar = bars[stage] = tqdm(total=total, desc=f"{stage:>5}", unit=unit,
                                     file=stream, leave=False, disable=None)
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return progress


def console_progress(stream=None) -> Progress:
    """One updating line per stage on a terminal, else one line when each stage finishes (so logs
    stay short)."""
    stream = stream or sys.stderr
    tty = stream.isatty()

    def progress(stage: str, done: int, total: int) -> None:
        label = STAGES.get(stage, stage)
        if tty:
            width = 30
            filled = int(width * done / total) if total else width
            stream.write(f"\r{label:>20} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            if done >= total:
                stream.write("\n")
        elif done >= total:
            stream.write(f"{label}: {done}/{total} done\n")
        stream.flush()

    return progress
