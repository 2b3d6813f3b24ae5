//! Helpers for tests that need a real PostgreSQL server. Not part of the stable surface.

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The server tests use: `POSTDOC_TEST_POSTGRES`, else the local one on 127.0.0.1:5432.
pub fn server_url() -> String {
    std::env::var("POSTDOC_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates a fresh, empty database on the test server and returns its URL. Without a server the
/// test is skipped with a message, except under CI (`CI` set), where PostgreSQL is required and
/// its absence fails the test rather than hiding it.
pub async fn fresh_database(test: &str) -> Option<String> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    sqlx::any::install_default_drivers();
    let server = server_url();
    let admin = AnyPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(5)).connect(&server).await;
    let admin = match admin {
        Ok(pool) => pool,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL is required under CI but {server} cannot be reached: {e}")
        }
        Err(e) => {
            eprintln!("skipping {test}: no PostgreSQL at {server} ({e}); set POSTDOC_TEST_POSTGRES");
            return None;
        }
    };
    drop_abandoned(&admin).await;
    let name = format!(
        "postdoc_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        test.chars().filter(|c| c.is_ascii_alphanumeric()).take(20).collect::<String>().to_lowercase()
    );
    admin
        .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
        .await
        .expect("drop old test database");
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create test database");
    admin.close().await;
    let base = server.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(server.clone());
    Some(format!("{base}/{name}"))
}

/// Drops test databases whose creating process is gone (a test that panicked cannot clean up).
async fn drop_abandoned(admin: &sqlx::AnyPool) {
    use sqlx::Row;
    let Ok(rows) =
        sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE 'postdoc_test_%'").fetch_all(admin).await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get::<String, _>(0) else {
            continue;
        };
        let pid = name.trim_start_matches("postdoc_test_").split('_').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).await;
        }
    }
}
