//! The web PTT client (PROTOCOL.md section 6, `GET /`): the page's files, embedded in the
//! binary, with the headers that keep it to itself; and the `Origin` check of WebSocket
//! upgrades, against cross-site WebSocket hijacking (RFC 6455 section 10.2).

use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{
    ALLOW, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, HOST, HeaderMap,
    HeaderValue, IF_NONE_MATCH, ORIGIN, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use hyper::{Method, Response, StatusCode};

/// WebSocket upgrades refused for a browser `Origin` that is neither this host nor allowed
/// (the stats line's `origin_refused`).
pub(crate) static ORIGIN_REFUSED: AtomicU64 = AtomicU64::new(0);

/// One embedded file of the page.
struct Asset {
    path: &'static str,
    body: &'static [u8],
    content_type: &'static str,
    /// FNV-1a of the body, the strong validator of `ETag` (RFC 9110 section 8.8.3).
    etag: u64,
}

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:expr) => {
        Asset {
            path: $path,
            body: include_bytes!(concat!("../../web/", $file)),
            content_type: $type,
            etag: fnv1a(include_bytes!(concat!("../../web/", $file))),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the page (daemon/web/), by the path it is served at.
const ASSETS: &[Asset] = &[
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/app.css", "app.css", "text/css; charset=utf-8"),
    asset!("/app.js", "app.js", JS),
    asset!("/gateway.js", "gateway.js", JS),
    asset!("/media.js", "media.js", JS),
    asset!("/words.js", "words.js", JS),
    asset!("/favicon.svg", "favicon.svg", "image/svg+xml"),
];

/// The page's total size, uncompressed: the budget of issue 16 is 100 KiB.
pub(crate) const PAGE_BYTES: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < ASSETS.len() {
        n += ASSETS[i].body.len();
        i += 1;
    }
    n
};
const _: () = assert!(
    PAGE_BYTES <= 100 * 1024,
    "the page is over its 100 KiB budget"
);

/// The answer to a request for one of the page's paths: the file, 304 when the client's
/// copy is current, 405 for a method other than GET and HEAD; `None` for any other path.
pub(crate) fn respond(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response<Full<Bytes>>> {
    let asset = ASSETS.iter().find(|a| a.path == path)?;
    Some(answer(asset, method, headers))
}

fn answer(asset: &Asset, method: &Method, headers: &HeaderMap) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = status(StatusCode::METHOD_NOT_ALLOWED);
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let etag = format!("\"{:016x}\"", asset.etag);
    // RFC 9110 section 13.1.2: a list of entity tags, or `*`.
    let current = headers.get_all(IF_NONE_MATCH).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == "*" || t == etag)
        })
    });
    let mut r = if current {
        status(StatusCode::NOT_MODIFIED)
    } else if method == Method::HEAD {
        status(StatusCode::OK)
    } else {
        Response::new(Full::new(Bytes::from_static(asset.body)))
    };
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    // Revalidated on every load (a 304 costs a round trip): the files change with the
    // binary, and a page out of step with its server is worse than a request saved.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&content_security_policy(headers.get(HOST))) {
        h.insert(CONTENT_SECURITY_POLICY, v);
    }
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("microphone=(self), camera=(self), geolocation=()"),
    );
    r
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = code;
    r
}

