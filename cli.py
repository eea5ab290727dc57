from forecast.cli import app
app()
