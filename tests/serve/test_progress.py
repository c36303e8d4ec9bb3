"""rag.serve.progress: the console lines and tqdm bars that show a build's progress."""

from __future__ import annotations

import io

from rag.serve.progress import STAGES, console_progress, progress_bars


def test_console_progress_prints_one_line_per_finished_stage_when_not_a_terminal():
    out = io.StringIO()
    progress = console_progress(out)
    for done in range(4):
        progress("read", done, 3)
    progress("embed", 256, 300)
    progress("embed", 300, 300)
    assert out.getvalue() == f"{STAGES['read']}: 3/3 done\n{STAGES['embed']}: 300/300 done\n"


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_console_progress_draws_a_bar_on_a_terminal():
    out = Terminal()
    progress = console_progress(out)
    progress("save", 0, 1)
    progress("save", 1, 1)
    lines = out.getvalue()
    assert lines.count("\r") == 2 and lines.endswith("] 1/1\n") and "Saving the index" in lines


def test_progress_bars_draw_one_bar_per_stage_on_a_terminal():
    out = Terminal()
    progress = progress_bars(out)
    for stage in ("wait", "read", "embed", "save", "other"):
        progress(stage, 0, 2)
        progress(stage, 2, 2)  # done: the bar closes
    drawn = out.getvalue()
    for stage, unit in (("wait", "build"), ("read", "file"), ("embed", "passage"), ("other", "passage")):
        assert f"{stage:>5}:   0%|          | 0/2 [00:00<?, ?{unit}/s]" in drawn
    assert drawn.endswith("\r")  # a finished bar is cleared (leave=False), so the summary line stands alone


def test_progress_bars_stay_hidden_off_a_terminal():
    out = io.StringIO()
    progress = progress_bars(out)
    progress("read", 1, 1)
    assert out.getvalue() == ""