/// The page's own files only, no inline script or style, and WebSocket connections to its
/// own host. `'self'` covers ws:/wss: of the same host only in CSP Level 3 (W3C CSP3
/// section 6.7.2.8), so the host is also named, when it is a plain `host[:port]`.
fn content_security_policy(host: Option<&HeaderValue>) -> String {
    let mut connect = String::from("'self'");
    if let Some(h) = host
        .and_then(|h| h.to_str().ok())
        .filter(|h| is_plain_host(h))
    {
        connect.push_str(&format!(" ws://{h} wss://{h}"));
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         media-src 'self' blob: mediastream:; connect-src {connect}; object-src 'none'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// A `Host` value made only of what a host name, an IP literal and a port are made of, so it
/// cannot add a directive to the policy.
fn is_plain_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// A web origin (RFC 6454 section 4) as the check compares it: scheme, host and port, all
/// lowercase, the port filled in from the scheme when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port]` (a trailing `/` allowed), as browsers send it in the
    /// `Origin` header and as LIVECHAT_ALLOWED_ORIGINS lists them.
    pub(crate) fn parse(s: &str) -> Option<Origin> {
        let s = s.trim().trim_end_matches('/').to_ascii_lowercase();
        let (scheme, rest) = s.split_once("://")?;
        let default = match scheme {
            "http" | "ws" => 80,
            "https" | "wss" => 443,
            _ => return None,
        };
        let (host, port) = split_host_port(rest, default)?;
        Some(Origin {
            scheme: scheme.to_owned(),
            host,
            port,
        })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// `host[:port]` or `[v6][:port]`, lowercase; `None` when it has a path, user info or a bad
/// port.
fn split_host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    let s = s.to_ascii_lowercase();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{v6}]"), port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (s.clone(), None),
        }
    };
    if host.is_empty() || !is_plain_host(&host) {
        return None;
    }
    let port = match port {
        None => default_port,
        Some(p) => p.parse().ok()?,
    };
    Some((host, port))
}

/// Why an upgrade's `Origin` was refused: the origin as sent, for the log.
#[derive(Debug)]
pub(crate) struct OriginRefused(pub(crate) String);

