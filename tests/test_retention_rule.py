"""One calendar month from the local day of recording (R241-13), in the commune's zone."""

from datetime import UTC, datetime

import pytest

from recorder.retention import is_past_retention, retention_end
from tests.conftest import paris


@pytest.mark.parametrize("made, erased_at", [
    ((2026, 1, 15, 9, 0), (2026, 2, 16, 0, 0)),        # end of 15 February
    ((2026, 1, 15, 23, 59), (2026, 2, 16, 0, 0)),      # any hour of the day
    ((2026, 1, 31, 12, 0), (2026, 3, 1, 0, 0)),        # end of 28 February
    ((2028, 1, 31, 12, 0), (2028, 3, 1, 0, 0)),        # end of 29 February (leap year)
    ((2026, 12, 20, 8, 0), (2027, 1, 21, 0, 0)),       # across the year
    ((2026, 3, 10, 8, 0), (2026, 4, 11, 0, 0)),        # across the spring change of clocks
])
def test_one_calendar_month_from_the_local_day(made, erased_at):
    assert retention_end(paris(*made)) == paris(*erased_at)


def test_the_local_day_not_the_utc_day():
    # 00:30 in Paris on 1 March is still 28 February in UTC: the local day counts.
    made = paris(2026, 3, 1, 0, 30)
    assert datetime.fromtimestamp(made, UTC).day == 28
    assert retention_end(made) == paris(2026, 4, 2, 0, 0)


def test_past_retention_from_the_first_instant_after_the_last_day():
    made = paris(2026, 1, 31, 12, 0)
    assert not is_past_retention(made, paris(2026, 2, 28, 23, 59, 59))
    assert is_past_retention(made, paris(2026, 3, 1, 0, 0))


def test_overseas_commune_counts_in_its_own_zone():
    from zoneinfo import ZoneInfo
    made = datetime(2026, 1, 15, 22, 0, tzinfo=ZoneInfo("America/Cayenne")).timestamp()
    assert retention_end(made, "America/Cayenne") == datetime(2026, 2, 16, tzinfo=ZoneInfo("America/Cayenne")).timestamp()
