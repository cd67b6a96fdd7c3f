"""The operator console (a later issue): server-rendered pages under /console."""
