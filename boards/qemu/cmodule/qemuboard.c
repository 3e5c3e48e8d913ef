// The sisnbms QEMU board: what the qemu port lacks to run a firmware like an RP2040 board does.
//
// * Flash: a block device (module qemuboard, class Flash) whose storage is a file on the host,
//   reached through ARM semihosting. Every block write goes to the file at once, as a flash
//   program does, so the filesystem survives QEMU being killed (a power cut) and restarted.
//   It lives outside RAM altogether: the GC heap keeps the size of an RP2040's.
// * mp_hal_time_ns: the wall clock littlefs stamps files with (semihosting SYS_TIME).
// * Boot: the port's main() starts the REPL straight away; this board's main (linked in with
//   --wrap=main) runs frozen _boot.py (mounts the flash), boot.py and main.py first and again
//   after every soft reset, as the rp2 port's main does.
// * ticks_ms/ticks_us from a free-running 1 MHz hardware timer (nRF51 TIMER0), extended to
//   64 bits, as the RP2040's 64-bit microsecond timer gives them. The port counts SysTick
//   interrupts instead, and QEMU drops some of those: its clock ran 30 % slow.
// * UART input through a ring buffer that the VM fills between bytecodes, so Ctrl-C stops a
//   running script (mpremote relies on it) while other bytes wait for whoever reads them.
//
// Sign convention of the firmware this board runs: current positive on discharge.

#include <string.h>

#include "py/gc.h"
#include "py/mperrno.h"
#include "py/mphal.h"
#include "py/runtime.h"
#include "py/stream.h"
#include "extmod/vfs.h"
#include "shared/runtime/interrupt_char.h"
#include "shared/runtime/pyexec.h"
#include "uart.h"

#ifndef QEMUBOARD_FLASH_BYTES
#error QEMUBOARD_FLASH_BYTES must be set by mpconfigboard.mk
#endif
#define FLASH_BLOCK_SIZE (4096)
#define FLASH_BLOCK_COUNT (QEMUBOARD_FLASH_BYTES / FLASH_BLOCK_SIZE)
// Relative to QEMU's working directory: the host starts QEMU in the board's folder.
#define FLASH_IMAGE "flash.img"

/******************************************************************************/
// ARM semihosting (QEMU -semihosting-config enable=on,target=native)

#define SYS_OPEN (0x01)
#define SYS_WRITE (0x05)
#define SYS_READ (0x06)
#define SYS_SEEK (0x0a)
#define SYS_TIME (0x11)
#define OPEN_MODE_RB_PLUS (3)  // "r+b"
#define OPEN_MODE_WB_PLUS (7)  // "w+b"

static uint32_t semihosting_call(uint32_t num, const void *arg) {
    register uint32_t num_reg __asm__ ("r0") = num;
    register const void *args_reg __asm__ ("r1") = arg;
    __asm__ __volatile__ ("bkpt 0xAB" : "+r" (num_reg) : "r" (args_reg) : "memory");
    return num_reg;
}

static int semihosting_open(const char *name, uint32_t mode) {
    uint32_t args[3] = {(uint32_t)name, mode, strlen(name)};
    return (int)semihosting_call(SYS_OPEN, args);
}

static bool semihosting_seek(int fd, uint32_t pos) {
    uint32_t args[2] = {(uint32_t)fd, pos};
    return semihosting_call(SYS_SEEK, args) == 0;
}

// Both return the number of bytes NOT transferred (semihosting's convention).
static uint32_t semihosting_read(int fd, void *buf, uint32_t len) {
    uint32_t args[3] = {(uint32_t)fd, (uint32_t)buf, len};
    return semihosting_call(SYS_READ, args);
}

static uint32_t semihosting_write(int fd, const void *buf, uint32_t len) {
    uint32_t args[3] = {(uint32_t)fd, (uint32_t)buf, len};
    return semihosting_call(SYS_WRITE, args);
}

