//! Which simulated endpoint a request addresses, decided from its method and path alone.
//!
//! Recording and fault matching need the endpoint before any handling, so classification is its
//! own step rather than a router's side effect.

use hyper::Method;
use percent_encoding::percent_decode_str;

/// The endpoints of BROKER_API.md (A–E), plus `Unknown` for everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A: `POST /api/session`.
    Login,
    /// A: `DELETE /api/session`.
    Logout,
    /// B: `GET /api/vcenter/identity/broker/tenants/operator-client`.
    OperatorClientToken,
    /// B: `GET /api/vcenter/identity/broker/tenants/{tenant}/admin-client`.
    AdminClientToken,
    /// C: `POST /usergroup/t/{TENANT}/broker/directories/{id}/sync-client`.
    Generate,
    /// D: `GET /usergroup/t/{TENANT}/broker/directories/{id}/sync-client`.
    ReadSyncClient,
    /// E: `GET /usergroup/t/{TENANT}/scim/v2/Users`.
    ScimProbe,
    Unknown,
}

/// An endpoint with the path parameters it carries (percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub endpoint: Endpoint,
    pub tenant: Option<String>,
    pub directory_id: Option<String>,
}

impl Route {
    fn plain(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            tenant: None,
            directory_id: None,
        }
    }
}

/// Classifies a request. Empty path segments are skipped, so the vendor page's
/// `//usergroup/...` artifact still reaches its endpoint.
pub(crate) fn classify(method: &Method, path: &str) -> Route {
    let segments: Vec<String> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| percent_decode_str(segment).decode_utf8_lossy().into_owned())
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["api", "session"]) => Route::plain(Endpoint::Login),
        (&Method::DELETE, ["api", "session"]) => Route::plain(Endpoint::Logout),
        (
            &Method::GET,
            [
                "api",
                "vcenter",
                "identity",
                "broker",
                "tenants",
                "operator-client",
            ],
        ) => Route::plain(Endpoint::OperatorClientToken),
        (
            &Method::GET,
            [
                "api",
                "vcenter",
                "identity",
                "broker",
                "tenants",
                tenant,
                "admin-client",
            ],
        ) => Route {
            endpoint: Endpoint::AdminClientToken,
            tenant: Some((*tenant).to_owned()),
            directory_id: None,
        },
        (
            method,
            [
                "usergroup",
                "t",
                tenant,
                "broker",
                "directories",
                directory_id,
                "sync-client",
            ],
        ) if method == Method::POST || method == Method::GET => Route {
            endpoint: if method == Method::POST {
                Endpoint::Generate
            } else {
                Endpoint::ReadSyncClient
            },
            tenant: Some((*tenant).to_owned()),
            directory_id: Some((*directory_id).to_owned()),
        },
        (&Method::GET, ["usergroup", "t", tenant, "scim", "v2", "Users"]) => Route {
            endpoint: Endpoint::ScimProbe,
            tenant: Some((*tenant).to_owned()),
            directory_id: None,
        },
        _ => Route::plain(Endpoint::Unknown),
    }
}

/// The first value of a query parameter, form-decoded.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |text: &str| {
            percent_decode_str(&text.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(key) == name).then(|| decode(value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_documented_endpoint() {
        let cases = [
            (Method::POST, "/api/session", Endpoint::Login),
            (Method::DELETE, "/api/session", Endpoint::Logout),
            (
                Method::GET,
                "/api/vcenter/identity/broker/tenants/operator-client",
                Endpoint::OperatorClientToken,
            ),
            (
                Method::GET,
                "/api/vcenter/identity/broker/tenants/CUSTOMER/admin-client",
                Endpoint::AdminClientToken,
            ),
            (
                Method::POST,
                "/usergroup/t/CUSTOMER/broker/directories/abc/sync-client",
                Endpoint::Generate,
            ),
            (
                Method::GET,
                "/usergroup/t/CUSTOMER/broker/directories/abc/sync-client",
                Endpoint::ReadSyncClient,
            ),
            (
                Method::GET,
                "/usergroup/t/CUSTOMER/scim/v2/Users",
                Endpoint::ScimProbe,
            ),
            (Method::GET, "/api/session", Endpoint::Unknown),
            (
                Method::PUT,
                "/usergroup/t/CUSTOMER/broker/directories/abc/sync-client",
                Endpoint::Unknown,
            ),
            (Method::GET, "/", Endpoint::Unknown),
        ];
        for (method, path, expected) in cases {
            assert_eq!(
                classify(&method, path).endpoint,
                expected,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn path_parameters_are_percent_decoded_and_double_slashes_tolerated() {
        let route = classify(
            &Method::POST,
            "//usergroup/t/MY%20TENANT/broker/directories/a%2Fb/sync-client",
        );
        assert_eq!(route.endpoint, Endpoint::Generate);
        assert_eq!(route.tenant.as_deref(), Some("MY TENANT"));
        assert_eq!(route.directory_id.as_deref(), Some("a/b"));
    }

    #[test]
    fn query_parameters_are_form_decoded() {
        let query = Some("count=1&action=generate%5Fcredentials&x=a+b");
        assert_eq!(
            query_param(query, "action").as_deref(),
            Some("generate_credentials")
        );
        assert_eq!(query_param(query, "x").as_deref(), Some("a b"));
        assert_eq!(query_param(query, "missing"), None);
        assert_eq!(query_param(None, "action"), None);
    }
}
