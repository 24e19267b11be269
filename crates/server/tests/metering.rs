//! The admin API and a key holder's routes in process, on a SQLite meter and without a
//! model (nothing here generates): which key reaches which route, bad bodies refused by
//! field with nothing stored, unknown ids, revocation. Generation with metering (costs,
//! budgets, limits) is in the end-to-end suite (`tests/e2e/test_metering*.py`).

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use kaiyuan_metering::{Meter, PriceTable};
use kaiyuan_server::{MeteringConfig, Server, ServerConfig};
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "admin-in-process-0123456789";
const STATIC: &str = "static-key-0123456789";

async fn server(test: &str) -> (Server, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "kaiyuan-server-meter-{test}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let meter = Meter::open(
        &format!("sqlite://{}/m.db", dir.display()),
        PriceTable::default(),
    )
    .await
    .expect("meter");
    let server = Server::new(ServerConfig {
        model_names: vec!["m".into()],
        api_keys: vec![STATIC.into()],
        metering: Some(MeteringConfig {
            meter,
            admin_key: ADMIN.into(),
        }),
        ..ServerConfig::default()
    });
    (server, dir)
}

async fn call(
    server: &Server,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(k) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let response = server.router().oneshot(req).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

#[tokio::test]
async fn the_admin_api_answers_the_admin_key_only() {
    let (s, dir) = server("admin").await;
    let (status, body) = call(
        &s,
        Method::POST,
        "/admin/keys",
        Some(ADMIN),
        Some(json!({"name": "team", "rpm": 5})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["key"].as_str().unwrap().to_string();
    let id = body["id"].as_str().unwrap().to_string();

    assert_eq!(
        call(&s, Method::GET, "/admin/keys", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            &s,
            Method::GET,
            "/admin/keys",
            Some("sk-kaiyuan-nope"),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    for other in [STATIC, key.as_str()] {
        let (status, body) = call(&s, Method::GET, "/admin/keys", Some(other), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"]["code"], "admin_key_required");
    }
    let (status, body) = call(&s, Method::GET, "/admin/keys", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert!(!body.to_string().contains(&key), "a listing shows the key");

    for (bad, param) in [
        (json!({"name": "x", "budget_usd": -1}), "budget_usd"),
        (json!({"name": "x".repeat(1000)}), "name"),
        (json!({"name": "x", "max_parallel": 0}), "max_parallel"),
        (json!({"name": "x", "tpm": "1"}), "tpm"),
        (json!(["name"]), ""),
    ] {
        let (status, body) = call(
            &s,
            Method::POST,
            "/admin/keys",
            Some(ADMIN),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        if !param.is_empty() {
            assert_eq!(body["error"]["param"], param, "{bad}: {body}");
        }
    }
    let (_, body) = call(&s, Method::GET, "/admin/keys", Some(ADMIN), None).await;
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        1,
        "a refused body stored a key"
    );

    let (status, body) = call(
        &s,
        Method::PATCH,
        &format!("/admin/keys/{id}"),
        Some(ADMIN),
        Some(json!({"rpm": null, "budget_usd": 2.5})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["rpm"].clone(), body["budget_usd"].clone()),
        (Value::Null, json!(2.5))
    );
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = call(&s, method, "/admin/keys/key_unknown", Some(ADMIN), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (status, body) = call(
        &s,
        Method::GET,
        "/admin/usage/summary?group_by=week",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["param"].clone()),
        (StatusCode::BAD_REQUEST, json!("group_by"))
    );
    let (status, _) = call(&s, Method::GET, "/admin/usage?limit=abc", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_key_holder_reads_its_balance_until_revoked() {
    let (s, dir) = server("holder").await;
    let (_, body) = call(
        &s,
        Method::POST,
        "/admin/keys",
        Some(ADMIN),
        Some(json!({"name": "t", "budget_usd": 1.25})),
    )
    .await;
    let key = body["key"].as_str().unwrap().to_string();
    let id = body["id"].as_str().unwrap().to_string();

    let (status, body) = call(&s, Method::GET, "/user/balance", Some(&key), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["is_available"], true);
    assert_eq!(body["balance_infos"][0]["currency"], "USD");
    assert_eq!(body["balance_infos"][0]["total_balance"], "1.250000");
    let (status, body) = call(&s, Method::GET, "/v1/usage", Some(&key), None).await;
    assert_eq!(
        (status, body["key"]["id"].clone()),
        (StatusCode::OK, json!(id))
    );
    // Static and admin keys pass the API routes unmetered, but have no usage of their own.
    assert_eq!(
        call(&s, Method::GET, "/v1/usage", Some(STATIC), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&s, Method::GET, "/v1/models", Some(STATIC), None)
            .await
            .0,
        StatusCode::OK
    );
    // With metering on, an API route needs a key.
    assert_eq!(
        call(&s, Method::GET, "/v1/models", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&s, Method::GET, "/health", None, None).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    assert_eq!(
        call(
            &s,
            Method::DELETE,
            &format!("/admin/keys/{id}"),
            Some(ADMIN),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, body) = call(&s, Method::GET, "/user/balance", Some(&key), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let _ = std::fs::remove_dir_all(dir);
}
