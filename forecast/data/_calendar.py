"""Exchange trading calendars, so that stock series step over trading days: weekends and
exchange holidays are not gaps, and future timestamps are the next trading days.

Only the New York Stock Exchange (ISO 10383 code ``XNYS``) is built in. Its rules cover the
regular holidays since 1998 (when Martin Luther King Jr. Day was added) and the unscheduled
full-day closures since 1994; earlier data may show extra missing days.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
from dateutil.relativedelta import MO
from pandas.tseries.holiday import (
    AbstractHolidayCalendar,
    GoodFriday,
    Holiday,
    USLaborDay,
    USMemorialDay,
    USPresidentsDay,
    USThanksgivingDay,
    nearest_workday,
    sunday_to_monday,
)
from pandas.tseries.offsets import CustomBusinessDay, DateOffset

# Unscheduled full-day closures (funerals of presidents, 9/11, hurricane Sandy).
_NYSE_CLOSURES = (
    ("Nixon funeral", 1994, 4, 27),
    ("September 11", 2001, 9, 11),
    ("September 11", 2001, 9, 12),
    ("September 11", 2001, 9, 13),
    ("September 11", 2001, 9, 14),
    ("Reagan funeral", 2004, 6, 11),
    ("Ford funeral", 2007, 1, 2),
    ("Hurricane Sandy", 2012, 10, 29),
    ("Hurricane Sandy", 2012, 10, 30),
    ("G. H. W. Bush funeral", 2018, 12, 5),
    ("Carter funeral", 2025, 1, 9),
)


class NYSECalendar(AbstractHolidayCalendar):
    """Full-day holidays of the New York Stock Exchange.

    A holiday on a Saturday is observed on the Friday before and one on a Sunday on the
    Monday after, except New Year's Day, which is not observed on the Friday before.
    """

    rules = [
        Holiday("New Year's Day", month=1, day=1, observance=sunday_to_monday),
        Holiday(
            "Martin Luther King Jr. Day",
            month=1,
            day=1,
            start_date="1998-01-01",
            offset=DateOffset(weekday=MO(3)),
        ),
        USPresidentsDay,
        GoodFriday,
        USMemorialDay,
        Holiday(
            "Juneteenth", month=6, day=19, start_date="2022-01-01", observance=nearest_workday
        ),
        Holiday("Independence Day", month=7, day=4, observance=nearest_workday),
        USLaborDay,
        USThanksgivingDay,
        Holiday("Christmas Day", month=12, day=25, observance=nearest_workday),
    ] + [Holiday(name, year=y, month=m, day=d) for name, y, m, d in _NYSE_CLOSURES]


@lru_cache(maxsize=None)
def trading_day_offset(calendar: str = "XNYS") -> CustomBusinessDay:
    """The pandas offset that steps over the trading days of `calendar` (only ``XNYS``)."""
    if calendar != "XNYS":
        raise ValueError(f"unknown trading calendar {calendar!r}; only 'XNYS' is built in")
    return CustomBusinessDay(calendar=NYSECalendar())


@lru_cache(maxsize=None)
def _holidays(calendar: str = "XNYS") -> pd.DatetimeIndex:
    del calendar  # only XNYS exists
    return NYSECalendar().holidays(start="1970-01-01", end="2200-12-31")


def exchange_holidays(start, end, calendar: str = "XNYS") -> pd.DatetimeIndex:
    """Weekday holidays of `calendar` between `start` and `end` (inclusive, dates only)."""
    days = _holidays(calendar)
    days = days[(days >= pd.Timestamp(start).normalize()) & (days <= pd.Timestamp(end))]
    return days[days.day_of_week < 5]
