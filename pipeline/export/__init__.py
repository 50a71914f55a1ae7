"""`promptreel export RUN --to KIND DEST`: a finished run as a dataset others consume.

An export is a pure function of the catalog and the clips: the same run gives the same
DEST bytes, and re-running it finishes what is missing and rewrites nothing complete.
One module per target (webdataset, hf, vbench, files); naming, source, dest and units
are shared. See docs/export.md.
"""
