"""dnflow: collect posts from the X API or an archive and summarise them."""

__version__ = "0.1.0"
