"""Test helpers: reference graph, test videos, local servers, random clips (not in conftest)."""
