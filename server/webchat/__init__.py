"""The web chat page at `/`: a small client of the public API and the WebSocket protocol.

It lives with the server rather than in `console/` because it is not part of the operator
console: it has no session cookie, no forms posted to the server and no server-side
rendering; the page is a static file (`templates/chat/index.html`) whose script
(`templates/static/chat/chat.js`) speaks only what any client speaks (PROTOCOL.md).
"""
