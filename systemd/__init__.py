"""systemd unit files, installed by `lucky service install` (package data, not code)."""
