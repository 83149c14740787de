"""The books' experiments, one script each (installed as the package ``fnn_experiments``; run with ``fnn run NAME``)."""
