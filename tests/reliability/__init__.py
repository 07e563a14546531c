"""Reliability suite: faults injected into real studies, and a corpus of bad input (``pytest -m reliability``)."""
