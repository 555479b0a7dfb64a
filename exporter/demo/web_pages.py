"""The demo's HTML pages under ``/web/``: the order list with its booking form, and the session a bearer token
is exchanged for (the browser side the xss and csrf checks meet)."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from exporter.demo.app import DemoApi, request_caller, status_param, text_field
from exporter.demo.security import CSRF_FIELD, SESSION, SESSION_COOKIE, csrf_token
from exporter.demo.spans import TraceRecorder


def _form(body: bytes) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(body.decode("utf-8", "replace")).items()}


def orders_page(orders: list[dict[str, Any]], status: str, csrf: str | None, escape: bool) -> str:
    """The HTML order list: what the caller asked for and the orders' fields escaped (unless ``escape`` is off:
    the xss hole), with a booking form carrying the session's CSRF token."""
    def text(value: Any) -> str:
        return html.escape(str(value)) if escape else str(value)

    rows = "".join(f"<tr><td>{o['id']}</td><td>{text(o['pickup'])}</td><td>{text(o['dropoff'])}</td>"
                   f"<td>{text(o['status'])}</td></tr>" for o in orders)
    hidden = f'<input type="hidden" name="{CSRF_FIELD}" value="{csrf}">' if csrf else ""
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>Orders</title></head><body>"
            f"<h1>Orders with status {text(status)}</h1>"
            f"<table><tr><th>Order</th><th>Pickup</th><th>Dropoff</th><th>Status</th></tr>{rows}</table>"
            f"{'' if orders else f'<p>No orders with status {text(status)}.</p>'}"
            f'<form method="post" action="/web/orders">{hidden}<input name="pickup"><input name="dropoff">'
            f"<button>Book a ride</button></form></body></html>")


class DemoPages:
    def __init__(self, api: DemoApi) -> None:
        self.api = api

    async def web_orders(self, request: Request, rec: TraceRecorder) -> Response:
        status = status_param(request)
        orders = await self.api.orders_with_status(request, rec, status, unsafe=False)
        session = request.scope.get(SESSION)
        security = self.api.state.security
        csrf = csrf_token(security.key, session) if security is not None and session else None
        return HTMLResponse(orders_page(orders, status, csrf, escape=not self.api.state.faults.hole("xss")))

    async def web_book(self, request: Request, rec: TraceRecorder) -> Response:
        """The booking form's post (its CSRF token checked by the middleware for a cookie session)."""
        form = _form(await request.body())
        body: dict[str, Any] = {k: v for k, v in form.items() if k in ("pickup", "dropoff")}
        if "rider_id" in form:
            body["rider_id"] = int(form["rider_id"]) if form["rider_id"].isdigit() else form["rider_id"]
        rider_id = self.api.booking_rider(request, body)
        order = await self.api.book(rec, rider_id, text_field(body, "pickup", "Alexanderplatz 1"),
                                    text_field(body, "dropoff", "Flughafen BER"))
        return RedirectResponse(f"/web/orders?status={order['status']}", status_code=303)

    async def web_session(self, request: Request) -> Response:
        """Exchanges the bearer token the middleware let in for the session cookie."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if self.api.state.security is None or request_caller(request) is None or scheme.lower() != "bearer":
            return JSONResponse({"error": "sessions need the demo's security on (DEMO_SECURITY=on) and a bearer "
                                          "token"}, status_code=404)
        response = RedirectResponse("/web/orders", status_code=303)
        response.set_cookie(SESSION_COOKIE, token.strip(), path="/web/", httponly=True, samesite="lax")
        return response