uint64_t mp_hal_time_ns(void) {
    // Seconds since 1970 on the host (MICROPY_EPOCH_IS_1970, as the rp2 port).
    return (uint64_t)semihosting_call(SYS_TIME, NULL) * 1000000000ULL;
}

/******************************************************************************/
// qemuboard.Flash: the block device behind the littlefs root filesystem

typedef struct _qemuboard_flash_obj_t {
    mp_obj_base_t base;
    int fd;
} qemuboard_flash_obj_t;

static const mp_obj_type_t qemuboard_flash_type;
// One image, opened once per power-up: the fd survives soft resets.
static qemuboard_flash_obj_t qemuboard_flash_obj = {{&qemuboard_flash_type}, -1};

static void flash_check(bool ok) {
    if (!ok) {
        mp_raise_OSError(MP_EIO);
    }
}

static void flash_fill_erased(int fd, uint32_t pos, uint32_t len) {
    static const uint8_t erased[256] = {
        [0 ... 255] = 0xff,
    };
    flash_check(semihosting_seek(fd, pos));
    while (len > 0) {
        uint32_t n = len < sizeof(erased) ? len : sizeof(erased);
        flash_check(semihosting_write(fd, erased, n) == 0);
        len -= n;
    }
}

static mp_obj_t qemuboard_flash_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw,
    const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 0, 0, false);
    qemuboard_flash_obj_t *self = &qemuboard_flash_obj;
    if (self->fd < 0) {
        self->fd = semihosting_open(FLASH_IMAGE, OPEN_MODE_RB_PLUS);
        if (self->fd < 0) {
            // No image yet: a new chip, every byte erased.
            self->fd = semihosting_open(FLASH_IMAGE, OPEN_MODE_WB_PLUS);
            flash_check(self->fd >= 0);
            flash_fill_erased(self->fd, 0, QEMUBOARD_FLASH_BYTES);
        }
    }
    return MP_OBJ_FROM_PTR(self);
}

static uint32_t flash_pos(mp_obj_t block_in, mp_obj_t offset_in, size_t len) {
    mp_int_t block = mp_obj_get_int(block_in);
    mp_int_t offset = offset_in == mp_const_none ? 0 : mp_obj_get_int(offset_in);
    uint32_t pos = (uint32_t)block * FLASH_BLOCK_SIZE + (uint32_t)offset;
    if (block < 0 || offset < 0 || pos + len > QEMUBOARD_FLASH_BYTES) {
        mp_raise_ValueError(MP_ERROR_TEXT("outside the flash"));
    }
    return pos;
}

// readblocks(block, buf, offset=0)
static mp_obj_t qemuboard_flash_readblocks(size_t n_args, const mp_obj_t *args) {
    qemuboard_flash_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_WRITE);
    uint32_t pos = flash_pos(args[1], n_args > 3 ? args[3] : mp_const_none, buf.len);
    flash_check(semihosting_seek(self->fd, pos));
    uint32_t missing = semihosting_read(self->fd, buf.buf, buf.len);
    // A short image (cut off by the host) reads as erased flash past its end.
    memset((uint8_t *)buf.buf + buf.len - missing, 0xff, missing);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qemuboard_flash_readblocks_obj, 3, 4,
    qemuboard_flash_readblocks);

// writeblocks(block, buf): erase the blocks, then program; writeblocks(block, buf, offset):
// program only (littlefs erases with ioctl 6 first), as the rp2 port's Flash.
static mp_obj_t qemuboard_flash_writeblocks(size_t n_args, const mp_obj_t *args) {
    qemuboard_flash_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_READ);
    uint32_t pos = flash_pos(args[1], n_args > 3 ? args[3] : mp_const_none, buf.len);
    if (n_args == 3) {
        uint32_t len = (buf.len + FLASH_BLOCK_SIZE - 1) / FLASH_BLOCK_SIZE * FLASH_BLOCK_SIZE;
        flash_fill_erased(self->fd, pos, len);
    }
    flash_check(semihosting_seek(self->fd, pos));
    flash_check(semihosting_write(self->fd, buf.buf, buf.len) == 0);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(qemuboard_flash_writeblocks_obj, 3, 4,
    qemuboard_flash_writeblocks);

