//! The Secret a credential asks for, checked before anything is issued. The API server would
//! refuse a bad label, annotation, data key or type only when the new credential is written,
//! after the broker has revoked the old one; these checks (apimachinery's rules, see each
//! function) make such a spec a `SpecInvalid` that costs no broker call.

use super::{CredentialType, SyncClientCredential};
use crate::secret::KeyNames;

/// Labels the operator sets itself: the owned-Secret watch depends on them.
pub const RESERVED_LABELS: [&str; 2] = ["app.kubernetes.io/managed-by", "syncclient.io/credential"];
/// Annotation prefix of the Secret's record (issue time, expiry, revision, fingerprint).
pub const RESERVED_ANNOTATION_PREFIX: &str = "syncclient.io/";
/// The API server's limit on the total size of an object's annotations
/// (`TotalAnnotationSizeLimitB`, apimachinery `ValidateAnnotationsSize`).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
/// Room kept for the record annotations the operator adds.
const RECORD_ANNOTATIONS_SIZE: usize = 1024;

/// What is wrong with the Secret a spec asks for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error(
        "spec.keys: {0:?} is not a valid Secret data key (letters, digits, '-', '_' and '.'; not '.' or '..'; at most 253)"
    )]
    DataKey(String),
    #[error("spec.keys: {0:?} names two data keys written together; each must be distinct")]
    DuplicateKey(String),
    #[error("spec.secretTemplate.labels: {key:?}: {why}")]
    Label { key: String, why: &'static str },
    #[error("spec.secretTemplate.annotations: {key:?}: {why}")]
    Annotation { key: String, why: &'static str },
    #[error("spec.secretTemplate.annotations are larger than the API server's 256 KiB limit")]
    AnnotationsTooLarge,
    #[error("spec.secretTemplate.type {type_:?} {why}")]
    Type { type_: String, why: String },
}

/// Checks everything about the Secret that the API server would refuse.
pub fn check(cr: &SyncClientCredential) -> Result<(), ShapeError> {
    let written = written_keys(cr)?;
    let Some(template) = &cr.spec.secret_template else {
        return Ok(());
    };
    for (key, value) in &template.labels {
        let why = if RESERVED_LABELS.contains(&key.as_str()) {
            Some("is set by the operator")
        } else {
            qualified_name_error(key).or_else(|| label_value_error(value))
        };
        if let Some(why) = why {
            return Err(ShapeError::Label {
                key: key.clone(),
                why,
            });
        }
    }
    let mut size = RECORD_ANNOTATIONS_SIZE;
    for (key, value) in &template.annotations {
        let why = if key.starts_with(RESERVED_ANNOTATION_PREFIX) {
            Some("the syncclient.io/ prefix is the operator's record")
        } else {
            qualified_name_error(key)
        };
        if let Some(why) = why {
            return Err(ShapeError::Annotation {
                key: key.clone(),
                why,
            });
        }
        size = size.saturating_add(key.len()).saturating_add(value.len());
    }
    if size > TOTAL_ANNOTATION_SIZE_LIMIT {
        return Err(ShapeError::AnnotationsTooLarge);
    }
    if let Some(type_) = &template.type_ {
        check_type(type_, &written)?;
    }
    Ok(())
}

/// The data keys this spec writes, each valid and distinct.
fn written_keys(cr: &SyncClientCredential) -> Result<Vec<String>, ShapeError> {
    let names = KeyNames::from_spec(cr.spec.keys.as_ref());
    let written = match cr.spec.credential_type {
        CredentialType::AccessToken => vec![names.access_token, names.expires_at, names.scim_url],
        CredentialType::ClientSecret => vec![names.client_id, names.client_secret],
    };
    for (i, key) in written.iter().enumerate() {
        if !is_data_key(key) {
            return Err(ShapeError::DataKey(key.clone()));
        }
        if written[..i].contains(key) {
            return Err(ShapeError::DuplicateKey(key.clone()));
        }
    }
    Ok(written)
}

/// The keys a Secret type requires (core `ValidateSecret`), against the keys written.
fn check_type(type_: &str, written: &[String]) -> Result<(), ShapeError> {
    let refuse = |why: String| ShapeError::Type {
        type_: type_.to_owned(),
        why,
    };
    let has = |key: &str| written.iter().any(|k| k == key);
    let missing = |keys: &[&str]| {
        refuse(format!(
            "needs the data keys {}; rename the written keys with spec.keys or use Opaque",
            keys.join(" and ")
        ))
    };
    match type_ {
        "" => Err(refuse("is empty".into())),
        "kubernetes.io/tls" if !(has("tls.crt") && has("tls.key")) => {
            Err(missing(&["tls.crt", "tls.key"]))
        }
        "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => Err(missing(&["ssh-privatekey"])),
        "kubernetes.io/basic-auth" if !(has("username") || has("password")) => {
            Err(missing(&["username", "password"]))
        }
        "kubernetes.io/service-account-token"
        | "kubernetes.io/dockercfg"
        | "kubernetes.io/dockerconfigjson"
        | "bootstrap.kubernetes.io/token" => Err(refuse(
            "needs data the API server checks (a service account or a registry configuration)"
                .into(),
        )),
        _ if type_.len() > 253 => Err(refuse("is longer than 253 characters".into())),
        _ => Ok(()),
    }
}

/// A Secret data key: `[-._a-zA-Z0-9]+`, at most 253, not `.` or `..`
/// (apimachinery `IsConfigMapKey`).
pub fn is_data_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Why `key` is not a qualified name (apimachinery `IsQualifiedName`): an optional DNS-subdomain
/// prefix and `/`, then a name of at most 63 characters, alphanumeric at both ends.
pub fn qualified_name_error(key: &str) -> Option<&'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.is_empty() || prefix.len() > 253 || !is_dns_subdomain(prefix))
    {
        return Some("the prefix must be a DNS subdomain (lowercase, at most 253 characters)");
    }
    if name.is_empty() || name.len() > 63 || !is_name_part(name) {
        return Some(
            "the name must be at most 63 characters of letters, digits, '-', '_' and '.', alphanumeric at both ends",
        );
    }
    None
}

