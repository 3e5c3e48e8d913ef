"""RP2040 standalone adapter: the board measures its own cells.

Cells: one ADC per tap of the series stack through a divider
(`cell_divider_ppm` = pin voltage / tap voltage); cell k = tap k - tap k-1.
Current: an INA226 over I2C, or an ADC pin on a shunt amplifier (gain
`amp_gain`) biased at half the ADC reference (`current_sensor` "ina226" |
"adc" | "none"). All arithmetic in small ints, resolution kept to the uV.
Temperatures: linear sensors of the TMP36 kind (500 mV at 0 degC, 10 mV/degC).
Switches, LED and watchdog as in the link adapter. Current positive on discharge.
"""

from machine import ADC, I2C, Pin

from adapters.link import LinkBoard


class Rp2040Board(LinkBoard):
    def __init__(self, board):
        super().__init__(board)
        pins = board.get("pins") or {}
        vref_mV = board.get("adc_vref_mV", 3300)
        self.vref_uV = vref_mV * 1000
        # read_u16 * (vref_uV >> 8) <= 65535 * 12890 stays below 2**30; >> 8 again gives uV
        self.uV_per_count_256 = self.vref_uV >> 8
        self.divider_pm = max(1, board.get("cell_divider_ppm", 1000000) // 1000)
        # the amplifier's output in uV over (shunt uOhm x gain) gives A; halved so that
        # shunt_uV * 500 stays a small int (|shunt_uV| <= vref / 2)
        self.half_rg = max(1, board.get("shunt_uohm", 1000) * board.get("amp_gain", 1) >> 1)
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
            self.ina = Ina226(i2c, board.get("ina226_addr", 0x40), board.get("shunt_uohm", 1000))

    def make_adc(self, pin):
        return ADC(Pin(pin))

    def read_uV(self, adc):
        """Voltage at the ADC pin in uV (read_u16 is 0..65535 on every port)."""
        return adc.read_u16() * self.uV_per_count_256 >> 8

    def measure(self, cell_mV, n_cells, temp_ddegC, n_temps):
        below = 0
        half = self.divider_pm >> 1
        for k in range(min(n_cells, len(self.cell_adc))):
            # pin uV / (divider in permille) = tap mV, rounded
            tap = (self.read_uV(self.cell_adc[k]) + half) // self.divider_pm
            cell_mV[k] = max(0, tap - below)
            below = tap
        for k in range(min(n_temps, len(self.temp_adc))):
            # TMP36-type: 500 mV at 0 degC, 10 mV/degC, i.e. 1 mV per 0.1 degC
            temp_ddegC[k] = (self.read_uV(self.temp_adc[k]) - 500000) // 1000
        if self.ina is not None:
            return self.ina.current_mA()
        if self.current_adc is not None:
            # bidirectional amplifier biased at half the reference; positive = discharge
            shunt_uV = self.read_uV(self.current_adc) - (self.vref_uV >> 1)
            return shunt_uV * 500 // self.half_rg
        return 0
