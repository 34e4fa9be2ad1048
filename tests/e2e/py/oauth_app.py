#!/usr/bin/env python3
"""A referenced health app ("balance-gluco", a connected scale) talking to the hub as a real
OAuth 2.0 public client would: authorization code with PKCE S256 (RFC 6749 §4.1, RFC 7636),
a loopback redirect URI on a port of its choosing (RFC 8252 §7.3), then bearer calls to the
apps' JSON API (RFC 6750). Standard library only. Run by tests/e2e/apps.rs.

Every subcommand but `start` prints one JSON object on stdout. DIR keeps the app's secrets
between subcommands (pkce.json: state, verifier, redirect URI; callback.json: what came back).

  start BASE DIR PORT            print the authorize URL, then serve one callback on PORT
  url BASE DIR CLIENT_ID REDIRECT_URI SCOPE
                                 only print an authorize URL (another app, no callback server)
  exchange BASE CA DIR [--code C] [--verifier V]
                                 POST /oauth/token (authorization_code)
  push BASE CA TOKEN             POST two weight measurements (yesterday and today)
  refresh BASE CA REFRESH_TOKEN  POST /oauth/token (refresh_token, RFC 6749 §6)
  call BASE CA TOKEN [--documents]
                                 one measurement (or GET documents): status and challenge
  consent BASE CA DIR REDIRECT_URI [--post] [--post-scope S] [--post-redirect-uri U]
                                 without a browser: sign in as the demo patient, GET the
                                 authorize page and, with --post, answer it "Autoriser"
"""

import base64
import hashlib
import html.parser
import http.cookiejar
import http.server
import json
import os
import secrets
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

CLIENT_ID = "balance-gluco"
SCOPE = "measurements:write"
PATIENT = ("284057511204339", "demo-camille")


def out(value):
    print(json.dumps(value, ensure_ascii=False), flush=True)


def tls_context(ca):
    return ssl.create_default_context(cafile=ca)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers to look at, not to follow (the app's callback is checked)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def opener(ca, jar=None):
    handlers = [urllib.request.HTTPSHandler(context=tls_context(ca)), NoRedirect()]
    if jar is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(jar))
    return urllib.request.build_opener(*handlers)


def request(op, url, data=None, headers=None):
    """(status, headers, body text) whatever the status."""
    body = None
    if isinstance(data, (dict, list)):
        body = urllib.parse.urlencode(data).encode()
    elif isinstance(data, bytes):
        body = data
    req = urllib.request.Request(url, data=body, headers=headers or {})
    if body is not None and "Content-Type" not in (headers or {}):
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with op.open(req, timeout=30) as r:
            return r.status, r.headers, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8", "replace")


def api_base(base, ca):
    """`base`, or the same with localhost when the hub's certificate does not name its IP
    address (the demo's names both: this is for a hub with a certificate of its own)."""
    u = urllib.parse.urlsplit(base)
    try:
        with socket.create_connection((u.hostname, u.port), timeout=10) as raw:
            with tls_context(ca).wrap_socket(raw, server_hostname=u.hostname):
                return base
    except ssl.SSLCertVerificationError as e:
        if "match" not in str(e) and "mismatch" not in str(e):
            raise
        return f"{u.scheme}://localhost:{u.port}"


def s256(verifier):
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_request(base, folder, redirect_uri, scope=SCOPE, client_id=CLIENT_ID):
    """A fresh state and PKCE pair, kept in DIR/pkce.json; returns the authorize URL."""
    state = secrets.token_urlsafe(16)
    verifier = secrets.token_urlsafe(48)  # 64 unreserved characters (RFC 7636 §4.1)
    with open(os.path.join(folder, "pkce.json"), "w") as f:
        json.dump({"state": state, "verifier": verifier, "redirect_uri": redirect_uri}, f)
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
    )
    return f"{base}/oauth/authorize?{query}"


def start(base, folder, port):
    """Prints the authorize URL, then serves the redirect: one request to /callback."""
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    got = {}

    class Callback(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            u = urllib.parse.urlsplit(self.path)
            if u.path != "/callback":
                self.send_error(404)
                return
            got.update({k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()})
            page = (
                '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
                "<title>Equilibre : connexion</title></head><body><main>"
                "<h1>Equilibre est connectée</h1>"
                "<p>Vous pouvez fermer cette page.</p></main></body></html>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", port), Callback)
    print(new_request(base, folder, redirect_uri), flush=True)
    # Other requests (a favicon) may come first; the browser has five minutes at most.
    server.timeout = 5
    deadline = time.monotonic() + 300
    while not got and time.monotonic() < deadline:
        server.handle_request()
    server.server_close()
    with open(os.path.join(folder, "callback.json"), "w") as f:
        json.dump(got, f)
    print("CALLBACK " + json.dumps(got), flush=True)
    sys.exit(0 if got else 1)


def saved(folder, name):
    with open(os.path.join(folder, name)) as f:
        return json.load(f)


def exchange(base, ca, folder, code=None, verifier=None):
    pkce = saved(folder, "pkce.json")
    if code is None:
        code = saved(folder, "callback.json")["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": pkce["redirect_uri"],
        "client_id": CLIENT_ID,
        "code_verifier": verifier if verifier is not None else pkce["verifier"],
    }
    status, headers, body = request(opener(ca), f"{base}/oauth/token", form)
    out({"status": status, "cache_control": headers.get("Cache-Control"), "body": as_json(body)})


def refresh(base, ca, refresh_token):
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT_ID}
    status, _, body = request(opener(ca), f"{base}/oauth/token", form)
    out({"status": status, "body": as_json(body)})


