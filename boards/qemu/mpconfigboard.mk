# sisnbms QEMU board: bare-metal MicroPython on QEMU's `microbit` machine (nRF51, Cortex-M0),
# standing in for an RP2040 (Cortex-M0+). Built by `sisnbms micropython build --target
# qemu-cortex-m0` as: make -C ports/qemu BOARD=SISNBMS_QEMU BOARD_DIR=<this folder> ...
# See README.md for what each setting is for.
QEMU_ARCH = arm
QEMU_MACHINE = microbit
QEMU_ARGS += -global nrf51-soc.flash-size=1048576 -global nrf51-soc.sram-size=262144

CFLAGS += -mthumb -mcpu=cortex-m0 -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_NRF51
CFLAGS += -DMICROPY_HW_MCU_NAME='"nRF51"'
CFLAGS += -include $(BOARD_DIR)/board_config.h

LDSCRIPT = mcu/arm/nrf51.ld
SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb1.o
MPY_CROSS_FLAGS += -march=armv6m

# The RP2040's usable heap (README.md) and its 8 KiB core-0 stack (SCRATCH_Y in memmap_mp.ld).
MICROPY_HEAP_SIZE ?= 224256
MICROPY_STACK_SIZE ?= 8192
MICROPY_FLOAT_IMPL = float

# Writable littlefs v2 on the board's flash (a host image file, see cmodule/qemuboard.c);
# 1408 KiB as on a Raspberry Pi Pico (RPI_PICO's MICROPY_HW_FLASH_STORAGE_BYTES).
MICROPY_VFS_LFS2 = 1
CFLAGS += -DMICROPY_VFS_LFS2=1 -DQEMUBOARD_FLASH_BYTES=1441792
USER_C_MODULES = $(BOARD_DIR)/cmodule
FROZEN_MANIFEST = $(BOARD_DIR)/manifest.py

# This board's main (boot sequence), UART input and clock replace the port's.
LDFLAGS += --wrap=main --wrap=mp_hal_stdin_rx_chr --wrap=mp_hal_stdio_poll
LDFLAGS += --wrap=ticks_init --wrap=ticks_ms --wrap=ticks_us --wrap=SysTick_Handler
