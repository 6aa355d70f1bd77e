//! AWS's shared profile files, which `object_store` does not read:
//! `~/.aws/credentials` and `~/.aws/config` (or `AWS_SHARED_CREDENTIALS_FILE`
//! and `AWS_CONFIG_FILE`), profile `AWS_PROFILE` or `default`.
//!
//! Only static settings are read (keys, session token, region, endpoint);
//! `credential_process`, SSO and role chains are not, and a file that cannot
//! be read counts as empty, as the AWS CLI treats a missing one.
//! See <https://docs.aws.amazon.com/sdkref/latest/guide/file-format.html>.

use std::path::PathBuf;

/// The settings one profile gives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// `aws_access_key_id`.
    pub access_key_id: Option<String>,
    /// `aws_secret_access_key`.
    pub secret_access_key: Option<String>,
    /// `aws_session_token`.
    pub session_token: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `endpoint_url`.
    pub endpoint_url: Option<String>,
}

/// The active profile, from the credentials file first, then the config file.
pub fn load() -> Profile {
    let name = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(".aws").join(default)))
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    };
    let mut profile = Profile::default();
    read_into(
        &mut profile,
        &file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        &name,
        false,
    );
    read_into(
        &mut profile,
        &file("AWS_CONFIG_FILE", "config"),
        &name,
        true,
    );
    profile
}

/// Fills what `profile` lacks from the section of profile `name` in `text`.
/// In the config file a profile's section is `[profile NAME]` (except
/// `[default]`); in the credentials file it is `[NAME]`.
fn read_into(profile: &mut Profile, text: &str, name: &str, config: bool) {
    let wanted = if config && name != "default" {
        format!("profile {name}")
    } else {
        name.to_owned()
    };
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == wanted;
            continue;
        }
        let Some((key, value)) = line.split_once('=').filter(|_| inside) else {
            continue;
        };
        let slot = match key.trim() {
            "aws_access_key_id" => &mut profile.access_key_id,
            "aws_secret_access_key" => &mut profile.secret_access_key,
            "aws_session_token" => &mut profile.session_token,
            "region" => &mut profile.region,
            "endpoint_url" => &mut profile.endpoint_url,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.trim().to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_profile_from_both_files() {
        let credentials = "[default]\naws_access_key_id = A\n\n[work]\naws_access_key_id = W\naws_secret_access_key = S\n";
        let config = "[default]\nregion = eu-west-1\n[profile work]\nregion = us-west-2\nendpoint_url = http://127.0.0.1:9000\n";
        let mut profile = Profile::default();
        read_into(&mut profile, credentials, "work", false);
        read_into(&mut profile, config, "work", true);
        assert_eq!(
            profile,
            Profile {
                access_key_id: Some("W".into()),
                secret_access_key: Some("S".into()),
                session_token: None,
                region: Some("us-west-2".into()),
                endpoint_url: Some("http://127.0.0.1:9000".into()),
            }
        );
    }
}
