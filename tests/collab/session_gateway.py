"""A gateway process with the session WebSocket: the gateway's app with /ws/session included, as
the app factory will include it. Settings from VOXCAST_* variables.

Usage: python session_gateway.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from voxcast.gateway.app import create_app
from voxcast.gateway.collab.route import router

app = create_app()
app.router.routes[0:0] = router.routes  # before the viewer's static mount at "/"

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
