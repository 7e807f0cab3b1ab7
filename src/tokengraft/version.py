"""The package version and the library versions a result depends on (any layer may read them)."""

from __future__ import annotations

import platform

__version__ = "0.1.0"


def versions() -> dict[str, str]:
    """Versions of tokengraft and the libraries whose behaviour a result depends on."""
    import tokenizers
    import torch
    import transformers

    return {
        "tokengraft": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "python": platform.python_version(),
    }
