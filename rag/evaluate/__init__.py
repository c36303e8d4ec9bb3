"""Scoring against gold answers: QA sets (`qa`), figures (`metrics`), `rag eval` (`run`) and the
LangChain baseline it compares with (`baseline`)."""
