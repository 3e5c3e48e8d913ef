"""Is the toolchain a target needs installed? Each tool is probed by using it, not by name only.

A missing tool is bad input for the command (exit 2) with the Debian packages to install.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from cellmodel.errors import InputError
from host.micropython.targets import Target, Tool

_HELLO_C = "int main(void) { return 0; }\n"
_NEWLIB_C = "#include <string.h>\n#include <stdlib.h>\nint f(const char *s) { return strlen(s); }\n"


def _compiles(cmd: list[str], source: str) -> bool:
    with tempfile.TemporaryDirectory(prefix="sisnbms-probe-") as tmp:
        try:
            proc = subprocess.run(
                [*cmd, "-x", "c", "-", "-o", str(Path(tmp) / "probe")],
                input=source,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except OSError:
            return False
    return proc.returncode == 0


def tool_present(tool: Tool) -> bool:
    """True when `tool` works here (a compiler compiles, a library links or is found)."""
    if tool.command == "gcc -m32":
        return shutil.which("gcc") is not None and _compiles(["gcc", "-m32"], _HELLO_C)
    if tool.command == "arm-none-eabi-gcc newlib":
        return shutil.which("arm-none-eabi-gcc") is not None and _compiles(
            ["arm-none-eabi-gcc", "-mthumb", "-mcpu=cortex-m0", "-c"], _NEWLIB_C
        )
    return shutil.which(tool.command) is not None


def missing_tools(tools: tuple[Tool, ...]) -> list[Tool]:
    return [tool for tool in tools if not tool_present(tool)]


def install_hint(tools: list[Tool]) -> str:
    packages = " ".join(dict.fromkeys(t.package for t in tools))
    return f"install the Debian packages: apt-get install {packages} (or your system's equivalent)"


def require_toolchain(target: Target, *, run: bool = False) -> None:
    """InputError naming what is missing and the packages to install (exit code 2)."""
    tools = target.run_tools if run else target.tools
    missing = missing_tools(tools)
    if missing:
        names = ", ".join(t.command for t in missing)
        raise InputError(target.name, "toolchain", f"missing {names}; {install_hint(missing)}")
