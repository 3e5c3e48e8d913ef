# User C module of the sisnbms QEMU board (see ../README.md).
QEMUBOARD_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(QEMUBOARD_MOD_DIR)/qemuboard.c
