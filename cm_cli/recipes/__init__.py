"""Recipes: whole studies as one library call over the other packages (the `cm demo` study today).

A recipe chains the library calls the commands make (manifest, degrade, train, eval, the
analyses, report) so that a study can be reproduced with one call and rerun cheaply.
"""
