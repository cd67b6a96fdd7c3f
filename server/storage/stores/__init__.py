"""Stores: the SQL for one subject each, written once for both databases."""
