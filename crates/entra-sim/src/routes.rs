//! Which simulated call a request addresses, decided from its method and path alone.
//!
//! Recording and fault matching need the call before any handling, so classification is its own
//! step. Graph's fixed path segments are matched case-insensitively, as Graph does; ids are kept
//! as sent (percent-decoded).

use hyper::Method;
use percent_encoding::percent_decode_str;

/// The calls of ENTRA_API.md, plus `Unknown` for everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// `POST /{tenant}/oauth2/v2.0/token`.
    Token,
    /// `GET /v1.0/servicePrincipals/{id}/synchronization/jobs`.
    ListJobs,
    /// `GET …/synchronization/jobs/{jobId}`.
    GetJob,
    /// `PUT …/synchronization/secrets`.
    PutSecrets,
    /// `GET …/synchronization/secrets`.
    GetSecrets,
    /// `POST …/synchronization/jobs/{jobId}/validateCredentials`.
    ValidateCredentials,
    /// `POST …/synchronization/jobs/{jobId}/restart`.
    RestartJob,
    /// `POST …/synchronization/jobs/{jobId}/start`.
    StartJob,
    Unknown,
}

/// A call with the path parameters it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub call: Call,
    /// The token endpoint's `{tenant}` segment.
    pub tenant: Option<String>,
    pub service_principal: Option<String>,
    pub job: Option<String>,
}

impl Route {
    fn unknown() -> Self {
        Self {
            call: Call::Unknown,
            tenant: None,
            service_principal: None,
            job: None,
        }
    }

    fn graph(call: Call, service_principal: &str, job: Option<&str>) -> Self {
        Self {
            call,
            tenant: None,
            service_principal: Some(service_principal.to_owned()),
            job: job.map(str::to_owned),
        }
    }
}

/// Classifies a request. Empty path segments are skipped.
pub(crate) fn classify(method: &Method, path: &str) -> Route {
    let segments: Vec<String> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| percent_decode_str(segment).decode_utf8_lossy().into_owned())
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        [tenant, oauth2, version, token]
            if method == Method::POST
                && oauth2.eq_ignore_ascii_case("oauth2")
                && version.eq_ignore_ascii_case("v2.0")
                && token.eq_ignore_ascii_case("token") =>
        {
            Route {
                call: Call::Token,
                tenant: Some((*tenant).to_owned()),
                service_principal: None,
                job: None,
            }
        }
        [version, principals, id, synchronization, rest @ ..]
            if version.eq_ignore_ascii_case("v1.0")
                && principals.eq_ignore_ascii_case("servicePrincipals")
                && synchronization.eq_ignore_ascii_case("synchronization") =>
        {
            classify_synchronization(method, id, rest)
        }
        _ => Route::unknown(),
    }
}

/// The part after `/v1.0/servicePrincipals/{id}/synchronization`.
fn classify_synchronization(method: &Method, id: &str, rest: &[&str]) -> Route {
    let is = |segment: &str, name: &str| segment.eq_ignore_ascii_case(name);
    let call = match (method, rest) {
        (&Method::GET, [jobs]) if is(jobs, "jobs") => Call::ListJobs,
        (&Method::GET, [jobs, _]) if is(jobs, "jobs") => Call::GetJob,
        (&Method::PUT, [secrets]) if is(secrets, "secrets") => Call::PutSecrets,
        (&Method::GET, [secrets]) if is(secrets, "secrets") => Call::GetSecrets,
        (&Method::POST, [jobs, _, action]) if is(jobs, "jobs") => {
            if is(action, "validateCredentials") {
                Call::ValidateCredentials
            } else if is(action, "restart") {
                Call::RestartJob
            } else if is(action, "start") {
                Call::StartJob
            } else {
                return Route::unknown();
            }
        }
        _ => return Route::unknown(),
    };
    let job = match rest {
        [_, job, ..] => Some(*job),
        _ => None,
    };
    Route::graph(call, id, job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_call_of_the_contract() {
        let base = "/v1.0/servicePrincipals/sp-1/synchronization";
        let cases = [
            (
                Method::POST,
                "/tenant-1/oauth2/v2.0/token".to_owned(),
                Call::Token,
            ),
            (Method::GET, format!("{base}/jobs"), Call::ListJobs),
            (Method::GET, format!("{base}/jobs/job-1"), Call::GetJob),
            (Method::PUT, format!("{base}/secrets"), Call::PutSecrets),
            (Method::GET, format!("{base}/secrets"), Call::GetSecrets),
            (
                Method::POST,
                format!("{base}/jobs/job-1/validateCredentials"),
                Call::ValidateCredentials,
            ),
            (
                Method::POST,
                format!("{base}/jobs/job-1/restart"),
                Call::RestartJob,
            ),
            (
                Method::POST,
                format!("{base}/jobs/job-1/start"),
                Call::StartJob,
            ),
            (
                Method::POST,
                format!("{base}/jobs/job-1/pause"),
                Call::Unknown,
            ),
            (Method::DELETE, format!("{base}/secrets"), Call::Unknown),
            (
                Method::GET,
                "/tenant-1/oauth2/v2.0/token".to_owned(),
                Call::Unknown,
            ),
            (Method::GET, "/".to_owned(), Call::Unknown),
        ];
        for (method, path, expected) in cases {
            assert_eq!(classify(&method, &path).call, expected, "{method} {path}");
        }
    }

    #[test]
    fn graph_segments_ignore_case_and_ids_are_decoded() {
        let route = classify(
            &Method::POST,
            "/v1.0/serviceprincipals/sp%201/Synchronization/JOBS/job%2F1/Restart",
        );
        assert_eq!(route.call, Call::RestartJob);
        assert_eq!(route.service_principal.as_deref(), Some("sp 1"));
        assert_eq!(route.job.as_deref(), Some("job/1"));
        let token = classify(&Method::POST, "//my%20tenant/oauth2/v2.0/token");
        assert_eq!(token.tenant.as_deref(), Some("my tenant"));
    }
}
