"""Every weight and threshold of the offline answerer, in one place, each with what it does.

Set once on the seed and SQuAD sets, never per question: a logistic fit on 2,013 other SQuAD-dev
questions did not beat these at picking the sentence that holds the answer. `MIN_RELEVANCE` is
calibrated by `python eval/calibrate.py` (see the README). Values only; the modules read them as
`weights.NAME` when they run, so a change here (or a test's monkeypatch) reaches every use.
"""

# A sentence's score: relevance (the first two) plus the bonuses below.
W_DENSE = 1.0  # cosine of the sentence's stored vector with the question's
W_LEXICAL = 0.6  # IDF-weighted share of the question's stemmed terms that the sentence holds
W_SECTION = 0.5  # a question term found only in the sentence's section heading (or, for a sentence
#                  opening with a pronoun, in the sentence before it) counts this much of a term
W_BIGRAM = 0.8  # share of the question's adjacent term pairs the sentence holds in order ("regional coordinator")
W_TYPE = 0.15  # the sentence holds the kind of thing asked for (a date, count, name, place) beyond the question
W_RANK = 0.15  # divided by 1 + the passage's retrieval rank (0-based)
W_NAMES = 0.3  # times the share of the question's names that the sentence's passage mentions

MIN_QUOTE_CHARS = 15  # a shorter sentence (a fragment, a label) is never quoted
SECOND_MARGIN = 0.1  # a runner-up scoring within this of the best is quoted too (else the better neighbour)
SAME_SENTENCE = 0.7  # a second sentence sharing this share of the shorter one's words repeats it: not quoted
MAX_ANSWER_CHARS = 420  # two quoted sentences together stay under this; one longer sentence is shortened
BACKGROUND_SHARE = 0.5  # a country named in at least this share of passages is the documents' own: not checked

# The lowest relevance (W_DENSE x cosine + W_LEXICAL x overlap) of the best quoted sentence that still
# answers; 0.438 as last calibrated, to two places.
MIN_RELEVANCE = 0.44

# A name in the question counts as mentioned when an indexed term is this many edits from it (words
# of at least this many letters): one edit from 5 letters, two from 9 ("Sentanta" ~ "Setanta").
TYPO_EDITS = ((9, 2), (5, 1))

MIN_SUPPORT = 0.5  # share of a generated sentence's content terms that its cited sentence must hold

# The optional reader (`rag.answer.reader`): a cross-encoder's logit for (question, text), as a
# probability (its sigmoid), so that it is on the scale of a relevance and needs no calibration of its own.
READER_POOL = 3  # the reader reranks this many times k retrieved passages (at most MAX_K) and keeps the best k
READER_WEIGHT = 0.5  # a sentence's relevance is (1 - this) x its relevance + this x the reader's probability:
#                      one the reader rules out keeps half its relevance (under MIN_RELEVANCE unless it had twice
#                      that); one it is sure of gains half the way to 1 (the seeds' answers have about 0.5-1.2)
READER_ANSWERS = 0.5  # a sentence the reader gives a lower probability (a logit under 0) is not quoted as the answer
