"""tokens.tsv: one line per new id saying how its row was made."""

from __future__ import annotations

from collections.abc import Sequence

from tokengraft.config import RowSource
from tokengraft.vocab import Alignment


def tokens_tsv(
    alignment: Alignment,
    sources: Sequence[RowSource],
    pieces: Sequence[Sequence[int] | None],
) -> str:
    """One line per new id: id, token, how its row was made, old id copied from, old pieces.

    Args:
        alignment: the alignment of the two vocabularies.
        sources: per new id, how its row was made.
        pieces: per new id, the old ids spelling it (None where the row was not computed).
    """
    lines = ["new_id\ttoken\tsource\told_id\told_pieces"]
    vocab = alignment.new_vocab
    for new_id, source in enumerate(sources):
        token = vocab.tokens[new_id]
        shown = token.display() if token is not None else ""
        old_id = int(alignment.old_ids[new_id])
        spelled = pieces[new_id]
        lines.append(
            f"{new_id}\t{shown}\t{source.value}\t{old_id if old_id >= 0 else ''}\t"
            + (" ".join(map(str, spelled)) if spelled else "")
        )
    return "\n".join(lines) + "\n"