static mp_obj_t qemuboard_flash_ioctl(mp_obj_t self_in, mp_obj_t op_in, mp_obj_t arg_in) {
    qemuboard_flash_obj_t *self = MP_OBJ_TO_PTR(self_in);
    switch (mp_obj_get_int(op_in)) {
        case MP_BLOCKDEV_IOCTL_INIT:
        case MP_BLOCKDEV_IOCTL_DEINIT:
        case MP_BLOCKDEV_IOCTL_SYNC:
            // Writes reach the host file as they happen: nothing is buffered here.
            return MP_OBJ_NEW_SMALL_INT(0);
        case MP_BLOCKDEV_IOCTL_BLOCK_COUNT:
            return MP_OBJ_NEW_SMALL_INT(FLASH_BLOCK_COUNT);
        case MP_BLOCKDEV_IOCTL_BLOCK_SIZE:
            return MP_OBJ_NEW_SMALL_INT(FLASH_BLOCK_SIZE);
        case MP_BLOCKDEV_IOCTL_BLOCK_ERASE: {
            uint32_t pos = flash_pos(arg_in, mp_const_none, FLASH_BLOCK_SIZE);
            flash_fill_erased(self->fd, pos, FLASH_BLOCK_SIZE);
            return MP_OBJ_NEW_SMALL_INT(0);
        }
        default:
            return mp_const_none;
    }
}
static MP_DEFINE_CONST_FUN_OBJ_3(qemuboard_flash_ioctl_obj, qemuboard_flash_ioctl);

static const mp_rom_map_elem_t qemuboard_flash_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_readblocks), MP_ROM_PTR(&qemuboard_flash_readblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_writeblocks), MP_ROM_PTR(&qemuboard_flash_writeblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_ioctl), MP_ROM_PTR(&qemuboard_flash_ioctl_obj) },
};
static MP_DEFINE_CONST_DICT(qemuboard_flash_locals_dict, qemuboard_flash_locals_dict_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    qemuboard_flash_type,
    MP_QSTR_Flash,
    MP_TYPE_FLAG_NONE,
    make_new, qemuboard_flash_make_new,
    locals_dict, &qemuboard_flash_locals_dict
    );

static const mp_rom_map_elem_t qemuboard_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_qemuboard) },
    { MP_ROM_QSTR(MP_QSTR_Flash), MP_ROM_PTR(&qemuboard_flash_type) },
};
static MP_DEFINE_CONST_DICT(qemuboard_module_globals, qemuboard_module_globals_table);

const mp_obj_module_t qemuboard_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&qemuboard_module_globals,
};
MP_REGISTER_MODULE(MP_QSTR_qemuboard, qemuboard_module);

/******************************************************************************/
// Time: nRF51 TIMER0 in 32-bit timer mode at 16 MHz / 2^4 = 1 MHz, extended to 64 bits

#define TIMER0_BASE (0x40008000)
#define TIMER0_REG(off) (*(volatile uint32_t *)(TIMER0_BASE + (off)))
#define TIMER0_TASKS_START TIMER0_REG(0x000)
#define TIMER0_TASKS_CAPTURE0 TIMER0_REG(0x040)
#define TIMER0_MODE TIMER0_REG(0x504)
#define TIMER0_BITMODE TIMER0_REG(0x508)
#define TIMER0_PRESCALER TIMER0_REG(0x510)
#define TIMER0_CC0 TIMER0_REG(0x540)

static uint32_t timer_low_last;
static uint32_t timer_high;

static uint64_t timer_us64(void) {
    // Called from the SysTick interrupt too (at least once per 71-minute wrap): no
    // interleaving between the capture and the update.
    uint32_t primask;
    __asm__ volatile ("mrs %0, primask\n cpsid i" : "=r" (primask) : : "memory");
    TIMER0_TASKS_CAPTURE0 = 1;
    uint32_t low = TIMER0_CC0;
    if (low < timer_low_last) {
        ++timer_high;
    }
    timer_low_last = low;
    uint64_t us = ((uint64_t)timer_high << 32) | low;
    __asm__ volatile ("msr primask, %0" : : "r" (primask) : "memory");
    return us;
}

