"""The `lucky` command: install, configure, run and operate a Lucky server."""
