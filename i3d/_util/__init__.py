"""Plumbing every layer may use: environment, durable files, JSON lines, retries, HTTP."""
