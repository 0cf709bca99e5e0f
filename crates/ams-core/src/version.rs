//! `GET /v1/version` (contract §5.1): build facts; the release only for users
//! holding `service_admin` or `admin_viewer` (not the service token).

use ams_types::{Timestamp, wire};

use crate::Ams;
use crate::error::Result;

impl Ams {
    /// The build and host facts, `release` included for admin users.
    pub async fn version(&self, token: Option<&str>) -> Result<wire::Version> {
        let admin = self.admin_viewer(token).await?.unwrap_or(false);
        let epoch: i64 = env!("AMS_BUILD_EPOCH").parse().unwrap_or(0);
        Ok(wire::Version {
            build_time: Timestamp::from_secs(epoch).to_rfc3339_seconds(),
            golang: env!("AMS_RUSTC_VERSION").to_owned(),
            compiler: "rustc".to_owned(),
            os: std::env::consts::OS.to_owned(),
            architecture: std::env::consts::ARCH.to_owned(),
            release: admin.then(|| env!("CARGO_PKG_VERSION").to_owned()),
            distro: distro(),
            hostname: Some(self.settings().proxy_hostname.clone()).filter(|h| !h.is_empty()),
        })
    }
}

/// `PRETTY_NAME` of `/etc/os-release`, if there is one.
fn distro() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}
