"""cm: a command-line toolkit for speech anti-spoofing countermeasure research."""

__version__ = "0.1.0"
