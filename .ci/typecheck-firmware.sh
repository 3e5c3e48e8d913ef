#!/usr/bin/env bash
# Type-check firmware/ with pyright against the MicroPython stubs of each target port.
#
# micropython-rp2-stubs and micropython-esp32-stubs both install machine.pyi & co. at the
# top of site-packages, so in one venv the last one installed wins. Each port therefore
# gets its own folder, build/stubs/<port>, holding that port's stubs and the stdlib stubs
# (used as pyright's typeshed); the versions are the ones installed in .venv, so the result
# does not drift with PyPI. firmware/pyrightconfig.json (rp2) and
# firmware/pyrightconfig.esp32.json point pyright there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PYRIGHT=${PYRIGHT:-.venv/bin/pyright}

version_of() {
    "$PY" -c "import importlib.metadata as m, sys
try:
    print('==' + m.version(sys.argv[1]))
except m.PackageNotFoundError:
    print('~=1.29.0')" "$1"
}

stdlib_spec="micropython-stdlib-stubs$(version_of micropython-stdlib-stubs)"
status=0
for port in rp2 esp32; do
    dir="build/stubs/$port"
    spec="micropython-$port-stubs$(version_of micropython-$port-stubs)"
    stamp="$dir/.installed"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$spec $stdlib_spec" ]; then
        rm -rf "$dir"
        "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --target "$dir" \
            "$spec" "$stdlib_spec"
        echo "$spec $stdlib_spec" > "$stamp"
    fi
    config=firmware/pyrightconfig.json
    [ "$port" = rp2 ] || config="firmware/pyrightconfig.$port.json"
    echo "-- pyright firmware/ against $spec"
    "$PYRIGHT" -p "$config" || status=1
done
exit $status
