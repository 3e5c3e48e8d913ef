"""The BMS's pure logic (no hardware modules): importable by CPython for tests."""


def forget(name):
    """Drop the submodule bms.<name> (used only at boot or for a rare command) so its
    code and tables can be collected; the next import loads it again."""
    import sys

    sys.modules.pop("bms." + name, None)
    g = globals()
    if name in g:
        del g[name]
