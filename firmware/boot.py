"""Runs first on a board at power-up and after a soft reset; main.py follows.

Kept minimal: anything that fails here would stop the board before the REPL.
"""

import gc

gc.collect()
