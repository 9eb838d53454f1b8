"""``classicfer serve``: a local HTTP API and a browser kiosk page.

Needs the ``serve`` extra (``pip install 'classicfer[serve]'``: Starlette, uvicorn,
python-multipart). See :mod:`classicfer.serve.app` for the endpoints and limits.
"""

from .app import ApiError, ServeLimits, allowed_hosts_for, create_app

__all__ = ["ApiError", "ServeLimits", "allowed_hosts_for", "create_app"]
