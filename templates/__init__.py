"""Lucky's templates and static files, installed as package data of `lucky_console.templates`.

A regular package (this file), not a namespace one: the editable install of a checkout maps
`lucky_console.templates` to this folder, and only finds it when it has an `__init__.py`;
`importlib.resources.files("lucky_console.templates")` then works there as in the wheel.
"""
