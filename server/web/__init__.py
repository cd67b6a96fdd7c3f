"""What every HTTP edge shares: the route table, body parsing, JSON answers, middleware."""
