from tally.cli.main import app

app()
