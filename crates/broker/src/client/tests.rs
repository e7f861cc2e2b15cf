//! Base URL checks: normalisation, refused credentials (never echoed), and plain http only
//! with the flag.

use super::normalize_base_url;
use crate::error::ErrorKind;

#[test]
fn base_url_loses_trailing_slash_and_keeps_prefix() {
    assert_eq!(
        normalize_base_url("https://vc.example/", false).as_deref(),
        Ok("https://vc.example")
    );
    assert_eq!(
        normalize_base_url("https://vc.example:8443/proxy/", false).as_deref(),
        Ok("https://vc.example:8443/proxy")
    );
}

#[test]
fn base_url_with_credentials_is_refused_without_echoing_them() {
    let error = normalize_base_url("https://admin:hunter2@vc.example", false).expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::Spec);
    assert!(!error.to_string().contains("hunter2"));
    assert!(normalize_base_url("ftp://vc.example", true).is_err());
    assert!(normalize_base_url("vc.example", true).is_err());
    assert!(normalize_base_url("https://vc.example/?x=1", false).is_err());
}

#[test]
fn plain_http_needs_the_flag() {
    let error = normalize_base_url("http://vc.example", false).expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::Spec);
    assert!(error.to_string().contains("allowInsecureHttp"), "{error}");
    assert_eq!(
        normalize_base_url("http://vc.example/", true).as_deref(),
        Ok("http://vc.example")
    );
    let error = normalize_base_url("ftp://vc.example", false).expect_err("refused");
    assert!(error.to_string().contains("https://"), "{error}");
}
