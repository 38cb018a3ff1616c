"""Sentence embeddings and nearest-neighbour search."""
