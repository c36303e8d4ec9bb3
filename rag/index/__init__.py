"""Passages -> an index: encoders (`embed`), BM25 (`lexical`), stores behind one protocol (`store`,
picked by `factory`; the local directory is `local`, its generations `generations`, the loaded index
`flat`), and the incremental build (`build`, reading files through `sources`; run in the background at a
lower priority and on few threads by `background` and `cpu`)."""
