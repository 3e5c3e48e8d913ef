"""RP2040 standalone adapter: the board measures its own cells.

Cells: one ADC per tap of the series stack through a divider
(`cell_divider_ppm` = pin voltage / tap voltage); cell k = tap k - tap k-1.
Current: an INA226 over I2C, or an ADC pin across the shunt biased at half
the ADC reference (`current_sensor` "ina226" | "adc" | "none").
Temperatures: linear sensors of the TMP36 kind (500 mV at 0 degC, 10 mV/degC).
Switches, LED and watchdog as in the link adapter. Current positive on discharge.
"""

from machine import ADC, I2C, Pin

from adapters.link import LinkBoard


class Rp2040Board(LinkBoard):
    def __init__(self, board):
        super().__init__(board)
        pins = board.get("pins") or {}
        self.vref_mV = board.get("adc_vref_mV", 3300)
        # permille keeps tap_mV * 1000 // divider within small ints
        self.divider_pm = max(1, board.get("cell_divider_ppm", 1000000) // 1000)
        self.shunt_uohm = max(1, board.get("shunt_uohm", 1000))
        self.cell_adc = [self.make_adc(p) for p in pins.get("adc_cells", [])]
        self.temp_adc = [self.make_adc(p) for p in pins.get("adc_temps", [])]
        self.current_adc = None
        self.ina = None
        sensor = board.get("current_sensor", "none")
        if sensor == "adc" and pins.get("adc_current") is not None:
            self.current_adc = self.make_adc(pins["adc_current"])
        elif sensor == "ina226":
            from adapters.ina226 import Ina226

            i2c = I2C(pins.get("i2c_id", 0), sda=Pin(pins["i2c_sda"]), scl=Pin(pins["i2c_scl"]))
            self.ina = Ina226(i2c, board.get("ina226_addr", 0x40), self.shunt_uohm)

    def make_adc(self, pin):
        return ADC(Pin(pin))

    def read_mV(self, adc):
        # read_u16 is 0..65535 on every port; 65535 * 3300 stays below 2**30
        return adc.read_u16() * self.vref_mV >> 16

    def measure(self, cell_mV, n_cells, temp_ddegC, n_temps):
        below = 0
        for k in range(min(n_cells, len(self.cell_adc))):
            tap = self.read_mV(self.cell_adc[k]) * 1000 // self.divider_pm
            cell_mV[k] = max(0, tap - below)
            below = tap
        for k in range(min(n_temps, len(self.temp_adc))):
            temp_ddegC[k] = self.read_mV(self.temp_adc[k]) - 500
        if self.ina is not None:
            return self.ina.current_mA()
        if self.current_adc is not None:
            shunt_uV = (self.read_mV(self.current_adc) - (self.vref_mV >> 1)) * 1000
            return shunt_uV * 1000 // self.shunt_uohm
        return 0
