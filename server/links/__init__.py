"""Short links: creating them, the `GET /s/{code}` redirect, and counting visits in batches."""
