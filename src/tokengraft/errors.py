"""The one exception type users see.

Every failure caused by input (a path that is not a model, a corrupt file, an empty corpus, ...) is
raised as :class:`TokengraftError` with a one-line message; the CLI prints that line and exits 2.
Anything else escaping is a bug in tokengraft.
"""

from __future__ import annotations


class TokengraftError(Exception):
    """A user-facing error: bad input, a missing file, an impossible request."""
