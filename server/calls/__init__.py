"""Audio and video call signalling (issue 12).

`state.py` is the pure state machine, `registry.py` the live calls of this node (the seam
the scale-out issue replaces), `service.py` the rules and the carrying out of effects,
`ice.py` the STUN/TURN answer with TURN REST API credentials, `routes.py` HTTP.
"""
