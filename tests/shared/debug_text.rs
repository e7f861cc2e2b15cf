//! What Rust `Debug` output looks like, so tests can prove none of it reaches a person: kube's
//! `ApiError: … (Status { status: Some(Failure), code: 404, … })` and its kin in events, status
//! messages and logs. Shared by the reconcile and end-to-end suites.

/// Substrings only `Debug` output of the operator's error types has.
pub const DEBUG_SHAPES: &[&str] = &[
    "Status {",
    "Some(",
    "ApiError",
    "Api(",
    "Error {",
    "ListMeta {",
    "HyperError",
    "ServiceError",
];

/// The first `Debug` shape in `text`, if any.
pub fn debug_shape(text: &str) -> Option<&'static str> {
    DEBUG_SHAPES
        .iter()
        .copied()
        .find(|shape| text.contains(shape))
}

/// Fails when a `Debug` shape is in `text`, naming where it was found.
#[track_caller]
pub fn assert_no_debug_text(what: &str, text: &str) {
    if let Some(shape) = debug_shape(text) {
        panic!("Rust Debug text ({shape:?}) in {what}: {text}");
    }
}
