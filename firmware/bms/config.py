"""Firmware configuration in force: one int attribute per key; load, update, atomic save.

Every value is an int with its unit in the key (see config_rules.py, which holds
the defaults, the hard limits and the validation). Current is positive on
discharge. config_rules is imported only while a configuration is made, loaded
or changed, and dropped from sys.modules afterwards: its tables would otherwise
take several KB of heap for the whole run.
"""

import json
import os

from bms import forget

# Config's own bookkeeping attributes: everything else in its __dict__ is a config key.
_META = ("version", "flags", "error")
_held = [0]  # nesting depth of _rules() users: the module is dropped when it falls to 0


def _rules():
    _held[0] += 1
    from bms import config_rules

    return config_rules


def _release():
    _held[0] -= 1
    if _held[0] == 0:
        forget("config_rules")


class Config:
    """The configuration in force: one int attribute per key (tables as lists).

    `version` counts accepted updates so users (Bms) notice a change cheaply;
    `flags` holds the HELLO_REPLY boot bits from load(); `error` the rejection text.
    """

    def __init__(self, d=None):
        self.version = 0
        self.flags = 0
        self.error: str | None = None
        r = _rules()
        try:
            self._apply(r.DEFAULTS)
        finally:
            _release()
        if d:
            self._apply(d)

    def _apply(self, d):
        for k in d:
            v = d[k]
            setattr(self, k, list(v) if isinstance(v, list) else v)

    def as_dict(self):
        d = {}
        attrs = self.__dict__
        for k in attrs:
            if k not in _META:
                v = attrs[k]
                d[k] = list(v) if isinstance(v, list) else v
        return d

    def update(self, changes):
        """Validate `changes` merged over the values in force; apply all or nothing.

        Returns None on success, else "field: reason".
        """
        if not isinstance(changes, dict):
            return "config: not an object"
        d = self.as_dict()
        for k in changes:
            if k not in d:
                return k + ": unknown key"
            d[k] = changes[k]
        r = _rules()
        try:
            err = r.validate(d)
        finally:
            _release()
        if err:
            return err
        self._apply(d)
        self.version += 1
        return None

    def save(self, path="bms_config.json"):
        write_json_atomic(path, self.as_dict())


def write_json_atomic(path, obj):
    """Write JSON to path + ".tmp", then rename it over `path`; raises OSError.

    A power cut at any point leaves a file that loads (load_json_text) with the old or
    the new content. littlefs renames over a file atomically. FAT cannot: MicroPython's
    VfsFat removes `path`, then renames, and a cut in between leaves only the complete
    .tmp, which the loaders take. Before the .tmp is written again, such a leftover is
    renamed into place, so the only copy is never the file being overwritten.
    """
    tmp = path + ".tmp"
    if not _exists(path) and _exists(tmp):
        os.rename(tmp, path)  # finish a save cut between remove and rename
    with open(tmp, "w") as f:
        json.dump(obj, f)
    try:
        os.rename(tmp, path)
    except OSError:
        # A filesystem that refuses to rename over an existing file (FAT elsewhere)
        _remove(path)
        os.rename(tmp, path)


def _exists(path):
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        return False
    return True


def load(path="bms_config.json"):
    """Read and validate the configuration file; return (Config, boot flags). Never raises.

    No file: defaults, flag bit3. Unreadable or rejected: defaults, flag bit4 and
    cfg.error says why (the CONFIG fault stays on until a valid write).
    """
    r = _rules()
    try:
        d, flags, error = r.read(path)
        cfg = Config(d)
    finally:
        _release()
    cfg.flags = flags
    cfg.error = error
    return cfg, flags
