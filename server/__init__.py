"""Lucky's server: the HTTP and WebSocket edges, the services, and the ports they stand on."""

__version__ = "0.1.0"
