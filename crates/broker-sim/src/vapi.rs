//! vAPI standard error bodies, as every `/api` endpoint of vCenter returns them.

use serde_json::{Value, json};

/// What vCenter puts in `challenge` and `WWW-Authenticate` on `UNAUTHENTICATED`.
pub(crate) const CHALLENGE: &str = "Basic realm=\"VAPI endpoint\",SIGN realm=\"27da1358-2ba4-11e9-b210-d663bd873d93\",sts=\"http://vcenter/sso?vsphere.local\"";

/// The HTTP status vCenter uses for a vAPI `error_type`.
pub(crate) fn status_for(error_type: &str) -> u16 {
    match error_type {
        "INVALID_ARGUMENT"
        | "INVALID_REQUEST"
        | "ALREADY_EXISTS"
        | "NOT_ALLOWED_IN_CURRENT_STATE"
        | "RESOURCE_BUSY"
        | "UNSUPPORTED"
        | "OPERATION_NOT_FOUND"
        | "UNEXPECTED_INPUT" => 400,
        "UNAUTHENTICATED" => 401,
        "UNAUTHORIZED" => 403,
        "NOT_FOUND" => 404,
        "CONCURRENT_CHANGE" => 409,
        "SERVICE_UNAVAILABLE" => 503,
        "TIMED_OUT" => 504,
        _ => 500,
    }
}

/// A standard error body with one message; `challenge` only on `UNAUTHENTICATED`.
pub(crate) fn error_body(
    error_type: &str,
    message_id: &str,
    default_message: &str,
    args: &[&str],
) -> Value {
    let mut body = json!({
        "error_type": error_type,
        "messages": [{
            "id": message_id,
            "default_message": default_message,
            "args": args,
            "params": null,
            "localized": null,
        }],
        "data": null,
    });
    if error_type == "UNAUTHENTICATED" {
        body["challenge"] = json!(CHALLENGE);
    }
    body
}

pub(crate) fn unauthenticated() -> Value {
    error_body(
        "UNAUTHENTICATED",
        "com.vmware.vapi.endpoint.method.authentication.required",
        "Authentication required.",
        &[],
    )
}

pub(crate) fn unauthorized() -> Value {
    error_body(
        "UNAUTHORIZED",
        "vapi.method.authz.denied",
        "Permission to perform this operation was denied.",
        &[],
    )
}

pub(crate) fn tenant_not_found(tenant: &str) -> Value {
    error_body(
        "NOT_FOUND",
        "com.vmware.vcenter.identity.broker.tenants.not_found",
        &format!("Tenant {tenant} not found."),
        &[tenant],
    )
}

pub(crate) fn path_not_found() -> Value {
    error_body(
        "NOT_FOUND",
        "com.vmware.vapi.rest.httpNotFound",
        "Not found.",
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unauthenticated_carries_a_challenge() {
        assert_eq!(unauthenticated()["challenge"], CHALLENGE);
        assert!(unauthorized().get("challenge").is_none());
        assert_eq!(unauthorized()["error_type"], "UNAUTHORIZED");
    }

    #[test]
    fn error_types_map_to_the_documented_statuses() {
        assert_eq!(status_for("INVALID_ARGUMENT"), 400);
        assert_eq!(status_for("UNAUTHENTICATED"), 401);
        assert_eq!(status_for("UNAUTHORIZED"), 403);
        assert_eq!(status_for("NOT_FOUND"), 404);
        assert_eq!(status_for("CONCURRENT_CHANGE"), 409);
        assert_eq!(status_for("SERVICE_UNAVAILABLE"), 503);
        assert_eq!(status_for("TIMED_OUT"), 504);
        assert_eq!(status_for("SOMETHING_NEW"), 500);
    }
}
