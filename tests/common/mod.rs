//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The benchmark tables: `$NASPERF_BENCHDATA`, or `../shared/benchdata`
/// beside the repository.
pub fn benchdata() -> PathBuf {
    std::env::var_os(nasperf::bench::BENCHDATA_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/benchdata"))
}

/// The PostgreSQL server tests create their databases on:
/// `$NASPERF_TEST_POSTGRES`, or the machine's server with trust auth.
pub fn postgres_admin_url() -> String {
    std::env::var("NASPERF_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh database on the real PostgreSQL server, named by a UUID, for
/// one test; [`TestDatabase::drop`] removes it.
pub struct TestDatabase {
    pub name: String,
    /// The database's URL, on the admin URL's server and user.
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        use sqlx::Connection;
        let admin = postgres_admin_url();
        let name = format!("nasperf_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL is running");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let base = admin
            .rsplit_once('/')
            .expect("the admin URL names a database")
            .0;
        TestDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Best effort: a leftover database costs space, not correctness.
    pub async fn drop(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}
