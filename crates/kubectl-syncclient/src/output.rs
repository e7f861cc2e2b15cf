//! Writing results: tables and documents to standard output (a closed pipe, as in `| head`, ends
//! the output quietly), notes and prompts to standard error.

use std::io::Write;

use serde::Serialize;

use crate::error::PluginError;

/// Writes `text` to standard output.
pub fn print(text: &str) -> Result<(), PluginError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(PluginError::Io {
            what: "writing to standard output",
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Pretty JSON with a final newline, as `kubectl get -o json` prints.
pub fn json<T: Serialize>(value: &T) -> Result<String, PluginError> {
    serde_json::to_string_pretty(value)
        .map(|text| text + "\n")
        .map_err(|e| PluginError::Output(e.to_string()))
}

/// YAML.
pub fn yaml<T: Serialize>(value: &T) -> Result<String, PluginError> {
    serde_saphyr::to_string(value).map_err(|e| PluginError::Output(e.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn documents_end_with_a_newline_and_yaml_reads_back() {
        let value = json!({"items": [{"name": "a", "expiresAt": null}]});
        assert!(super::json(&value).unwrap().ends_with("}\n"));
        let yaml = super::yaml(&value).unwrap();
        let back: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, value);
    }
}
