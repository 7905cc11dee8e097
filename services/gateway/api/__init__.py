"""REST routers, one module per resource, mounted under /api by voxcast.gateway.app."""
