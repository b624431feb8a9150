"""Outbound HTTP on behalf of users: one guarded way to download (see fetch.py)."""
