//! Where the client commands connect: flags, then `AMS_*` environment
//! variables, then a named profile from the profiles file.
//!
//! The file is TOML, one table per profile (`[default]` when none is named):
//!
//! ```toml
//! [default]
//! url = "http://127.0.0.1:8080"
//! token = "…"
//! project = "DEMO"
//! ```
//!
//! It is `$AMS_PROFILES`, else `$XDG_CONFIG_HOME/ams/profiles.toml`, else
//! `~/.config/ams/profiles.toml`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// One profile's settings; every field optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Server address, e.g. `https://msg.example.org`.
    pub url: Option<String>,
    /// The token (`x-api-key`).
    pub token: Option<String>,
    /// Default project.
    pub project: Option<String>,
    /// Extra CA certificate (PEM) to trust.
    pub ca_file: Option<PathBuf>,
}

/// The profiles file's location.
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AMS_PROFILES") {
        return Some(PathBuf::from(p));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("ams").join("profiles.toml"))
}

/// Loads profile `name`. A missing file is an empty default profile; a
/// named profile that does not exist, or a file that does not parse, is an
/// error that says where to look.
pub fn load(name: Option<&str>) -> Result<Profile, String> {
    let Some(path) = path() else {
        return Ok(Profile::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match name {
                Some(n) => Err(format!(
                    "profile `{n}` not found: {} does not exist",
                    path.display()
                )),
                None => Ok(Profile::default()),
            };
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut profiles: BTreeMap<String, Profile> = toml::from_str(&text)
        .map_err(|e| format!("{} is not a valid profiles file: {e}", path.display()))?;
    match name {
        Some(n) => profiles.remove(n).ok_or_else(|| {
            let known: Vec<_> = profiles.keys().cloned().collect();
            format!(
                "profile `{n}` not found in {} (known: {})",
                path.display(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )
        }),
        None => Ok(profiles.remove("default").unwrap_or_default()),
    }
}