/// The `Origin` check of a WebSocket upgrade. No `Origin` header (radios, tools): allowed.
/// A browser's `Origin` is allowed when its host and port are the request's `Host` (the
/// page this server served), or when LIVECHAT_ALLOWED_ORIGINS lists it; anything else,
/// `null` and unparsable values included, is refused and counted.
pub(crate) fn check_origin(
    headers: &HeaderMap,
    tls: bool,
    allowed: &[Origin],
) -> Result<(), OriginRefused> {
    let mut origins = headers.get_all(ORIGIN).iter();
    let Some(value) = origins.next() else {
        return Ok(());
    };
    let sent = String::from_utf8_lossy(value.as_bytes()).into_owned();
    let ok = origins.next().is_none()
        && value
            .to_str()
            .ok()
            .and_then(Origin::parse)
            .is_some_and(|o| {
                let default = if tls { 443 } else { 80 };
                let host = headers
                    .get(HOST)
                    .and_then(|h| h.to_str().ok())
                    .and_then(|h| split_host_port(h, default));
                host.is_some_and(|(h, p)| h == o.host && p == o.port) || allowed.contains(&o)
            });
    if ok {
        Ok(())
    } else {
        ORIGIN_REFUSED.fetch_add(1, Ordering::Relaxed);
        Err(OriginRefused(sent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_same_host_and_port_pass_whatever_the_scheme() {
        let h = headers(&[
            ("host", "pi.local:8443"),
            ("origin", "https://pi.local:8443"),
        ]);
        assert!(check_origin(&h, true, &[]).is_ok());
        let h = headers(&[("host", "PI.local"), ("origin", "https://pi.LOCAL")]);
        assert!(check_origin(&h, true, &[]).is_ok(), "443 on both sides");
        let h = headers(&[("host", "[::1]:8080"), ("origin", "http://[::1]:8080")]);
        assert!(check_origin(&h, false, &[]).is_ok());
    }

    #[test]
    fn no_origin_is_a_radio_or_a_tool_and_passes() {
        assert!(check_origin(&headers(&[("host", "x:1")]), false, &[]).is_ok());
    }

    #[test]
    fn another_site_a_null_origin_and_garbage_are_refused_and_counted() {
        let before = ORIGIN_REFUSED.load(Ordering::Relaxed);
        for origin in [
            "http://evil.example:8080",
            "http://127.0.0.1:8081",
            "null",
            "file://",
            "http://127.0.0.1:8080/path",
            "http://user@127.0.0.1:8080",
        ] {
            let mut h = headers(&[("host", "127.0.0.1:8080")]);
            h.insert(ORIGIN, HeaderValue::from_static(origin));
            let r = check_origin(&h, false, &[]);
            assert_eq!(r.map_err(|e| e.0), Err(origin.to_owned()));
        }
        let h = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert!(check_origin(&h, false, &[]).is_err(), "two origins");
        assert!(ORIGIN_REFUSED.load(Ordering::Relaxed) >= before + 7);
    }

    #[test]
    fn a_listed_origin_passes() {
        let allowed = [Origin::parse("https://Dispatch.example/").expect("parses")];
        let h = headers(&[
            ("host", "pi.local:8443"),
            ("origin", "https://dispatch.example"),
        ]);
        assert!(check_origin(&h, true, &allowed).is_ok());
        let h = headers(&[
            ("host", "pi.local:8443"),
            ("origin", "http://dispatch.example"),
        ]);
        assert!(
            check_origin(&h, true, &allowed).is_err(),
            "the scheme counts"
        );
    }

    #[test]
    fn origins_parse_as_browsers_send_them() {
        let o = Origin::parse("https://pi.local").expect("parses");
        assert_eq!(o.to_string(), "https://pi.local:443");
        assert_eq!(
            Origin::parse("http://[::1]:80").expect("v6").to_string(),
            "http://[::1]:80"
        );
        for bad in [
            "pi.local",
            "ftp://pi.local",
            "http://",
            "http://a:99999",
            "http://a b",
        ] {
            assert!(Origin::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_page_is_served_with_its_policy_and_revalidated() {
        let h = headers(&[("host", "127.0.0.1:8080")]);
        let get = |path, h: &HeaderMap| respond(&Method::GET, path, h).expect("a page path");
        let r = get("/", &h);
        assert_eq!(r.status(), StatusCode::OK);
        let csp = r.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii");
        assert!(csp.contains("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;"));
        assert!(csp.contains("script-src 'self';"));
        assert!(!csp.contains("unsafe"));
        assert_eq!(r.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
        let etag = r.headers()[ETAG].clone();
        let mut again = h.clone();
        again.insert(IF_NONE_MATCH, etag);
        assert_eq!(get("/", &again).status(), StatusCode::NOT_MODIFIED);
        let post = respond(&Method::POST, "/app.js", &h).expect("a page path");
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(respond(&Method::GET, "/nope", &h).is_none());
        assert!(respond(&Method::GET, "/gateway", &h).is_none());
    }

    proptest::proptest! {
        /// Any `Origin` and `Host` a client sends: an answer, never a panic; an origin
        /// naming the request's own host and port always passes.
        #[test]
        fn any_origin_and_host_get_an_answer(origin in "\\PC{0,40}", host in "[a-z0-9.:\\[\\]-]{0,30}", port in 1u16..) {
            let mut h = HeaderMap::new();
            if let (Ok(o), Ok(v)) = (HeaderValue::from_str(&origin), HeaderValue::from_str(&host)) {
                h.insert(ORIGIN, o);
                h.insert(HOST, v);
                let _ = check_origin(&h, false, &[]);
            }
            if let Some((name, _)) = split_host_port(&host, 80) {
                let mut h = HeaderMap::new();
                let own = format!("{name}:{port}");
                if let (Ok(o), Ok(v)) = (HeaderValue::from_str(&format!("http://{own}")), HeaderValue::from_str(&own)) {
                    h.insert(ORIGIN, o);
                    h.insert(HOST, v);
                    proptest::prop_assert!(check_origin(&h, false, &[]).is_ok(), "{own}");
                }
            }
        }
    }

    #[test]
    fn a_host_that_would_add_a_directive_is_left_out_of_the_policy() {
        let h = HeaderValue::from_static("x; script-src *");
        let csp = content_security_policy(Some(&h));
        assert!(csp.contains("connect-src 'self';"), "{csp}");
    }

    #[test]
    fn every_module_the_page_imports_is_served() {
        for a in ASSETS.iter().filter(|a| a.content_type == JS) {
            let text = std::str::from_utf8(a.body).expect("utf-8");
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let from = line
                    .rsplit_once("from \"")
                    .and_then(|(_, p)| p.split_once('"'))
                    .map(|(p, _)| p.trim_start_matches('.'))
                    .expect("import ... from \"./x.js\"");
                assert!(ASSETS.iter().any(|b| b.path == from), "{}: {from}", a.path);
            }
        }
    }
}
