"""App releases: packages per platform and channel, the public update check, Tauri's updater
endpoint, signed downloads (PROTOCOL.md, "App releases" and "Desktop updates")."""
