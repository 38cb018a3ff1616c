"""The spec folder: setup.yaml, its templates and directions, loaded and checked."""
