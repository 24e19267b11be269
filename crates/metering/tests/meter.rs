//! The meter against real databases (SQLite and PostgreSQL, see `dbs.rs`): keys, exact
//! costs, budgets under concurrency, parallel and per-minute limits, period resets, usage.

mod dbs;

use std::sync::Arc;

use dbs::{on_each_db, open};
use kaiyuan_metering::{
    now_ms, Admission, AuthKey, KeyPatch, KeySpec, Meter, Refusal, Settlement, Ticket, UsageFilter,
    LEASE_MS,
};
use serde_json::json;

const T0: i64 = 1_800_000_000_000;

fn spec(body: serde_json::Value) -> KeySpec {
    KeySpec::from_json(&body).unwrap()
}

async fn key(meter: &Meter, body: serde_json::Value) -> (String, AuthKey) {
    let issued = meter.create_key(&spec(body), T0).await.unwrap();
    let auth = meter.authenticate(&issued.key, T0).await.unwrap().unwrap();
    (issued.key, auth)
}

async fn admit(
    meter: &Meter,
    key: &AuthKey,
    id: &str,
    prompt: u64,
    max: u64,
    now: i64,
) -> Result<Ticket, Refusal> {
    meter
        .admit(
            Admission {
                key,
                model: "small",
                request_id: id,
                prompt_tokens: prompt,
                max_completion_tokens: max,
            },
            now,
        )
        .await
}

