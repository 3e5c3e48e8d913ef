"""INA226 current monitor over I2C: shunt voltage register to mA.

Shunt voltage LSB is 2.5 uV. The INA226 reads positive when current flows
IN+ to IN-; wire it so that discharge is positive (this project's sign).
"""


class Ina226:
    SHUNT_REG = 0x01

    def __init__(self, i2c, addr, shunt_uohm):
        self.i2c = i2c
        self.addr = addr
        self.shunt_uohm = shunt_uohm
        self.buf = bytearray(2)

    def current_mA(self):
        self.i2c.readfrom_mem_into(self.addr, self.SHUNT_REG, self.buf)
        raw = (self.buf[0] << 8) | self.buf[1]
        if raw & 0x8000:
            raw -= 0x10000
        # uV = raw * 2.5; mA = uV * 1000 / uohm, kept integer: raw*2500 < 2**27
        return raw * 2500 // self.shunt_uohm
