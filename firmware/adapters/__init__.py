"""Board I/O adapters; main.py picks one from board.json."""
