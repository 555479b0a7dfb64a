"""The demo's routes: its API endpoints (traced), its own admin routes, its HTML pages and the Jaeger query API,
with the count of the requests it received."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from exporter.demo.admin import DemoAdmin
from exporter.demo.app import DemoApi
from exporter.demo.jaeger_routes import JaegerRoutes
from exporter.demo.state import DemoState
from exporter.demo.web_pages import DemoPages


def build_app(state: DemoState) -> Starlette:
    api, admin = DemoApi(state), DemoAdmin(state)
    pages = DemoPages(api)
    routes = [
        Route("/health", admin.health, methods=["GET"]),
        Route("/admin/faults", admin.get_faults, methods=["GET"]),
        Route("/admin/faults", admin.set_faults, methods=["POST"]),
        Route("/admin/faults", admin.clear_faults, methods=["DELETE"]),
        Route("/admin/tokens", admin.mint, methods=["POST"]),
        Route("/admin/received", admin.get_received, methods=["GET"]),
        Route("/api/v1/orders", api.traced("/api/v1/orders", api.create_order), methods=["POST"]),
        Route("/api/v1/orders", api.traced("/api/v1/orders", api.list_orders), methods=["GET"]),
        Route("/api/v1/orders/{id:int}", api.traced("/api/v1/orders/{id}", api.get_order), methods=["GET"]),
        Route("/api/v1/orders/{id:int}/cancel", api.traced("/api/v1/orders/{id}/cancel", api.cancel_order),
              methods=["POST"]),
        Route("/api/v1/trips/{id:int}", api.traced("/api/v1/trips/{id}", api.update_trip), methods=["PATCH"]),
        Route("/api/v1/trips/{id:int}/location",
              api.traced("/api/v1/trips/{id}/location", api.update_location), methods=["POST"]),
        Route("/api/v1/notifications", api.traced("/api/v1/notifications", api.send_notification),
              methods=["POST"]),
        Route("/web/session", pages.web_session, methods=["POST"]),
        Route("/web/orders", api.traced("/web/orders", pages.web_orders), methods=["GET"]),
        Route("/web/orders", api.traced("/web/orders", pages.web_book), methods=["POST"]),
        *JaegerRoutes(state.buffer).routes(),
    ]
    return Starlette(routes=routes, middleware=[Middleware(CountReceived, state=state)])


class CountReceived:
    """Counts every request but the admin routes', before anything can refuse it."""

    def __init__(self, app: ASGIApp, state: DemoState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/admin/"):
            self.state.received += 1
        await self.app(scope, receive, send)
