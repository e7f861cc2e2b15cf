//! Rules evaluated as cel-go evaluates them, durations parsed as Go parses them.

use super::duration::parse_duration;
use super::*;
use serde_json::json;

fn check(rule: &str, this: &Value) -> Result<Cel, String> {
    compile(rule)?.evaluate(this, None)
}

fn t() -> Result<Cel, String> {
    Ok(Cel::Bool(true))
}

fn f() -> Result<Cel, String> {
    Ok(Cel::Bool(false))
}

#[test]
fn evaluates_one_of_rules() {
    let both = json!({"a": 1, "b": 2});
    let one = json!({"a": 1});
    assert_eq!(check("has(self.a) != has(self.b)", &both), f());
    assert_eq!(check("has(self.a) != has(self.b)", &one), t());
    assert_eq!(check("!(has(self.a) && has(self.b))", &both), f());
    assert_eq!(check("self.a >= 1", &one), t());
    assert_eq!(
        check("self.a >= 1 && self.a <= 99", &json!({"a": 100})),
        f()
    );
}

#[test]
fn evaluates_strings_lists_and_macros() {
    let v = json!({"name": "web-1", "items": [{"k": "a"}, {"k": "b"}], "n": 3});
    assert_eq!(
        check("self.name.startsWith('web') && size(self.name) == 5", &v),
        t()
    );
    assert_eq!(check("self.items.all(i, i.k in ['a', 'b'])", &v), t());
    assert_eq!(check("self.items.exists_one(i, i.k == 'a')", &v), t());
    assert_eq!(check("self.items.map(i, i.k) == ['a', 'b']", &v), t());
    assert_eq!(check("self.name.matches('^web-[0-9]+$')", &v), t());
    assert_eq!(
        check("self.n % 2 == 1 ? 'odd' : 'even'", &v),
        Ok(Cel::String("odd".into()))
    );
    assert_eq!(check("!has(self.missing) || self.missing > 0", &v), t());
    assert!(check("self.missing > 0", &v).is_err());
    assert!(compile("self.a +").is_err());
}

#[test]
fn evaluates_durations_and_timestamps() {
    let v = json!({"ttl": "720h", "short": "30s", "at": "2024-01-01T00:00:00Z"});
    assert_eq!(check("duration(self.ttl) >= duration('1m')", &v), t());
    assert_eq!(check("duration(self.short) >= duration('1m')", &v), f());
    assert_eq!(check("duration('1h30m') == duration('90m')", &v), t());
    assert_eq!(
        check(
            "timestamp(self.at) + duration('24h') == timestamp('2024-01-02T00:00:00Z')",
            &v
        ),
        t()
    );
    assert!(check("duration('forever') > duration('1s')", &v).is_err());
    assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
    assert_eq!(parse_duration("-2m"), Some(-120_000_000_000));
    assert_eq!(parse_duration("5"), None);
}

#[test]
fn durations_parse_as_go_time_parse_duration() {
    let hour: i128 = 3_600_000_000_000;
    assert_eq!(parse_duration("0"), Some(0));
    assert_eq!(parse_duration("-0"), Some(0));
    assert_eq!(parse_duration("+5s"), Some(5_000_000_000));
    assert_eq!(parse_duration(".5h"), Some(hour / 2));
    assert_eq!(parse_duration("5.s"), Some(5_000_000_000));
    assert_eq!(parse_duration("1h30m"), Some(hour * 3 / 2));
    assert_eq!(parse_duration("1\u{b5}s"), Some(1_000));
    assert_eq!(parse_duration("1\u{3bc}s"), Some(1_000));
    assert_eq!(parse_duration("87600h"), Some(87_600 * hour));
    // int64 nanoseconds end at 2562047h47m16.854775807s.
    assert_eq!(
        parse_duration("2562047h47m16.854775807s"),
        Some(i128::from(i64::MAX))
    );
    assert_eq!(
        parse_duration("-2562047h47m16.854775808s"),
        Some(i128::from(i64::MIN))
    );
    for invalid in [
        "",
        "+",
        "-",
        ".",
        ".s",
        "5",
        "1d",
        "1h5",
        "s",
        "2562048h",
        "2562047h47m16.854775808s",
        "100000000000h",
        "99999999999999999999ns",
    ] {
        assert_eq!(parse_duration(invalid), None, "{invalid:?}");
    }
}

