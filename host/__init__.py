"""sisnbms host: serial link, virtual board, emulator loop, scenarios, scoring, CLI."""

__version__ = "0.1.0"
