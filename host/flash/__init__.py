"""Flashing: stage the firmware (mpy-cross or source), write it with mpremote, verify it runs."""
