"""Wording shared by messages: counts with the right noun form."""


def count(n: int, noun: str, plural: str | None = None) -> str:
  """`1 malformed row`, `2 malformed rows` (`plural` for irregular nouns)."""
  return f"{n} {noun if n == 1 else plural or noun + 's'}"
