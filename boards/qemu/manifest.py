# Frozen modules of the sisnbms QEMU board: its _boot.py only, nothing from micropython-lib
# (absent from the vendored source).
freeze("$(BOARD_DIR)", "_boot.py")  # noqa: F821 (a MicroPython manifest function)
