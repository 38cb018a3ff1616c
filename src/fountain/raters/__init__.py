"""Raters: judge generated conversations against each other and against real data.

- ``dedup``: exact, MinHash LSH and embedding-cosine deduplication (always on);
- ``pe``: Private Evolution's differentially private nearest-neighbour histogram and selection;
- ``privacy``: the Gaussian-DP accountant (epsilon <-> sigma, the privacy ledger);
- ``rf``: the Real Filter (NOT differentially private).

Submodules are imported explicitly (``from fountain.raters.privacy import epsilon_for``) so that
importing one does not pull in the others' dependencies.
"""
