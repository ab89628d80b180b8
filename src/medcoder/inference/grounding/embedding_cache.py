"""Label-text embeddings kept on disk between processes.

Why: a SupportVerifier embeds every label's texts and the ICD-10-CM category descriptions its margin
reads when it is built (about 18 s on 2 cores), and every process that loads a packaged model paid that
again: `medcoder predict`, promotion scoring, a serving start. The embeddings are a function of the
encoder's weights and the texts alone, so they are stored under the user's cache folder
(`MEDCODER_CACHE_DIR`, else `$XDG_CACHE_HOME/medcoder`, else `~/.cache/medcoder`) in a file named by
the hash of both. Only label and category texts go there, never note text. A cache that cannot be read
or written is skipped: the embeddings are computed as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where cached embeddings live."""
    if os.environ.get("MEDCODER_CACHE_DIR"):
        return Path(os.environ["MEDCODER_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "medcoder"


def cached_embeddings(
    texts: Sequence[str], encoder_sha256: str, embed: Callable[[list[str]], np.ndarray]
) -> np.ndarray:
    """`embed(texts)`, read from the cache when these texts were embedded by these weights before."""
    digest = hashlib.sha256("\n".join([encoder_sha256, *texts]).encode()).hexdigest()
    path = cache_dir() / "label-embeddings" / f"{digest[:32]}.npy"
    try:
        cached = np.load(path, allow_pickle=False)
        if cached.shape[0] == len(texts):
            return cached
    except (OSError, ValueError):
        pass
    embeddings = embed(list(texts))
    try:  # written whole or not at all: a concurrent reader never sees half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as tmp:
            np.save(tmp, embeddings, allow_pickle=False)
        os.replace(tmp.name, path)
    except OSError as exc:
        log.info("label embeddings not cached (%s): they are computed again on the next load", type(exc).__name__)
    return embeddings
