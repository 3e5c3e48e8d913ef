"""The rare commands: a configuration written or read, latched faults cleared, the fault log
read. Imported for one command and dropped from the heap afterwards (bms.forget), so their
code takes none while the BMS runs (a 16-cell board has a few hundred bytes to spare).

Current is positive on discharge.
"""

import json

from bms import codec


def config_json(d):
    """The canonical CONFIG payload: sorted keys, no spaces (the HELLO config CRC covers it)."""
    parts = []
    for k in sorted(d):
        parts.append(json.dumps(k) + ":" + json.dumps(d[k]))
    return ("{" + ",".join(parts) + "}").encode()


def fault_log_json(log):
    """The FAULT_LOG reply's payload: the oldest entries give way when the log does not fit
    one frame."""
    start = 0
    text = json.dumps(log).encode()
    while len(text) > codec.MAX_PAYLOAD and start < len(log):
        start += 1
        text = json.dumps(log[start:]).encode()
    return text


def config_write(app):
    """CONFIG_WRITE: a JSON object of changes, applied whole or not at all, then persisted."""
    p = app.parser
    try:
        changes = json.loads(bytes(p.buf[codec.HEADER : codec.HEADER + p.length]))
    except ValueError:
        # (a document too deep or too big for the heap left raises MemoryError, which
        # main.serve() answers E_MEMORY: nothing of it is applied)
        changes = None
    if not isinstance(changes, dict):
        app._reject(codec.E_PAYLOAD)
        return
    app._accept()
    err = app.cfg.update(changes)
    if err:
        app._reply_bytes(codec.T_CONFIG_WRITE, 1, err.encode())
        return
    # in force at once (as step() would at the next sample): a GET_STATE, SAVE or reset
    # before it must see per-cell state of a new cell count (it read past the old arrays)
    app.bms._configure()
    app._config_changed()
    status = 0
    text = b""
    try:
        app.cfg.save(app.config_path)
    except OSError as e:
        status = 2  # in force, but not persisted
        text = ("save: " + str(e)).encode()
    except MemoryError:
        status = 2  # applied already: say so, rather than an ERROR that reads as refused
        text = b"save: memory"
    app._reply_bytes(codec.T_CONFIG_WRITE, status, text)


def clear_latched(bms, reason, mask):
    """CLEAR_LATCHED: drop the latched faults in mask (they re-trip if their cause
    persists), log them with the reason code (2..255: the fault log's third field) and
    persist at once; return the cleared bits."""
    cleared = bms.prot.clear(mask)
    if cleared:
        bms.log.add(bms.clock_s, bms.clock_ms, cleared, reason)
        bms._logged &= ~cleared  # logged here, with the reason, not as a release
        bms.set_link_lost(bms.link_lost)  # decide the switches again, the verdict kept
        try:
            bms.save()
        except OSError:
            bms.save_errors += 1
    return cleared
