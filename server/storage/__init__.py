"""The database port: one `Database` interface, SQLite and PostgreSQL behind it.

SQL lives only in this package. Stores (`stores/`) write SQL once, with `?` placeholders
and syntax both databases accept; the engine holds every difference between them.
"""

from .engine import Database, DatabaseError, Row, Tx, UndefinedTable, UniqueViolation, open_database

__all__ = ["Database", "DatabaseError", "Row", "Tx", "UndefinedTable", "UniqueViolation", "open_database"]
