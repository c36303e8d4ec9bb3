"""Files -> the text to index (`formats`: one converter per format, PDF, Word, HTML, text) -> `Document`s
with their structure (`load`) -> `Passage`s with exact spans and pages (`chunk`); sentence boundaries
(`sentences`) for the chunker and the answerer."""
