"""Package layout that pyproject.toml alone cannot express.

firmware/ and boards/ are not Python packages of the host, yet the CLI needs
them after a non-editable install; they are shipped as data inside
host/_bundled/ and found by host.resources.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["cellmodel", "cellmodel.*", "host", "host.*"])
    + ["host._bundled.firmware", "host._bundled.boards"],
    package_dir={
        "host._bundled.firmware": "firmware",
        "host._bundled.boards": "boards",
    },
    package_data={
        "cellmodel": ["cells/*.toml"],
        "host._bundled.firmware": ["*.py", "*.json", "**/*.py", "**/*.json"],
        # boards/qemu/: the QEMU board's build files (sisnbms micropython build)
        "host._bundled.boards": ["*.toml", "qemu/*", "qemu/cmodule/*"],
        "host": ["**/*.py", "**/*.toml", "**/*.csv"],
    },
    include_package_data=True,
)
