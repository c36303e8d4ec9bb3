"""An index -> the passages for a question: the `Retriever` (`retriever`), the names a question asks
about (`names`) and other names for them (`aliases`)."""
