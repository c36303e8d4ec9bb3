"""Passages -> a cited answer or an abstention: the `Assistant` (`assistant`) over a `Searcher`
(`searcher`), with follow-up rewriting (`followup`), question analysis (`question`), sentence scoring
(`score`), evidence checks (`evidence`), composition and verification (`compose`), its weights
(`weights`) and optional generation (`generate`)."""
