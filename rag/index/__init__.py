"""Passages -> an index: encoders (`embed`), BM25 (`lexical`), stores behind one protocol (`store`;
the local directory is `local` and `flat`), and the incremental build (`build`)."""
