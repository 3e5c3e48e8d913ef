"""A simulated `machine` module: the RP2040/ESP32 peripherals the board adapters use.

No chip runs here, so the adapters' arithmetic and pin handling are tested
under the real MicroPython interpreter against these stand-ins. Put this
folder first on sys.path (a file module shadows the unix port's own
`machine`). Tests set the analog inputs (ADC_UV: microvolts at an ADC pin)
and I2C registers (I2C_REGS), and read back the levels the firmware drove
(PIN_LEVELS) and the watchdog feeds (WDT_STATE).
"""

PIN_LEVELS = {}
ADC_UV = {}
I2C_REGS = {}
WDT_STATE = {"timeout": 0, "feeds": 0}
ADC_FULL_SCALE_UV = 3300000


class Pin:
    IN = 0
    OUT = 1

    def __init__(self, pin_id, mode=-1, value=None):
        self.pin_id = pin_id
        if value is not None:
            PIN_LEVELS[pin_id] = value

    def value(self, level=None):
        if level is None:
            return PIN_LEVELS.get(self.pin_id, 0)
        PIN_LEVELS[self.pin_id] = 1 if level else 0


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin, atten=None):
        self.pin_id = pin.pin_id
        self.atten = atten

    def read_u16(self):
        uv = ADC_UV.get(self.pin_id, 0)
        return max(0, min(65535, uv * 4096 // (ADC_FULL_SCALE_UV // 16)))

    def read_uv(self):
        return ADC_UV.get(self.pin_id, 0)


class I2C:
    def __init__(self, i2c_id, sda=None, scl=None, freq=400000):
        self.i2c_id = i2c_id

    def readfrom_mem_into(self, addr, reg, buf):
        data = I2C_REGS[(addr, reg)]
        for i in range(len(buf)):
            buf[i] = data[i]


class WDT:
    def __init__(self, timeout=5000):
        WDT_STATE["timeout"] = timeout

    def feed(self):
        WDT_STATE["feeds"] += 1
