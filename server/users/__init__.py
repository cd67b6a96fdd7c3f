"""Profiles: looking users up, searching them, and editing one's own."""
