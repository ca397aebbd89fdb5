"""PII scrubbing: the scrub stage and what it finds (emails, secrets, private keys, IP addresses)."""
