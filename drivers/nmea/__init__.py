"""NMEA 0183, from a receiver's bytes to fixes, as gpsd reads them.

framing (bytes -> lines, the checksum) -> sentences (fields and their values) -> rules
(what each sentence type brings) -> merge (gpsd's fix over a reporting cycle), with
plausibility (what no receiver can mean) refused and counted by reason.
"""

from drivers.nmea.fix import REASONS, Fix, NmeaStats, Rejection
from drivers.nmea.framing import NMEA_MAX_LINE, nmea_checksum, sentence
from drivers.nmea.plausibility import (
    EARTH_RADIUS_M,
    JUMP_CONFIRMATIONS,
    MAX_PLAUSIBLE_SPEED_MPS,
    PLACEHOLDER_YEAR,
    PositionCheck,
    distance_m,
)
from drivers.nmea.reader import NmeaReader
from drivers.nmea.rules import KNOTS_TO_MPS
from drivers.nmea.sentences import sentence_fields

__all__ = ["EARTH_RADIUS_M", "JUMP_CONFIRMATIONS", "KNOTS_TO_MPS", "MAX_PLAUSIBLE_SPEED_MPS", "NMEA_MAX_LINE",
           "PLACEHOLDER_YEAR", "REASONS", "Fix", "NmeaReader", "NmeaStats", "PositionCheck", "Rejection",
           "distance_m", "nmea_checksum", "sentence", "sentence_fields"]
