"""Suggestions: an idea box in chat that closes the loop (named or anonymous, answerable)."""
