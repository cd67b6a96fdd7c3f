"""Accounts and sign-in: passwords, tokens, the RSA transport key, rate limits."""
