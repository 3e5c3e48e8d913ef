"""Per-run outputs: the .bdf.csv log, the summary JSON and the PNG plot."""
