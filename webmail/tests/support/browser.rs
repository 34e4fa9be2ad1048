//! A browser for the in-process tests: requests go straight to the router, cookies are kept
//! (the `__Host-` ones are all `Path=/`), pages are read as text.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use tower::ServiceExt as _;

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Page {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value, `""` when absent.
    pub fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    pub fn location(&self) -> &str {
        self.header(header::LOCATION)
    }

    /// The value of the first `_csrf` field of the page.
    pub fn csrf(&self) -> String {
        self.field("_csrf")
    }

    /// The value of the named field's `value` in the first form that has it.
    pub fn field(&self, name: &str) -> String {
        let text = self.text();
        let needle = format!("name=\"{name}\" value=\"");
        let at = text
            .find(&needle)
            .unwrap_or_else(|| panic!("no field {name} in {text}"));
        let rest = &text[at + needle.len()..];
        rest[..rest.find('"').unwrap()].replace("&amp;", "&")
    }
}

pub struct Browser {
    pub router: Router,
    pub cookies: HashMap<String, String>,
}

impl Browser {
    pub fn new(router: Router) -> Self {
        Self {
            router,
            cookies: HashMap::new(),
        }
    }

    pub async fn send(&mut self, req: axum::http::request::Builder, body: Body) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = if cookie.is_empty() {
            req
        } else {
            req.header(header::COOKIE, cookie)
        };
        let response = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        for c in response.headers().get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .unwrap()
            .to_vec();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Request::get(path), Body::empty()).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.send(
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
            Body::from(body),
        )
        .await
    }

    /// Loads `path`'s form, then posts `fields` with its CSRF token.
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.get(path).await.csrf();
        let mut all = vec![("_csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }
}
