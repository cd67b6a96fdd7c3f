"""The console's pages, one module each (registered in `console/app.py`)."""
