"""Model providers behind one async protocol (see :mod:`fountain.providers.base`)."""
