"""A power cut at any write of a save leaves a configuration and a state that load.

Issue 10 item 4. MicroPython's own FAT (VfsFat) and littlefs (VfsLfs2) run on a
RAM block device (tests/firmware/mpylib/powercut.py) that loses power at write
number k of a save, for every k the save takes, the write at the cut dropped or
torn. The image left is mounted afresh and read by the firmware's loaders,
which must give the old or the new content: never defaults, never a torn file.
The new file is longer than the old one, and then shorter (a FAT file rewritten
in place could mix the two); each sweep runs from a clean flash and from one
holding a torn .tmp. From every image a cut leaves with the file gone and its
.tmp behind (FAT, cut between remove and rename), the next save is cut at every
write too: that leftover is the only copy, and must not be lost. Every image is
also given the next save uncut, which must load the newer content, no .tmp left.

Run with -s to see the figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.firmware.bms_harness import run_rig

SCRIPT = """
import json
from powercut import MOUNT, cut_during, format_flash, listing, mount, power_up, write_garbage
from bms import config
from bms.core import Bms

KIND = %(kind)r
WHAT = %(what)r

def config_content(changes):
    c = config.Config()
    assert c.update(changes) is None
    return c

def state_content(q_mAs, log_n):
    b = Bms(config.Config(), "/nonexistent/bms_state.json")
    b.est.q[0] = q_mAs
    b.clock_s = 1000 + log_n
    for k in range(log_n):
        b.log.add(k, k, 1 << (k %% 17), k %% 2)
    b.state_path = MOUNT + "/bms_state.json"
    return b

if WHAT == "config":
    PATH = MOUNT + "/bms_config.json"
    big = {"ocv_soc_cpct": [0] + [300 * k + 700 for k in range(30)] + [10000],
           "ocv_chg_mV": [3000 + 10 * k for k in range(32)],
           "ocv_dsg_mV": [2900 + 10 * k for k in range(32)],
           "r_soc_pct": [100 + k for k in range(32)]}
    objs = [config_content({"n_cells": 4}), config_content(dict(big, n_cells=4, ov_mV=4210)),
            config_content({"n_cells": 4, "ov_mV": 4205})]
    def saver(o):
        return lambda: o.save(PATH)
    contents = [o.as_dict() for o in objs]
    def boot():
        c, flags = config.load(PATH)
        return c.as_dict() if flags == 0 else ("flags", flags, c.error)
else:
    from bms import storage
    PATH = MOUNT + "/bms_state.json"
    objs = [state_content(1000000, 3), state_content(2000000, 16), state_content(1500000, 0)]
    def saver(o):
        return o.save
    contents = [json.loads(json.dumps(storage.state_dict(o))) for o in objs]
    def boot():
        d, flags = storage.load_state(PATH)
        return d if flags == 0 else ("flags", flags)

OLD, NEW, NEWER = contents
def sweep(image, save, allowed, stage, stats, bad, then=None):
    # cut save() at every write, the write at the cut dropped or torn; boot each image
    left = 0
    while True:
        for torn in (False, True):
            img, was_cut, writes = cut_during(image, KIND, save, left, torn)
            if not was_cut:
                return writes
            stats[stage] += 1
            power_up(img, KIND)
            got = boot()
            files = listing()
            if got not in allowed:
                bad.append((stage, left, torn, files, str(got)[:80]))
            elif then is not None:
                then(img, got, files)
        left += 1

def run(a, b, stale_tmp, stats, bad):
    # content a on the flash, then a save of content b cut at every write
    name = PATH[len(MOUNT) + 1:]
    dev = format_flash(KIND)
    mount(dev)
    saver(objs[a])()
    if stale_tmp:
        write_garbage(PATH + ".tmp", 300)
    image0 = bytes(dev.mem)
    power_up(image0, KIND)
    assert boot() == contents[a], boot()

    def after_cut(img, got, files):
        if name not in files:
            # only the .tmp is left (FAT, cut between remove and rename): the next save,
            # cut at every write, must not lose it
            stats["second"] += 1
            sweep(img, saver(objs[2]), (got, NEWER), "cuts2", stats, bad)
        # and the next save uncut gives the newer content, nothing left over
        img2, was_cut, _ = cut_during(img, KIND, saver(objs[2]), -1, False)
        power_up(img2, KIND)
        if boot() != NEWER or name + ".tmp" in listing():
            bad.append(("next", files, listing(), str(boot())[:80]))

    allowed = (contents[a], contents[b])
    writes = sweep(image0, saver(objs[b]), allowed, "cuts", stats, bad, after_cut)
    stats["writes"] = max(stats["writes"], writes)
    img, was_cut, _ = cut_during(image0, KIND, saver(objs[b]), -1, False)
    power_up(img, KIND)
    assert boot() == contents[b] and name + ".tmp" not in listing(), listing()

stats = {"cuts": 0, "cuts2": 0, "second": 0, "writes": 0}
bad = []
for a, b in ((0, 1), (1, 0)):  # a longer file over a shorter one, and the reverse
    for stale in (False, True):
        run(a, b, stale, stats, bad)
print(json.dumps({"stats": stats, "bad": bad[:5], "n_bad": len(bad)}))
"""


@pytest.mark.parametrize("what", ["config", "state"])
@pytest.mark.parametrize("kind", ["fat", "lfs"])
def test_every_power_cut_of_a_save_leaves_old_or_new_content(
    tmp_path: Path, kind: str, what: str
) -> None:
    out = run_rig(SCRIPT % {"kind": kind, "what": what}, tmp_path, timeout_s=600)
    rec = json.loads(out.strip().splitlines()[-1])
    stats = rec["stats"]
    print(
        f"\n{kind} {what}: a save takes up to {stats['writes']} writes; {stats['cuts']} cuts "
        f"(dropped and torn; longer over shorter and the reverse; from a clean flash and "
        f"one with a torn .tmp), then "
        f"{stats['cuts2']} cuts of the next save from the {stats['second']} images holding only "
        f"the .tmp; {rec['n_bad']} booted to anything but the old or new content"
    )
    assert rec["n_bad"] == 0, rec["bad"]
    assert stats["cuts"] >= 2 * stats["writes"]  # each write of the longest save, both tears
