//! The web UI: the chat page (`GET /`), the admin page (`GET /admin`) and their static
//! assets (`GET /ui/{file}`), all embedded in the binary from `crates/server/ui/` with
//! `include_str!` (no build step, no third-party code). Every answer carries a strict
//! Content-Security-Policy (scripts, styles and fetches from this origin only, nothing
//! inline) and an `ETag` (a hash of the content): pages are revalidated on each load
//! (`no-cache`), assets for an hour, and `If-None-Match` gets 304. `--no-ui` leaves these
//! routes out, so they answer 404 like any unknown path.

use std::sync::{Arc, OnceLock};

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// The policy on every UI answer: same origin for everything, no inline code, no frames.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const PAGES: [Asset; 2] = [
    Asset {
        name: "index.html",
        mime: HTML,
        body: include_str!("../../ui/index.html"),
    },
    Asset {
        name: "admin.html",
        mime: HTML,
        body: include_str!("../../ui/admin.html"),
    },
];

const ASSETS: [Asset; 8] = [
    Asset {
        name: "style.css",
        mime: CSS,
        body: include_str!("../../ui/style.css"),
    },
    Asset {
        name: "markdown.js",
        mime: JS,
        body: include_str!("../../ui/markdown.js"),
    },
    Asset {
        name: "api.js",
        mime: JS,
        body: include_str!("../../ui/api.js"),
    },
    Asset {
        name: "store.js",
        mime: JS,
        body: include_str!("../../ui/store.js"),
    },
    Asset {
        name: "chat.js",
        mime: JS,
        body: include_str!("../../ui/chat.js"),
    },
    Asset {
        name: "render.js",
        mime: JS,
        body: include_str!("../../ui/render.js"),
    },
    Asset {
        name: "admin.js",
        mime: JS,
        body: include_str!("../../ui/admin.js"),
    },
    Asset {
        name: "favicon.svg",
        mime: "image/svg+xml",
        body: include_str!("../../ui/favicon.svg"),
    },
];

/// The UI's routes, to merge into the server's router.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { serve(&PAGES[0], &h, "no-cache") }),
        )
        .route(
            "/admin",
            get(|h: HeaderMap| async move { serve(&PAGES[1], &h, "no-cache") }),
        )
        .route("/ui/{file}", get(asset))
}

async fn asset(Path(file): Path<String>, headers: HeaderMap, uri: Uri) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => serve(a, &headers, "public, max-age=3600, must-revalidate"),
        None => ApiError::RouteNotFound(format!("{} {}", Method::GET, uri.path())).into_response(),
    }
}

/// The ETag of each embedded file, computed once (FNV-1a, 64 bits, of the content).
fn etag(asset: &Asset) -> &'static str {
    static TAGS: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        PAGES
            .iter()
            .chain(ASSETS.iter())
            .map(|a| (a.name, format!("\"{:016x}\"", fnv1a(a.body.as_bytes()))))
            .collect()
    });
    tags.iter()
        .find(|(n, _)| *n == asset.name)
        .map_or("\"0\"", |(_, t)| t.as_str())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn serve(asset: &Asset, request: &HeaderMap, cache: &'static str) -> Response {
    let tag = etag(asset);
    let fresh = request
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(CONTENT_TYPE, asset.mime)], asset.body).into_response()
    };
    let h = response.headers_mut();
    h.insert(ETAG, HeaderValue::from_static(tag));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_its_own_tag() {
        let tags: std::collections::HashSet<_> =
            PAGES.iter().chain(ASSETS.iter()).map(etag).collect();
        assert_eq!(tags.len(), PAGES.len() + ASSETS.len());
    }

    #[test]
    fn fnv1a_matches_the_reference_vector() {
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
