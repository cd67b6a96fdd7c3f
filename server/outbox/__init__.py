"""Background delivery that never loses anything: the message outbox's retries and the
webhook deliveries (offline push), both written in the transaction that made them necessary."""