/// Why `value` is not a label value (apimachinery `IsValidLabelValue`).
pub fn label_value_error(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        return None;
    }
    if value.len() > 63 || !is_name_part(value) {
        return Some(
            "the value must be at most 63 characters of letters, digits, '-', '_' and '.', alphanumeric at both ends",
        );
    }
    None
}

fn is_name_part(text: &str) -> bool {
    let bytes = text.as_bytes();
    let edge = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    edge(bytes.first())
        && edge(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(text: &str) -> bool {
    text.split('.').all(|label| {
        let bytes = label.as_bytes();
        let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        !label.is_empty()
            && label.len() <= 63
            && edge(bytes.first())
            && edge(bytes.last())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_follow_apimachinery() {
        for good in ["app", "example.com/team", "a.b-c/x_y.z", "x", "A1"] {
            assert_eq!(qualified_name_error(good), None, "{good}");
        }
        let long_name = "a".repeat(64);
        let long_prefix = format!("{}/x", "a".repeat(254));
        for bad in [
            "",
            "/x",
            "Example.com/x",
            "a//b",
            "-x",
            "x-",
            "has space",
            long_name.as_str(),
            long_prefix.as_str(),
            "a/b/c",
        ] {
            assert!(qualified_name_error(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn label_values_follow_apimachinery() {
        for good in ["", "v1", "a-b_c.d", "X"] {
            assert_eq!(label_value_error(good), None, "{good}");
        }
        let long = "a".repeat(64);
        for bad in ["-a", "a-", "a b", "a/b", long.as_str()] {
            assert!(label_value_error(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn data_keys_follow_the_api_server() {
        for good in ["access_token", "tls.crt", ".dotfile", "...", "a-b"] {
            assert!(is_data_key(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é"] {
            assert!(!is_data_key(bad), "{bad:?}");
        }
    }

    #[test]
    fn secret_types_must_hold_the_written_keys() {
        let written = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        assert!(check_type("Opaque", &written(&["access_token"])).is_ok());
        assert!(check_type("example.com/custom", &written(&["a"])).is_ok());
        assert!(check_type("kubernetes.io/tls", &written(&["access_token", "x", "y"])).is_err());
        assert!(check_type("kubernetes.io/tls", &written(&["tls.crt", "tls.key", "z"])).is_ok());
        assert!(check_type("kubernetes.io/basic-auth", &written(&["password", "b"])).is_ok());
        assert!(check_type("kubernetes.io/basic-auth", &written(&["a", "b"])).is_err());
        assert!(check_type("kubernetes.io/dockerconfigjson", &written(&["a"])).is_err());
        assert!(check_type("", &written(&["a"])).is_err());
    }
}
