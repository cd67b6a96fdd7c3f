"""Scheduled background work: what runs, when, on which node, and how it went."""
