"""Passwords, tokens, API keys and the permission matrix."""