def as_json(body):
    try:
        return json.loads(body)
    except ValueError:
        return body


def measurement(token, base, ca, value, at):
    data = json.dumps(
        {"kind": "weight", "value": value, "unit": "kg", "at": at, "device": "Balance Equilibre B2"}
    ).encode()
    return request(
        opener(ca),
        f"{base}/api/apps/v1/measurements",
        data,
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


def push(base, ca, token):
    now = int(time.time())
    replies = [
        measurement(token, base, ca, 70.5, now - 86400),
        measurement(token, base, ca, 69.8, now - 60),
    ]
    out({"statuses": [r[0] for r in replies], "bodies": [as_json(r[2]) for r in replies]})


def call(base, ca, token, documents):
    if documents:
        status, headers, body = request(
            opener(ca), f"{base}/api/apps/v1/documents", None, {"Authorization": f"Bearer {token}"}
        )
    else:
        status, headers, body = measurement(token, base, ca, 70.0, int(time.time()) - 30)
    out(
        {
            "status": status,
            "www_authenticate": headers.get("WWW-Authenticate"),
            "body": as_json(body),
        }
    )


class Forms(html.parser.HTMLParser):
    """The hidden fields and checkboxes of the page's form posting to /oauth/authorize (the
    page has others, the sign-out form among them), and the page's first h1."""

    def __init__(self):
        super().__init__()
        self.hidden = []
        self.boxes = []
        self.h1 = None
        self._in_h1 = False
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._in_form = a.get("action") == "/oauth/authorize"
        elif tag == "input" and self._in_form and a.get("type") == "hidden":
            self.hidden.append((a.get("name"), a.get("value") or ""))
        elif tag == "input" and self._in_form and a.get("type") == "checkbox":
            self.boxes.append({"value": a.get("value"), "checked": "checked" in a})
        elif tag == "h1" and self.h1 is None:
            self._in_h1 = True
            self.h1 = ""

    def handle_endtag(self, tag):
        if tag == "h1":
            self._in_h1 = False
        elif tag == "form":
            self._in_form = False

    def handle_data(self, data):
        if self._in_h1:
            self.h1 += data


def login_token(body):
    at = body.find('name="_csrf" value="')
    if at < 0:
        return None
    rest = body[at + len('name="_csrf" value="') :]
    return rest[: rest.index('"')]


def parse(body):
    p = Forms()
    p.feed(body)
    return p


def consent(base, ca, folder, redirect_uri, post, post_scope, post_redirect_uri):
    jar = http.cookiejar.CookieJar()
    op = opener(ca, jar)
    status, _, body = request(op, f"{base}/login")
    token = login_token(body)
    if status != 200 or not token:
        sys.exit(f"GET /login: {status} without a _csrf field")
    form = [("login", PATIENT[0]), ("password", PATIENT[1]), ("_csrf", token)]
    status, headers, _ = request(op, f"{base}/login", form)
    if status != 303:
        sys.exit(f"POST /login: {status}")
    url = new_request(base, folder, redirect_uri)
    status, headers, body = request(op, url)
    page = parse(body)
    result = {
        "authorize": {
            "status": status,
            "location": headers.get("Location"),
            "h1": (page.h1 or "").strip(),
            "body": body[:4000],
            "boxes": page.boxes,
        }
    }
    if post and status == 200:
        fields = [(k, v) for k, v in page.hidden if k != "redirect_uri"]
        fields.append(("redirect_uri", post_redirect_uri or dict(page.hidden)["redirect_uri"]))
        for scope in post_scope.split() if post_scope else [b["value"] for b in page.boxes]:
            fields.append(("scope", scope))
        fields.append(("decision", "allow"))
        status, headers, body = request(op, f"{base}/oauth/authorize", fields)
        location = headers.get("Location")
        query = {}
        if location:
            query = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(location).query).items()}
            with open(os.path.join(folder, "callback.json"), "w") as f:
                json.dump(query, f)
        result["consent"] = {
            "status": status,
            "location": location,
            "query": query,
            "h1": (parse(body).h1 or "").strip(),
        }
    out(result)


def option(args, name):
    if name in args:
        i = args.index(name)
        value = args[i + 1]
        del args[i : i + 2]
        return value
    return None


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    command, args = args[0], args[1:]
    if command in ("exchange", "refresh", "push", "call") and len(args) >= 2:
        args[0] = api_base(args[0], args[1])
    if command == "start":
        base, folder, port = args
        start(base, folder, int(port))
    elif command == "url":
        base, folder, client_id, redirect_uri, scope = args
        out({"url": new_request(base, folder, redirect_uri, scope, client_id)})
    elif command == "exchange":
        code, verifier = option(args, "--code"), option(args, "--verifier")
        base, ca, folder = args
        exchange(base, ca, folder, code, verifier)
    elif command == "refresh":
        base, ca, refresh_token = args
        refresh(base, ca, refresh_token)
    elif command == "push":
        base, ca, token = args
        push(base, ca, token)
    elif command == "call":
        documents = "--documents" in args
        args = [a for a in args if a != "--documents"]
        base, ca, token = args
        call(base, ca, token, documents)
    elif command == "consent":
        post = "--post" in args
        args = [a for a in args if a != "--post"]
        post_scope = option(args, "--post-scope")
        post_redirect_uri = option(args, "--post-redirect-uri")
        base, ca, folder, redirect_uri = args
        consent(base, ca, folder, redirect_uri, post, post_scope, post_redirect_uri)
    else:
        sys.exit(f"unknown subcommand {command!r}\n{__doc__}")


if __name__ == "__main__":
    main()