void __real_ticks_init(void);
void __wrap_ticks_init(void) {
    TIMER0_MODE = 0;  // timer
    TIMER0_BITMODE = 3;  // 32 bit
    TIMER0_PRESCALER = 4;  // 16 MHz / 16
    TIMER0_TASKS_START = 1;
    __real_ticks_init();  // SysTick: its interrupt keeps the 64-bit extension current
}

void __real_SysTick_Handler(void);
void __wrap_SysTick_Handler(void) {
    __real_SysTick_Handler();
    timer_us64();
}

uintptr_t __wrap_ticks_us(void) {
    return (uintptr_t)timer_us64();
}

uintptr_t __wrap_ticks_ms(void) {
    return (uintptr_t)(timer_us64() / 1000);
}

/******************************************************************************/
// UART input: a ring buffer filled between bytecodes, so Ctrl-C can interrupt a script

#define RX_RING_SIZE (256)
static uint8_t rx_ring[RX_RING_SIZE];
static volatile uint16_t rx_head, rx_tail;  // head: next write, tail: next read

void qemuboard_uart_pump(void) {
    // A full ring leaves bytes in the UART: QEMU then holds the rest back (no loss).
    while (((rx_head + 1) % RX_RING_SIZE) != rx_tail) {
        int c = uart_rx_chr();
        if (c < 0) {
            return;
        }
        if (c == mp_interrupt_char) {
            mp_sched_keyboard_interrupt();
            continue;
        }
        rx_ring[rx_head] = (uint8_t)c;
        rx_head = (rx_head + 1) % RX_RING_SIZE;
    }
}

uintptr_t __wrap_mp_hal_stdio_poll(uintptr_t poll_flags) {
    qemuboard_uart_pump();
    return (poll_flags & MP_STREAM_POLL_RD) && rx_head != rx_tail ? MP_STREAM_POLL_RD : 0;
}

int __wrap_mp_hal_stdin_rx_chr(void) {
    for (;;) {
        qemuboard_uart_pump();
        if (rx_head != rx_tail) {
            int c = rx_ring[rx_tail];
            rx_tail = (rx_tail + 1) % RX_RING_SIZE;
            return c;
        }
        // Raises KeyboardInterrupt in a script blocked on input; the REPL itself disables
        // the interrupt character, so nothing is pending there.
        mp_event_handle_nowait();
    }
}

/******************************************************************************/
// Boot: the rp2 port's sequence on top of the qemu port

static uint32_t gc_heap[MICROPY_HEAP_SIZE / sizeof(uint32_t)];

int __wrap_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    mp_cstack_init_with_sp_here(MICROPY_STACK_SIZE);
    gc_init(gc_heap, (char *)gc_heap + MICROPY_HEAP_SIZE);
    for (;;) {
        mp_init();
        // Mounts the flash at / (and makes a filesystem on a blank image).
        pyexec_frozen_module("_boot.py", false);
        int ret = pyexec_file_if_exists("boot.py");
        if (!(ret & PYEXEC_FORCED_EXIT)) {
            // main.py runs after a power-up or a soft reset from the friendly REPL, not after
            // a soft reset from the raw REPL (mpremote's), and not when boot.py failed.
            if (pyexec_mode_kind == PYEXEC_MODE_FRIENDLY_REPL && ret != 0) {
                ret = pyexec_file_if_exists("main.py");
            }
            while (!(ret & PYEXEC_FORCED_EXIT)) {
                ret = pyexec_mode_kind == PYEXEC_MODE_RAW_REPL
                    ? pyexec_raw_repl() : pyexec_friendly_repl();
                if (ret != 0) {
                    break;
                }
            }
        }
        mp_printf(&mp_plat_print, "MPY: soft reboot\n");
        gc_sweep_all();
        mp_deinit();
    }
}
