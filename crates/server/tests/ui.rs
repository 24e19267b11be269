//! The web UI's routes in process: pages and assets answer 200 with their content types,
//! the Content-Security-Policy and caching headers; `If-None-Match` gets 304; the pages
//! are open even when the API needs a key (the key is entered in the page); an unknown
//! asset is 404; with the UI off (`--no-ui`) every UI path is 404.

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use kaiyuan_server::{Server, ServerConfig};
use tower::ServiceExt;

fn server(ui: bool) -> Server {
    Server::new(ServerConfig {
        api_keys: vec!["secret-key".into()],
        ui,
        ..ServerConfig::default()
    })
}

async fn get(server: &Server, path: &str, etag: Option<&str>) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::get(path);
    if let Some(tag) = etag {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    let response = server
        .router()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

const PATHS: [(&str, &str); 10] = [
    ("/", "text/html"),
    ("/admin", "text/html"),
    ("/ui/style.css", "text/css"),
    ("/ui/markdown.js", "text/javascript"),
    ("/ui/api.js", "text/javascript"),
    ("/ui/store.js", "text/javascript"),
    ("/ui/render.js", "text/javascript"),
    ("/ui/chat.js", "text/javascript"),
    ("/ui/admin.js", "text/javascript"),
    ("/ui/favicon.svg", "image/svg+xml"),
];

#[tokio::test]
async fn pages_and_assets_are_served_with_csp_and_cache_headers() {
    let server = server(true);
    for (path, mime) in PATHS {
        let (status, headers, body) = get(&server, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let h = |name: header::HeaderName| {
            headers
                .get(&name)
                .unwrap_or_else(|| panic!("{path}: no {name}"))
                .to_str()
                .unwrap()
                .to_string()
        };
        assert!(h(header::CONTENT_TYPE).starts_with(mime), "{path}");
        let csp = h(header::CONTENT_SECURITY_POLICY);
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(csp.contains("style-src 'self';"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("http"),
            "{csp}"
        );
        assert_eq!(h(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        let tag = h(header::ETAG);
        assert!(
            tag.starts_with('"') && tag.ends_with('"') && tag.len() == 18,
            "{tag}"
        );
        let cache = h(header::CACHE_CONTROL);
        if mime == "text/html" {
            assert_eq!(cache, "no-cache", "{path}");
        } else {
            assert!(cache.contains("max-age="), "{path}: {cache}");
        }
        assert!(!body.trim().is_empty(), "{path}");
        // Revalidation: the same tag gets 304 with no body, another tag the content.
        let (status, again, body) = get(&server, path, Some(&tag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.get(header::ETAG).unwrap().to_str().unwrap(), tag);
        assert!(body.is_empty());
        let (status, _, _) = get(&server, path, Some("\"other\"")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn pages_load_only_same_origin_scripts_and_styles() {
    let server = server(true);
    for page in ["/", "/admin"] {
        let (_, _, html) = get(&server, page, None).await;
        // No inline script or style: every <script> has a src under /ui/, no style attributes.
        for chunk in html.split("<script").skip(1) {
            assert!(
                chunk.trim_start().starts_with("type=\"module\" src=\"/ui/"),
                "{page}: {chunk}"
            );
        }
        assert!(
            !html.contains("<style") && !html.contains("style="),
            "{page}"
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{page}"
        );
    }
}

#[tokio::test]
async fn unknown_assets_are_404_and_the_api_still_needs_its_key() {
    let server = server(true);
    let (status, _, body) = get(&server, "/ui/nope.js", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("\"error\""), "{body}");
    let (status, _, _) = get(&server, "/ui/../Cargo.toml", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(&server, "/v1/models", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn no_ui_turns_every_ui_path_into_404() {
    let server = server(false);
    for (path, _) in PATHS {
        let (status, headers, _) = get(&server, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(headers.get(header::ETAG).is_none(), "{path}");
    }
    let (status, _, _) = get(&server, "/health", None).await;
    assert_ne!(status, StatusCode::NOT_FOUND);
}