fn used(prompt: u64, cached: u64, completion: u64) -> Settlement {
    Settlement {
        prompt_tokens: prompt,
        cached_tokens: cached,
        completion_tokens: completion,
        reasoning_tokens: 0,
        status: "ok".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_are_issued_listed_changed_and_revoked() {
    on_each_db("keys", |url| async move {
        let meter = open(&url).await;
        let issued = meter
            .create_key(
                &spec(json!({"name": "team-a", "models": ["small"], "rpm": 5})),
                T0,
            )
            .await
            .unwrap();
        assert!(issued.key.starts_with("sk-kaiyuan-"));
        assert!(issued.info.key_hint.starts_with("sk-kaiyuan-"));
        assert!(!issued.info.key_hint.contains(&issued.key[15..]));
        let id = issued.info.id.clone();
        let auth = meter.authenticate(&issued.key, T0).await.unwrap().unwrap();
        assert_eq!(auth.id, id);
        assert!(auth.allows("small") && !auth.allows("big"));
        assert!(meter
            .authenticate("sk-kaiyuan-nope", T0)
            .await
            .unwrap()
            .is_none());
        // The key itself is not stored anywhere a listing shows it.
        let listed = serde_json::to_string(&meter.list_keys().await.unwrap()).unwrap();
        assert!(!listed.contains(&issued.key), "{listed}");

        let patch = KeyPatch::from_json(&json!({"rpm": null, "tpm": 100, "models": null})).unwrap();
        let info = meter.patch_key(&id, &patch).await.unwrap().unwrap();
        assert_eq!(
            (info.rpm, info.tpm, info.models.clone()),
            (None, Some(100), None)
        );
        assert_eq!(info.name, "team-a");
        assert!(meter
            .patch_key("key_missing", &patch)
            .await
            .unwrap()
            .is_none());

        let revoked = meter.revoke_key(&id, T0 + 1).await.unwrap().unwrap();
        assert_eq!(revoked.revoked_at, Some((T0 + 1) / 1000));
        assert!(meter
            .authenticate(&issued.key, T0 + 2)
            .await
            .unwrap()
            .is_none());

        // Expiry.
        let exp = meter
            .create_key(
                &spec(json!({"name": "short", "expires_at": T0 / 1000 + 60})),
                T0,
            )
            .await
            .unwrap();
        assert!(meter
            .authenticate(&exp.key, T0 + 59_000)
            .await
            .unwrap()
            .is_some());
        assert!(meter
            .authenticate(&exp.key, T0 + 60_000)
            .await
            .unwrap()
            .is_none());
        // Names that look like SQL are just names.
        let sql = "x'); DROP TABLE api_keys; --";
        let k = meter
            .create_key(&spec(json!({"name": sql})), T0)
            .await
            .unwrap();
        assert_eq!(meter.get_key(&k.info.id).await.unwrap().unwrap().name, sql);
        assert_eq!(meter.list_keys().await.unwrap().len(), 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_settled_request_has_one_record_at_the_exact_cost() {
    on_each_db("settle", |url| async move {
        let meter = open(&url).await;
        let (_, k) = key(&meter, json!({"name": "a", "budget_usd": 1.0})).await;
        let t = admit(&meter, &k, "req-1", 1000, 200, T0).await.unwrap();
        // Worst case: every prompt token a miss, every allowed token generated.
        assert_eq!(t.reserved_nano(), 1000 * 270 + 200 * 1100);
        let info = meter.get_key(&k.id).await.unwrap().unwrap();
        assert_eq!((info.reserved_nano, info.in_flight), (490_000, 1));
        t.settle(used(1000, 640, 37)).await.unwrap();
        let info = meter.get_key(&k.id).await.unwrap().unwrap();
        let cost = 640 * 70 + 360 * 270 + 37 * 1100;
        assert_eq!(
            (info.spent_nano, info.reserved_nano, info.in_flight),
            (cost, 0, 0)
        );
        let records = meter.usage(&UsageFilter::default()).await.unwrap();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(
            (
                r.id.as_str(),
                r.key_id.as_str(),
                r.model.as_str(),
                r.status.as_str()
            ),
            ("req-1", k.id.as_str(), "small", "ok")
        );
        assert_eq!(
            (
                r.prompt_tokens,
                r.cached_tokens,
                r.completion_tokens,
                r.cost_nano
            ),
            (1000, 640, 37, cost)
        );
        // A dropped ticket releases its reservation and records what it used: nothing.
        drop(admit(&meter, &k, "req-2", 10, 10, T0).await.unwrap());
        meter.flush().await;
        let info = meter.get_key(&k.id).await.unwrap().unwrap();
        assert_eq!(
            (info.spent_nano, info.reserved_nano, info.in_flight),
            (cost, 0, 0)
        );
        let filter = UsageFilter {
            key_id: Some(k.id.clone()),
            ..UsageFilter::default()
        };
        assert_eq!(meter.usage(&filter).await.unwrap().len(), 2);
        let by_model = meter.summary("model", &filter).await.unwrap().unwrap();
        assert_eq!(by_model.len(), 1);
        assert_eq!((by_model[0].requests, by_model[0].cost_nano), (2, cost));
        let by_day = meter.summary("day", &filter).await.unwrap().unwrap();
        assert_eq!(by_day[0].group, "2027-01-15");
        assert!(meter.summary("week", &filter).await.unwrap().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn fifty_concurrent_reservations_against_a_budget_for_five_admit_five() {
    on_each_db("concurrent_budget", |url| async move {
        // Two meters on one database: two replicas sharing the budget.
        let a = open(&url).await;
        let b = open(&url).await;
        let per_request = 100 * 270 + 100 * 1100;
        let budget_usd = (5 * per_request) as f64 / 1e9;
        let (_, k) = key(&a, json!({"name": "five", "budget_usd": budget_usd})).await;
        let k = Arc::new(k);
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let meter = if i % 2 == 0 { a.clone() } else { b.clone() };
                let k = Arc::clone(&k);
                tokio::spawn(async move {
                    admit(&meter, &k, &format!("req-{i}"), 100, 100, now_ms()).await
                })
            })
            .collect();
        let mut admitted = Vec::new();
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(ticket) => admitted.push(ticket),
                Err(Refusal::InsufficientQuota { .. }) => refused += 1,
                Err(e) => panic!("unexpected refusal: {e}"),
            }
        }
        assert_eq!((admitted.len(), refused), (5, 45));
        // Each uses all it may: the budget is spent exactly, never more.
        for t in admitted {
            t.settle(used(100, 0, 100)).await.unwrap();
        }
        let info = a.get_key(&k.id).await.unwrap().unwrap();
        assert_eq!((info.spent_nano, info.reserved_nano), (5 * per_request, 0));
        assert!(matches!(
            admit(&b, &k, "late", 1, 1, now_ms()).await,
            Err(Refusal::InsufficientQuota { .. })
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_and_per_minute_limits() {
    on_each_db("limits", |url| async move {
        let meter = open(&url).await;
        let (_, k) = key(&meter, json!({"name": "p", "max_parallel": 2})).await;
        let t1 = admit(&meter, &k, "p1", 1, 1, T0).await.unwrap();
        let _t2 = admit(&meter, &k, "p2", 1, 1, T0).await.unwrap();
        match admit(&meter, &k, "p3", 1, 1, T0).await {
            Err(Refusal::RateLimited { what, limit: 2, .. }) => {
                assert_eq!(what, "parallel requests")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        t1.settle(used(1, 0, 1)).await.unwrap();
        admit(&meter, &k, "p4", 1, 1, T0).await.unwrap();

        let (_, k) = key(&meter, json!({"name": "r", "rpm": 3})).await;
        let start = T0 + 5_000; // 5 s into a minute
        let mut held = Vec::new();
        for i in 0..3 {
            let t = admit(&meter, &k, &format!("r{i}"), 1, 1, start)
                .await
                .unwrap();
            assert_eq!(t.rate.remaining_requests, Some(2 - i));
            assert_eq!(t.rate.limit_requests, Some(3));
            held.push(t);
        }
        match admit(&meter, &k, "r3", 1, 1, start).await {
            Err(Refusal::RateLimited {
                what,
                limit: 3,
                retry_after_s,
                rate,
            }) => {
                assert_eq!(what, "requests per minute");
                assert_eq!(retry_after_s, 55);
                assert_eq!(rate.remaining_requests, Some(0));
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        // A refused request reserved nothing.
        let info = meter.get_key(&k.id).await.unwrap().unwrap();
        assert_eq!(info.in_flight, 3);
        admit(&meter, &k, "r4", 1, 1, start + 60_000).await.unwrap();

        let (_, k) = key(&meter, json!({"name": "t", "tpm": 100})).await;
        let t = admit(&meter, &k, "t1", 60, 100, start).await.unwrap();
        assert_eq!(t.rate.remaining_tokens, Some(40));
        t.settle(used(60, 0, 50)).await.unwrap();
        match admit(&meter, &k, "t2", 10, 10, start).await {
            Err(Refusal::RateLimited { what, .. }) => assert_eq!(what, "tokens per minute"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budget_periods_reset_on_schedule_and_models_are_enforced() {
    on_each_db("periods", |url| async move {
        let meter = open(&url).await;
        let per_request = 10 * 270 + 10 * 1100;
        let budget = per_request as f64 / 1e9;
        let (_, k) = key(
            &meter,
            json!({"name": "d", "budget_usd": budget, "budget_period": "1d", "models": ["small"]}),
        )
        .await;
        admit(&meter, &k, "d1", 10, 10, T0)
            .await
            .unwrap()
            .settle(used(10, 0, 10))
            .await
            .unwrap();
        assert!(matches!(
            admit(&meter, &k, "d2", 10, 10, T0 + 86_399_999).await,
            Err(Refusal::InsufficientQuota { .. })
        ));
        // Three days later: a new period began (on the day's schedule, not at the request).
        let later = T0 + 3 * 86_400_000 + 5;
        admit(&meter, &k, "d3", 10, 10, later)
            .await
            .unwrap()
            .settle(used(10, 0, 10))
            .await
            .unwrap();
        let info = meter.get_key(&k.id).await.unwrap().unwrap();
        assert_eq!(info.period_start, (T0 + 3 * 86_400_000) / 1000);
        assert_eq!(info.spent_nano, per_request);
        let big = meter
            .admit(
                Admission {
                    key: &k,
                    model: "big",
                    request_id: "b",
                    prompt_tokens: 1,
                    max_completion_tokens: 1,
                },
                later,
            )
            .await;
        assert!(matches!(big, Err(Refusal::ModelNotAllowed(m)) if m == "big"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reservations_of_a_dead_server_are_released_when_their_lease_ends() {
    on_each_db("leases", |url| async move {
        let meter = open(&url).await;
        let (_, k) = key(
            &meter,
            json!({"name": "l", "budget_usd": 1.0, "max_parallel": 1}),
        )
        .await;
        // A server that dies never settles: its ticket is neither settled nor dropped.
        std::mem::forget(admit(&meter, &k, "lost", 100, 100, T0).await.unwrap());
        assert!(matches!(
            admit(&meter, &k, "blocked", 1, 1, T0 + 1).await,
            Err(Refusal::RateLimited { .. })
        ));
        assert_eq!(meter.release_expired(T0 + LEASE_MS - 1).await.unwrap(), 0);
        assert_eq!(meter.release_expired(T0 + LEASE_MS + 1).await.unwrap(), 1);
        let info = meter.get_key(&k.id).await.unwrap().unwrap();
        assert_eq!((info.reserved_nano, info.in_flight), (0, 0));
        // A late settlement of a released request records it but releases nothing twice.
        let t = admit(&meter, &k, "next", 1, 1, T0 + LEASE_MS + 2)
            .await
            .unwrap();
        t.settle(used(1, 0, 1)).await.unwrap();
        let info = meter.get_key(&k.id).await.unwrap().unwrap();
        assert_eq!(
            (info.reserved_nano, info.in_flight, info.spent_nano),
            (0, 0, 270 + 1100)
        );
        // The same request id cannot be admitted twice while it holds a reservation.
        let _held = admit(&meter, &k, "dup", 1, 1, T0 + LEASE_MS + 3)
            .await
            .unwrap();
        let (_, k2) = key(&meter, json!({"name": "other"})).await;
        assert!(matches!(
            admit(&meter, &k2, "dup", 1, 1, T0 + LEASE_MS + 3).await,
            Err(Refusal::Meter(_))
        ));
    })
    .await;
}
