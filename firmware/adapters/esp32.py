"""ESP32 standalone adapter: as the RP2040 one, with the ESP32's ADC.

The ESP32 ADC needs 11 dB attenuation to span about 0..3.1 V, and its
factory-calibrated read_uv() is more accurate than scaling raw counts.
"""

from machine import ADC, Pin

from adapters.rp2040 import Rp2040Board


class Esp32Board(Rp2040Board):
    def make_adc(self, pin):
        return ADC(Pin(pin), atten=ADC.ATTN_11DB)

    def read_uV(self, adc):
        return adc.read_uv()
