"""A run's output folder: options, journals, manifest, resume, export, status."""
