"""Link adapter: sensor readings come from the host's SAMPLE frames.

The switches are driven on GPIO when the board has `chg`/`dsg` pins (a real
board in hardware-in-the-loop), and the balancing bleed on the `bleed` pins
(one per cell) when it has them; the virtual board has none. Also the status
LED and the watchdog, which every adapter offers.
"""


class LinkBoard:
    def __init__(self, board):
        pins = board.get("pins") or {}
        self.chg = None
        self.dsg = None
        self.led_pin = None
        self.bleed = []
        self.wdt = None
        try:
            import machine
        except ImportError:
            return
        pin_cls = getattr(machine, "Pin", None)
        if pin_cls is not None:
            # value=0 first: a switch is never closed before the BMS has decided
            if pins.get("chg") is not None:
                self.chg = pin_cls(pins["chg"], pin_cls.OUT, value=0)
            if pins.get("dsg") is not None:
                self.dsg = pin_cls(pins["dsg"], pin_cls.OUT, value=0)
            if pins.get("led") is not None:
                self.led_pin = pin_cls(pins["led"], pin_cls.OUT, value=0)
            # one bleed switch per cell, cell 1 first; absent on boards whose host
            # applies the bleed to a model (the virtual board, HIL rigs)
            for p in pins.get("bleed") or ():
                self.bleed.append(pin_cls(p, pin_cls.OUT, value=0))
        wdt_ms = board.get("wdt_timeout_ms", 0)
        wdt_cls = getattr(machine, "WDT", None)
        if wdt_ms and wdt_cls is not None:
            self.wdt = wdt_cls(timeout=wdt_ms)

    def apply(self, chg_on, dsg_on, balance):
        if self.chg is not None:
            self.chg.value(1 if chg_on else 0)
        if self.dsg is not None:
            self.dsg.value(1 if dsg_on else 0)
        if self.led_pin is not None:
            self.led_pin.value(1 if (chg_on or dsg_on) else 0)
        bit = 1
        for pin in self.bleed:
            pin.value(1 if balance & bit else 0)
            bit <<= 1

    def open_all(self):
        self.apply(False, False, 0)

    def feed_wdt(self):
        if self.wdt is not None:
            self.wdt.feed()

    def measure(self, cell_mV, n_cells, temp_ddegC, n_temps) -> int:
        return 0  # never called in link mode: samples come from frames
