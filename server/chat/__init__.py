"""Messaging: the send path, delivery with acks, sync, history, receipts, recall and edit.

`service.py` holds the rules, `writer.py` the group-committed send queue, `delivery.py` the
connected sessions and their ack cursors, `gateway.py` the WebSocket edge, `routes.py` HTTP.
"""
