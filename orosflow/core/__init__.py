"""Infrastructure: settings, database, clock, encryption, audit chain, redaction, mail."""
