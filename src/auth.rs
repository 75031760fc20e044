//! Bearer tokens with three roles, checked for every call before it
//! reaches a service.
//!
//! - `predict`: every read (predictions, ranking, objectives, studies,
//!   evaluations, model versions);
//! - `record`: also reporting evaluations and creating studies;
//! - `admin`: also retraining, pinning and unpinning models, excluding
//!   evaluations.
//!
//! A role includes the ones before it. Health and reflection stay open for
//! probes. Tokens come from a file (one `role token` per line, `#`
//! comments; re-read when it changes, so tokens rotate without a restart)
//! and from `NASPERF_TOKENS` (`role:token,role:token`). They are never
//! logged; only SHA-256 digests are kept, compared in constant time.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, LazyLock},
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::watch;
use tonic::codegen::http;

use crate::middleware::{BoxFuture, answer_now};

/// What a token may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Predict,
    Record,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "predict" => Some(Role::Predict),
            "record" => Some(Role::Record),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Predict => "predict",
            Role::Record => "record",
            Role::Admin => "admin",
        }
    }
}

/// What a call needs: nothing (health, reflection) or a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Open,
    Needs(Role),
}

/// The role each RPC needs. Every method of the API is listed (a test
/// checks it against the compiled descriptors); anything else needs admin.
pub fn access(path: &str) -> Access {
    static TABLE: LazyLock<HashMap<&'static str, Access>> = LazyLock::new(|| {
        use Access::{Needs, Open};
        use Role::{Admin, Predict, Record};
        HashMap::from([
            ("/nasperf.v1.Predictor/Predict", Needs(Predict)),
            ("/nasperf.v1.Predictor/PredictStream", Needs(Predict)),
            ("/nasperf.v1.Predictor/ListObjectives", Needs(Predict)),
            ("/nasperf.v1.Predictor/ParetoRank", Needs(Predict)),
            ("/nasperf.v1.Store/ListStudies", Needs(Predict)),
            ("/nasperf.v1.Store/GetStudy", Needs(Predict)),
            ("/nasperf.v1.Store/ListEvaluations", Needs(Predict)),
            ("/nasperf.v1.Store/CreateStudy", Needs(Record)),
            ("/nasperf.v1.Store/RecordEvaluations", Needs(Record)),
            ("/nasperf.v1.Store/RecordEvaluationBatch", Needs(Record)),
            ("/nasperf.v1.Store/ExcludeEvaluations", Needs(Admin)),
            ("/nasperf.v1.Models/ListModels", Needs(Predict)),
            ("/nasperf.v1.Models/Retrain", Needs(Admin)),
            ("/nasperf.v1.Models/ActivateModel", Needs(Admin)),
            ("/nasperf.v1.Models/UnpinModel", Needs(Admin)),
            ("/grpc.health.v1.Health/Check", Open),
            ("/grpc.health.v1.Health/Watch", Open),
            (
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                Open,
            ),
        ])
    });
    TABLE
        .get(path)
        .copied()
        .unwrap_or(Access::Needs(Role::Admin))
}

/// A set of tokens, as digests.
#[derive(Debug, Default, Clone)]
pub struct Tokens {
    digests: Vec<([u8; 32], Role)>,
}

/// A token line that could not be read; names the line, never the token.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokensError {
    #[error("{source_name} line {line}: expected `ROLE TOKEN` with ROLE predict, record or admin")]
    Syntax { source_name: String, line: usize },
    #[error("{source_name} line {line}: a token must be at least 16 characters")]
    Short { source_name: String, line: usize },
    #[error("reading {path}: {message}")]
    Read { path: PathBuf, message: String },
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    fn add(&mut self, role: Role, token: &str) {
        self.digests.push((digest(token), role));
    }

    /// Parses `role token` lines (blank lines and `#` comments skipped).
    pub fn parse_lines(text: &str, source_name: &str) -> Result<Tokens, TokensError> {
        let mut out = Tokens::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(role), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(TokensError::Syntax {
                    source_name: source_name.to_owned(),
                    line: i + 1,
                });
            };
            out.push_checked(role, token, source_name, i + 1)?;
        }
        Ok(out)
    }

    /// Parses `role:token,role:token` (the environment's form).
    pub fn parse_list(text: &str, source_name: &str) -> Result<Tokens, TokensError> {
        let mut out = Tokens::default();
        for (i, item) in text.split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            let Some((role, token)) = item.split_once(':') else {
                return Err(TokensError::Syntax {
                    source_name: source_name.to_owned(),
                    line: i + 1,
                });
            };
            out.push_checked(role.trim(), token.trim(), source_name, i + 1)?;
        }
        Ok(out)
    }

    fn push_checked(
        &mut self,
        role: &str,
        token: &str,
        source_name: &str,
        line: usize,
    ) -> Result<(), TokensError> {
        let role = Role::parse(role).ok_or_else(|| TokensError::Syntax {
            source_name: source_name.to_owned(),
            line,
        })?;
        if token.chars().count() < 16 {
            return Err(TokensError::Short {
                source_name: source_name.to_owned(),
                line,
            });
        }
        self.add(role, token);
        Ok(())
    }

    fn extend(&mut self, other: Tokens) {
        self.digests.extend(other.digests);
    }

    /// The role of `token`, if it is one of ours. Every stored digest is
    /// compared, in constant time, whatever matches.
    pub fn role_of(&self, token: &str) -> Option<Role> {
        let presented = digest(token);
        let mut found: Option<Role> = None;
        for (d, role) in &self.digests {
            if bool::from(d.ct_eq(&presented)) {
                found = Some(found.map_or(*role, |r| r.max(*role)));
            }
        }
        found
    }
}

