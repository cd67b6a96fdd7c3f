"""Full-text message search over the caller's conversations, Chinese text included."""
