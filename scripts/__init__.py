"""Scripts that measure fnn (benchmarks) and write its docs (`equations`).

Run them from the repository root with fnn installed, as files (``python scripts/bench.py``) or as
modules (``python -m scripts.bench``); tests import them as ``scripts.bench``.
"""
