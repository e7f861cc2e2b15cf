//! Request attributes as kube-apiserver's `RequestInfoFactory.NewRequestInfo` derives them:
//! what a request asks to do, as the authorizer sees it.

/// What a request asks to do, as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attributes {
    Resource(ResourceAttributes),
    NonResource { verb: String, path: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResourceAttributes {
    pub verb: String,
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

fn is_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// `NewRequestInfo`: `/api/v1/...` and `/apis/<group>/<version>/...` with at least a resource
/// are resource requests; everything else is a non-resource request with the lowercased
/// method as verb.
pub(crate) fn attributes(method: &str, path: &str, query: &[(String, String)]) -> Attributes {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, mut rest) = match parts.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => {
            return Attributes::NonResource {
                verb: method.to_ascii_lowercase(),
                path: path.to_owned(),
            };
        }
    };
    let mut verb = match method {
        "POST" => "create",
        "GET" | "HEAD" => "get",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "",
    };
    if rest.first() == Some(&"watch") && rest.len() >= 2 {
        verb = "watch";
        rest = &rest[1..];
    }
    let mut namespace = "";
    if let ["namespaces", ns, tail @ ..] = rest {
        namespace = ns;
        // `namespaces/<ns>/<resource>...` unless the next part is a namespace subresource.
        if !tail.is_empty() && !matches!(tail[0], "status" | "finalize") {
            rest = tail;
        }
    }
    let part = |i: usize| rest.get(i).copied().unwrap_or("");
    let mut name = part(1);
    let param = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    if name.is_empty() && verb == "get" {
        verb = if param("watch").is_some_and(is_true) {
            "watch"
        } else {
            "list"
        };
        name = param("fieldSelector").and_then(selected_name).unwrap_or("");
    }
    if name.is_empty() && verb == "delete" {
        verb = "deletecollection";
    }
    Attributes::Resource(ResourceAttributes {
        verb: verb.to_owned(),
        group: group.to_owned(),
        version: version.to_owned(),
        namespace: namespace.to_owned(),
        resource: part(0).to_owned(),
        subresource: part(2).to_owned(),
        name: name.to_owned(),
    })
}

/// The name a field selector requires exactly (`metadata.name=<name>` alone), if a valid
/// path segment: a list or watch of one name is authorized as about that name.
fn selected_name(selector: &str) -> Option<&str> {
    let name = selector
        .strip_prefix("metadata.name==")
        .or_else(|| selector.strip_prefix("metadata.name="))?;
    let valid = !name.is_empty() && !name.contains([',', '/', '%']) && name != "." && name != "..";
    valid.then_some(name)
}
