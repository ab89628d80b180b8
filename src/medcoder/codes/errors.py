"""Errors shared by the code-set modules (ICD-10-CM, CPT/HCPCS, ICD-11).

`UnknownCodeError` is a ValueError, not a KeyError: a KeyError prints its message in quotes and
reads like a programming bug, while an unknown code is a data problem a user can fix, and the
`medcoder` command prints ValueErrors as one line.
"""

from __future__ import annotations


class UnknownCodeError(ValueError):
    """A well-formed code that does not exist in the code set (or catalog) being asked."""


class UnsupportedCodeSystemError(ValueError):
    """A code system medcoder knows the spelling of but ships no code set for (e.g. ICD-10-PCS)."""
