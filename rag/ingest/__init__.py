"""Files -> `Document`s with their structure (`load`) -> `Passage`s with exact spans (`chunk`);
sentence boundaries (`sentences`) for the chunker and the answerer."""