#[test]
fn out_of_range_durations_are_cel_go_conversion_errors() {
    let v = json!({"ttl": "100000000000h", "ok": "87600h"});
    let rule = "duration(self.ttl) <= duration('87600h')";
    assert_eq!(
        check(rule, &v),
        Err("type conversion error from 'string' to 'google.protobuf.Duration'".to_owned())
    );
    assert_eq!(check("duration(self.ok) <= duration('87600h')", &v), t());
    // Error absorption: a decided `||` ignores the failing side, as cel-go does.
    assert_eq!(check(&format!("true || {rule}"), &v), t());
    assert_eq!(
        check(
            "duration('2562047h') + duration('2562047h') > duration('0s')",
            &v
        ),
        Err("integer overflow".to_owned())
    );
    assert_eq!(
        check(
            "timestamp('yesterday') > timestamp('2024-01-01T00:00:00Z')",
            &v
        ),
        Err("type conversion error from 'string' to 'google.protobuf.Timestamp'".to_owned())
    );
}

#[test]
fn the_operator_crd_rules_evaluate_both_ways() {
    let keys = "(has(self.accessToken) ? self.accessToken : 'access_token') != (has(self.expiresAt) ? self.expiresAt : 'expires_at') && (has(self.accessToken) ? self.accessToken : 'access_token') != (has(self.scimUrl) ? self.scimUrl : 'scim_url')";
    assert_eq!(
        check(keys, &json!({"accessToken": "token", "scimUrl": "url"})),
        t()
    );
    assert_eq!(
        check(keys, &json!({"accessToken": "token", "scimUrl": "token"})),
        f()
    );
    assert_eq!(check(keys, &json!({"accessToken": "expires_at"})), f());
    let types = "!has(self.type) || !(self.type in ['kubernetes.io/dockercfg', 'bootstrap.kubernetes.io/token'])";
    assert_eq!(check(types, &json!({})), t());
    assert_eq!(check(types, &json!({"type": "Opaque"})), t());
    assert_eq!(
        check(types, &json!({"type": "kubernetes.io/dockercfg"})),
        f()
    );
    let http = "!self.url.startsWith('http://') || (has(self.allowInsecureHttp) && self.allowInsecureHttp)";
    assert_eq!(check(http, &json!({"url": "https://x"})), t());
    assert_eq!(check(http, &json!({"url": "http://x"})), f());
    assert_eq!(
        check(
            http,
            &json!({"url": "http://x", "allowInsecureHttp": false})
        ),
        f()
    );
    assert_eq!(
        check(http, &json!({"url": "http://x", "allowInsecureHttp": true})),
        t()
    );
    let verify = "duration(self) == duration('0s') || (duration(self) >= duration('10s') && duration(self) <= duration('8760h'))";
    for (value, expected) in [
        ("0s", t()),
        ("5s", f()),
        ("10s", t()),
        ("8761h", f()),
        ("0h0m", t()),
    ] {
        assert_eq!(check(verify, &json!(value)), expected, "{value}");
    }
}

#[test]
fn string_escapes_and_nested_ternaries_follow_the_grammar() {
    let v = json!({});
    for (literal, text) in [
        (r"'a\nb'", "a\nb"),
        (r"'\x41\u00e9\U0001F600\101'", "A\u{e9}\u{1F600}A"),
        (r"'\'\\\?\`'", "'\\?`"),
        (r"r'\d+'", "\\d+"),
    ] {
        assert_eq!(
            check(literal, &v),
            Ok(Cel::String(text.to_owned())),
            "{literal}"
        );
    }
    assert!(compile(r"'\q'").is_err());
    assert!(compile("true ? false ? 1 : 2 : 3").is_err());
    assert_eq!(check("true ? (false ? 1 : 2) : 3", &v), Ok(Cel::Int(2)));
    assert_eq!(check("false ? 1 : true ? 2 : 3", &v), Ok(Cel::Int(2)));
}

#[test]
fn functions_outside_the_subset_say_so() {
    let error = check("isURL(self.u)", &json!({"u": "x"})).unwrap_err();
    assert!(is_unsupported(&error), "{error}");
    let real = check("self.missing == 1", &json!({})).unwrap_err();
    assert!(!is_unsupported(&real), "{real}");
}

#[test]
fn transition_rules_see_old_self() {
    let program = compile("self == oldSelf").unwrap();
    assert!(program.uses_old_self());
    assert_eq!(program.evaluate(&json!("a"), Some(&json!("a"))), t());
    assert_eq!(program.evaluate(&json!("b"), Some(&json!("a"))), f());
}
