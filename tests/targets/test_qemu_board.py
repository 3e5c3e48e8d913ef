"""The QEMU board runs the real firmware (flashed as armv6m .mpy by `sisnbms flash`), serves
the protocol and mpremote on its UART pty, and keeps what the firmware wrote across a power
cut, through its flash image."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from host.link import SerialLink
from host.micropython import BuildResult
from host.protocol.client import BmsClient
from host.vboard.qemu_board import QemuBoard

MPREMOTE = Path(sys.executable).parent / "mpremote"
BOOT_TIMEOUT_S = 30.0
# Free heap of a stock Raspberry Pi Pico build after gc.collect() at its REPL
# (boards/qemu/README.md): the board must give the firmware the chip's heap.
RP2040_FREE_HEAP_B = 215_904


async def mpremote(port: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(MPREMOTE), "connect", port, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode()
    assert proc.returncode == 0, f"mpremote {' '.join(args)} exited {proc.returncode}:\n{text}"
    return text


async def test_firmware_boots_and_answers_hello_and_sample(
    qemu_firmware: BuildResult, board_dir: Path
) -> None:
    qb = QemuBoard(board_dir, qemu_firmware.path)
    await qb.start(powered=False)
    try:
        async with await SerialLink.open(qb.port) as link:
            client = BmsClient(link, timeout_s=5.0)
            await qb.power_on()  # the link is open first: the BOOT frame cannot be missed
            boot = await client.wait_boot(BOOT_TIMEOUT_S)
            assert boot.board_name == "qemu_cortex_m0"
            hello = await client.hello()
            assert hello.board_name == "qemu_cortex_m0" and hello.protocol_version == 1
            n = hello.n_cells
            states = []
            for k in range(5):
                cells = [3700 + k + i for i in range(n)]
                states.append(await client.sample(1000 * (k + 1), cells, 1000, [250]))
            last = states[-1]
            assert [s.samples for s in states] == [1, 2, 3, 4, 5] and last.t_ms == 5000
            assert last.min_cell_mV == 3704 and last.max_cell_mV == 3704 + n - 1
            assert last.current_mA == 1000 and last.fault_bits == 0
            # RESET frame: the firmware saves and soft-resets (machine.soft_reset); the board's
            # boot sequence runs main.py again, in the same QEMU
            await client.reset()
            assert (await client.wait_boot(BOOT_TIMEOUT_S)).boot_flag_bits & 1  # state restored
            assert (await client.get_state()).samples == 0
        assert qb.crashes == 0 and qb.boots == 1
    finally:
        await qb.stop()


async def test_mpremote_lists_copies_and_resets(
    qemu_firmware: BuildResult, board_dir: Path, tmp_path: Path
) -> None:
    blob = os.urandom(5000)
    (tmp_path / "blob.bin").write_bytes(blob)
    async with QemuBoard(board_dir, qemu_firmware.path) as qb:
        port = qb.port
        listing = await mpremote(port, "fs", "ls", ":")
        for name in ("main.py", "boot.py", "board.json", "bms_config.json", "bms/"):
            assert name in listing, listing
        await mpremote(port, "fs", "cp", str(tmp_path / "blob.bin"), ":blob.bin")
        assert "5000 blob.bin" in " ".join((await mpremote(port, "fs", "ls", ":")).split())
        await mpremote(port, "fs", "cp", ":blob.bin", str(tmp_path / "back.bin"))
        assert (tmp_path / "back.bin").read_bytes() == blob
        boots = qb.boots
        await mpremote(port, "reset")  # machine.reset(): QEMU exits and powers up again
        for _ in range(100):
            if qb.boots > boots:
                break
            await asyncio.sleep(0.1)
        assert qb.boots == boots + 1 and qb.last_exit == 0 and qb.crashes == 0
        await mpremote(port, "fs", "cp", ":blob.bin", str(tmp_path / "again.bin"))
        assert (tmp_path / "again.bin").read_bytes() == blob


async def test_power_cut_keeps_the_persisted_state(
    qemu_firmware: BuildResult, board_dir: Path
) -> None:
    qb = QemuBoard(board_dir, qemu_firmware.path)
    await qb.start(powered=False)
    try:
        async with await SerialLink.open(qb.port) as link:
            client = BmsClient(link, timeout_s=5.0)
            await qb.power_on()
            first = await client.wait_boot(BOOT_TIMEOUT_S)
            assert "state restored" not in " ".join(first.boot_flags)
            n = first.n_cells
            # a rested pack at a known voltage, then a discharge the BMS counts
            for k in range(40):
                await client.sample(1000 * (k + 1), [3900] * n, 2000 if k >= 20 else 0, [250])
            before = await client.get_state()
            await client.save()
            await qb.power_cut()  # QEMU killed: RAM gone, flash.img stays
            image = qb.flash_image.read_bytes()
            await qb.power_on()
            boot = await client.wait_boot(BOOT_TIMEOUT_S)
            assert boot.boot_flag_bits & 1, boot.boot_flags  # bit 0: state restored from file
            after = await client.get_state()
            assert after.samples == 0  # a new boot: RAM was lost...
            # ...the persisted state was not
            assert after.remaining_mAh == before.remaining_mAh
            assert after.capacity_mAh == before.capacity_mAh
            assert abs(after.soc_pct - before.soc_pct) < 0.05
        assert len(image) == 1_441_792 and qb.boots == 2
    finally:
        await qb.stop()


async def test_ctrl_c_interrupts_a_running_script_and_heap_is_the_rp2040s(
    qemu_firmware: BuildResult, board_dir: Path
) -> None:
    (board_dir / "flash.img").unlink()  # a blank chip: no firmware, the REPL answers
    async with QemuBoard(board_dir, qemu_firmware.path) as qb:
        async with await SerialLink.open(qb.port) as link:
            link.write(b"\r")
            await link.read_until(b">>> ", 20.0)
            await link.drain_input(0.5)  # the banner's prompt and the one for "\r"
            link.write(b"while True: pass\r\r")
            await asyncio.sleep(0.5)
            link.write(b"\x03")
            out = await link.read_until(b">>> ", 10.0)
            assert b"KeyboardInterrupt" in out, out
            link.write(b"import gc; gc.collect(); print('FREE', gc.mem_free())\r")
            out = await link.read_until(b">>> ", 10.0)
        free = int(out.split(b"FREE ")[-1].split()[0])
        assert abs(free - RP2040_FREE_HEAP_B) <= 0.01 * RP2040_FREE_HEAP_B, free
        assert qb.flash_image.stat().st_size == 1_441_792  # made erased, then formatted