/// Where tokens come from.
#[derive(Debug, Clone, Default)]
pub struct TokenSources {
    pub file: Option<PathBuf>,
    /// `role:token,...`, e.g. from a Kubernetes Secret as an environment
    /// variable.
    pub inline: Option<String>,
}

impl TokenSources {
    pub fn is_configured(&self) -> bool {
        self.file.is_some() || self.inline.as_deref().is_some_and(|s| !s.trim().is_empty())
    }

    /// Reads every source.
    pub fn load(&self) -> Result<Tokens, TokensError> {
        let mut tokens = Tokens::default();
        if let Some(inline) = &self.inline {
            tokens.extend(Tokens::parse_list(inline, "NASPERF_TOKENS")?);
        }
        if let Some(path) = &self.file {
            let text = std::fs::read_to_string(path).map_err(|e| TokensError::Read {
                path: path.clone(),
                message: e.to_string(),
            })?;
            tokens.extend(Tokens::parse_lines(&text, &path.display().to_string())?);
        }
        Ok(tokens)
    }
}

/// The response header that carries [`Authenticator::warning`] on every
/// health check, so that whoever probes the server sees it.
pub const WARNING_HEADER: &str = "nasperf-warning";

/// The tokens in force; `None` when authentication is off.
#[derive(Debug, Clone)]
pub struct Authenticator {
    tokens: Option<Arc<ArcSwap<Tokens>>>,
    /// Why this configuration is risky, repeated on health checks.
    warning: Option<http::HeaderValue>,
}

impl Authenticator {
    /// No authentication: every call passes.
    pub fn off() -> Self {
        Self {
            tokens: None,
            warning: None,
        }
    }

    pub fn with_tokens(tokens: Tokens) -> Self {
        Self {
            tokens: Some(Arc::new(ArcSwap::from_pointee(tokens))),
            warning: None,
        }
    }

    /// Adds a warning that every health check answers with, in the
    /// [`WARNING_HEADER`] header (visible ASCII only; anything else is
    /// replaced, since a header cannot carry it).
    pub fn with_warning(mut self, warning: &str) -> Self {
        let ascii: String = warning
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        self.warning = http::HeaderValue::from_str(&ascii).ok();
        self
    }

    pub fn warning(&self) -> Option<&str> {
        self.warning.as_ref().and_then(|w| w.to_str().ok())
    }

    pub fn is_on(&self) -> bool {
        self.tokens.is_some()
    }

    /// Checks one call's `authorization` header against what `path` needs.
    pub fn check(&self, path: &str, authorization: Option<&[u8]>) -> Result<(), tonic::Status> {
        let Some(tokens) = &self.tokens else {
            return Ok(());
        };
        let Access::Needs(needed) = access(path) else {
            return Ok(());
        };
        let token = authorization
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let Some(token) = token else {
            return Err(tonic::Status::unauthenticated(
                "authorization: a bearer token is required (metadata `authorization: Bearer TOKEN`)",
            ));
        };
        match tokens.load().role_of(token) {
            None => Err(tonic::Status::unauthenticated(
                "authorization: the token is not valid",
            )),
            Some(role) if role >= needed => Ok(()),
            Some(role) => Err(tonic::Status::permission_denied(format!(
                "{path} needs the {} role; this token has {}",
                needed.as_str(),
                role.as_str()
            ))),
        }
    }

    /// Re-reads the token file whenever its modification time changes,
    /// until `stop`. A file that cannot be read or parsed keeps the tokens
    /// in force (and says why).
    pub async fn watch(
        self,
        sources: TokenSources,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let (Some(tokens), Some(path)) = (self.tokens.clone(), sources.file.clone()) else {
            return;
        };
        let mut seen = modified(&path);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            let now = modified(&path);
            if now == seen {
                continue;
            }
            seen = now;
            match sources.load() {
                Ok(fresh) => {
                    tracing::info!(tokens = fresh.len(), file = %path.display(), "tokens reloaded");
                    tokens.store(Arc::new(fresh));
                }
                Err(e) => {
                    tracing::error!(error = %e, "tokens not reloaded; the previous ones stay in force");
                }
            }
        }
    }
}

fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| m.modified().ok().map(|t| (t, m.len())))
}

/// The tower layer that applies an [`Authenticator`] to every call.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    auth: Authenticator,
}

impl AuthLayer {
    pub fn new(auth: Authenticator) -> Self {
        Self { auth }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Authenticator,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for AuthService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let path = request.uri().path();
        let warning = self
            .auth
            .warning
            .clone()
            .filter(|_| path.starts_with("/grpc.health.v1.Health/"));
        match self.auth.check(path, header) {
            Ok(()) => {
                let call = self.inner.call(request);
                Box::pin(async move {
                    let mut response = call.await?;
                    if let Some(warning) = warning {
                        response.headers_mut().insert(WARNING_HEADER, warning);
                    }
                    Ok(response)
                })
            }
            Err(status) => answer_now(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: &str = "admin-token-0123456789";
    const RECORD: &str = "record-token-0123456789";
    const PREDICT: &str = "predict-token-0123456789";

    fn auth() -> Authenticator {
        Authenticator::with_tokens(
            Tokens::parse_lines(
                &format!("# comment\n\nadmin {ADMIN}\nrecord {RECORD}\npredict {PREDICT}\n"),
                "test",
            )
            .expect("tokens"),
        )
    }

    fn bearer(t: &str) -> Vec<u8> {
        format!("Bearer {t}").into_bytes()
    }

    #[test]
    fn every_api_method_has_a_role_listed() {
        for method in crate::proto::api_methods() {
            let listed = access(&method);
            if method.starts_with("/nasperf.v1.") {
                assert_ne!(listed, Access::Open, "{method} must need a role");
            }
            // Listed explicitly, not by the admin fallback, unless it is
            // an admin call.
            if listed == Access::Needs(Role::Admin) {
                assert!(
                    [
                        "/nasperf.v1.Store/ExcludeEvaluations",
                        "/nasperf.v1.Models/Retrain",
                        "/nasperf.v1.Models/ActivateModel",
                        "/nasperf.v1.Models/UnpinModel",
                    ]
                    .contains(&method.as_str()),
                    "{method} falls back to admin: give it a role"
                );
            }
        }
        assert_eq!(
            access("/nasperf.v1.Predictor/Unknown"),
            Access::Needs(Role::Admin)
        );
    }

    #[test]
    fn roles_include_the_ones_before_them() {
        let a = auth();
        let predict = "/nasperf.v1.Predictor/Predict";
        let record = "/nasperf.v1.Store/RecordEvaluationBatch";
        let retrain = "/nasperf.v1.Models/Retrain";
        for (token, allowed) in [
            (PREDICT, [true, false, false]),
            (RECORD, [true, true, false]),
            (ADMIN, [true, true, true]),
        ] {
            for (path, ok) in [predict, record, retrain].into_iter().zip(allowed) {
                let r = a.check(path, Some(&bearer(token)));
                assert_eq!(r.is_ok(), ok, "{token} on {path}: {r:?}");
                if let Err(s) = r {
                    assert_eq!(s.code(), tonic::Code::PermissionDenied);
                    assert!(!s.message().contains(token), "never echoes the token");
                }
            }
        }
    }

    #[test]
    fn missing_malformed_and_unknown_tokens_are_unauthenticated_and_probes_stay_open() {
        let a = auth();
        let p = "/nasperf.v1.Predictor/Predict";
        for header in [
            None,
            Some(b"Basic abc".to_vec()),
            Some(bearer("not-a-token-at-all-xx")),
            Some(vec![0xff, 0xfe]),
        ] {
            let s = a.check(p, header.as_deref()).expect_err("refused");
            assert_eq!(s.code(), tonic::Code::Unauthenticated, "{header:?}");
        }
        assert!(a.check("/grpc.health.v1.Health/Check", None).is_ok());
        assert!(Authenticator::off().check(p, None).is_ok());
    }

    #[test]
    fn token_files_and_lists_are_checked_and_errors_never_show_the_token() {
        let e = Tokens::parse_lines("admin short", "f").expect_err("short");
        assert_eq!(
            e,
            TokensError::Short {
                source_name: "f".into(),
                line: 1
            }
        );
        let e = Tokens::parse_lines("\nowner 0123456789abcdefgh", "f").expect_err("role");
        assert_eq!(
            e,
            TokensError::Syntax {
                source_name: "f".into(),
                line: 2
            }
        );
        assert!(!e.to_string().contains("0123456789abcdefgh"));
        let e = Tokens::parse_lines("admin a b", "f").expect_err("three words");
        assert!(matches!(e, TokensError::Syntax { line: 1, .. }));
        let t =
            Tokens::parse_list(&format!("admin:{ADMIN}, predict:{PREDICT}"), "env").expect("list");
        assert_eq!(t.role_of(ADMIN), Some(Role::Admin));
        assert_eq!(t.role_of(PREDICT), Some(Role::Predict));
        assert_eq!(t.role_of(RECORD), None);
    }
}
