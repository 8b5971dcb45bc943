"""Signal synthesis for the embedded toy corpus: a parametric voice and spoofing resyntheses.

``voice`` makes bona fide speech from a source-filter model, ``vocoders`` turns it
into spoofed speech with several distinct analysis-resynthesis methods, ``dsp``
holds the shared analysis tools. Pure numpy/scipy: no torch, so corpus builds are
fast, deterministic and run in worker processes cheaply.
"""
