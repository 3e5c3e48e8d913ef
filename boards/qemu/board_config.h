// Included (gcc -include) before every C file of the sisnbms QEMU board build, so these
// settings reach py/mpconfig.h without editing the port (see README.md).
#ifndef SISNBMS_QEMU_BOARD_CONFIG_H
#define SISNBMS_QEMU_BOARD_CONFIG_H
#ifndef __ASSEMBLER__

// File times and time.time() count from 1970, as on the rp2 port.
#define MICROPY_EPOCH_IS_1970 (1)

// Between bytecodes (every 64th branch or return) and while waiting in select.poll, move
// UART bytes into the board's input ring, so a Ctrl-C reaches a running script.
void qemuboard_uart_pump(void);
#define MICROPY_VM_HOOK_COUNT (64)
#define MICROPY_VM_HOOK_INIT static unsigned int vm_hook_divisor = MICROPY_VM_HOOK_COUNT;
#define MICROPY_VM_HOOK_POLL \
    if (--vm_hook_divisor == 0) { \
        vm_hook_divisor = MICROPY_VM_HOOK_COUNT; \
        qemuboard_uart_pump(); \
    }
#define MICROPY_VM_HOOK_LOOP MICROPY_VM_HOOK_POLL
#define MICROPY_VM_HOOK_RETURN MICROPY_VM_HOOK_POLL
#define MICROPY_INTERNAL_EVENT_HOOK qemuboard_uart_pump()

#endif
#endif
