"""Repository tools run from the root (`python -m tools.<name>`), outside every package's import path."""
