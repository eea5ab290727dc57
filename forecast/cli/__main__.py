"""``python -m forecast.cli``: the ``forecast`` command."""

from forecast.cli import app

app(prog_name="forecast")
