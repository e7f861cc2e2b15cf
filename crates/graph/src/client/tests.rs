//! Base URL checks and the forms secrets are scrubbed in.

use super::{https_base_url, secret_forms};

#[test]
fn base_urls_must_be_plain_https() {
    assert_eq!(
        https_base_url("graph_base", "https://graph.microsoft.com/").as_deref(),
        Ok("https://graph.microsoft.com")
    );
    assert_eq!(
        https_base_url("graph_base", " https://proxy.example:8443/graph/ ").as_deref(),
        Ok("https://proxy.example:8443/graph")
    );
    let cases = [
        (
            "http://graph.microsoft.com",
            "graph_base must start with https://",
        ),
        (
            "https://user:hunter2@graph.example",
            "graph_base must not contain credentials",
        ),
        (
            "https://graph.example/?x=1",
            "graph_base must not have a query or fragment",
        ),
    ];
    for (raw, expected) in cases {
        let error = https_base_url("graph_base", raw).expect_err("refused");
        assert_eq!(
            error.to_string(),
            format!("configure Microsoft Graph client: {expected}")
        );
    }
    assert!(https_base_url("graph_base", "graph.example").is_err());
}

#[test]
fn secrets_are_scrubbed_in_every_form_they_travel_in() {
    assert_eq!(secret_forms("abc"), ["abc"]);
    assert_eq!(secret_forms("a~b c"), ["a~b c", "a%7Eb+c"]);
    assert_eq!(secret_forms("a\"b"), ["a\"b", "a%22b", "a\\\"b"]);
}
