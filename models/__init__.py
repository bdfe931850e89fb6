"""Model loading (hub, local folders, offline PyPI mirrors) and the Lightning classifier."""
