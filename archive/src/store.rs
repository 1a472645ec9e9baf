//! S3-compatible object storage for the archive (the `object_store` crate): opening a bucket from
//! an `s3://bucket/prefix` URL with the usual AWS credential chain, and the object operations the
//! shipper ([`crate::ship`]) and the remote reader ([`mirror`]) share.
//!
//! Credentials: the `AWS_*` environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL` …), else the shared credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`, profile `AWS_PROFILE` or `default`),
//! else the instance/container/web-identity providers `object_store` tries. Secrets are never
//! formatted into a log line or an error: errors carry the object key and the HTTP status only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, AttributeValue, Attributes, GetOptions, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload,
};
use sha2::{Digest, Sha256};

use crate::ArchiveError;
use crate::layout;

/// Object metadata key holding the hex SHA-256 of the object's bytes.
pub const SHA256_KEY: &str = "ringbolt-sha256";

/// An object's size and checksum: what "shipped" means.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Digested {
    /// Bytes.
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

impl Digested {
    /// Size and checksum of `bytes`.
    #[must_use]
    pub fn of(bytes: &[u8]) -> Digested {
        let hash = Sha256::digest(bytes);
        Digested {
            size: bytes.len() as u64,
            sha256: hash.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// A bucket and key prefix, with the runtime its requests run on (one thread, no pool).
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The store's own Debug would print its configuration, credentials included.
        f.debug_struct("Bucket").field("url", &self.url).finish()
    }
}

fn store_error(what: &str, key: &str, e: &object_store::Error) -> ArchiveError {
    // object_store's errors name the path and the status; they never carry credentials.
    ArchiveError::Store {
        message: format!("{what} {key}: {e}"),
    }
}

/// `(bucket, prefix)` of an `s3://bucket/prefix` URL (the prefix without slashes at its ends).
///
/// # Errors
/// Not an `s3://` URL, or no bucket.
pub fn parse_url(url: &str) -> Result<(String, String), ArchiveError> {
    let rest = url
        .strip_prefix("s3://")
        .or_else(|| url.strip_prefix("s3a://"))
        .ok_or_else(|| ArchiveError::Store {
            message: format!("{url}: not an s3:// URL"),
        })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(ArchiveError::Store {
            message: format!("{url}: no bucket"),
        });
    }
    Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

/// Whether `text` names an object-store archive rather than a local directory.
#[must_use]
pub fn is_remote(text: &str) -> bool {
    text.starts_with("s3://") || text.starts_with("s3a://")
}

/// `(key id, secret, session token)` of `profile` in an AWS shared credentials file.
fn profile_credentials(text: &str, profile: &str) -> Option<(String, String, Option<String>)> {
    let mut in_profile = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !in_profile {
            continue;
        }
        let value = Some(value.trim().to_owned());
        match key.trim() {
            "aws_access_key_id" => id = value,
            "aws_secret_access_key" => secret = value,
            "aws_session_token" => token = value,
            _ => {}
        }
    }
    Some((id?, secret?, token))
}

/// The builder with the shared credentials file's profile applied when the environment has no
/// keys.
fn with_profile(mut builder: AmazonS3Builder) -> AmazonS3Builder {
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        return builder;
    }
    let file = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".aws/credentials")));
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
    let text = file.and_then(|f| std::fs::read_to_string(f).ok());
    if let Some((id, secret, token)) = text.and_then(|t| profile_credentials(&t, &profile)) {
        builder = builder
            .with_access_key_id(id)
            .with_secret_access_key(secret);
        if let Some(token) = token {
            builder = builder.with_token(token);
        }
    }
    builder
}

impl Bucket {
    /// Opens `url` (`s3://bucket/prefix`) with the credential chain of the module docs. Plain
    /// HTTP is allowed only for an explicit `http://` endpoint (a local S3-compatible server).
    ///
    /// # Errors
    /// A bad URL or configuration.
    pub fn open(url: &str) -> Result<Bucket, ArchiveError> {
        let (bucket, prefix) = parse_url(url)?;
        // reqwest is built without a provider of its own: rustls with ring, as everywhere else
        // in the workspace (an error only means a provider is installed already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = with_profile(AmazonS3Builder::from_env()).with_bucket_name(&bucket);
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .unwrap_or_default();
        if endpoint.starts_with("http://") {
            builder = builder.with_allow_http(true);
        }
        if builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .is_none()
            && let Ok(region) = std::env::var("AWS_DEFAULT_REGION")
        {
            builder = builder.with_region(region);
        }
        let store = builder
            .build()
            .map_err(|e| store_error("opening bucket", &bucket, &e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ArchiveError::Store {
                message: format!("starting the I/O runtime: {e}"),
            })?;
        Ok(Bucket {
            store: Arc::new(store),
            prefix,
            url: url.to_owned(),
            runtime,
        })
    }

    /// The URL the bucket was opened with.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object key of `rel` (a path relative to the archive root, `/`-separated).
    #[must_use]
    pub fn key(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_owned()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    /// Size and stored checksum of object `rel`; `None` when absent. An object without the
    /// checksum metadata has an empty `sha256`.
    ///
    /// # Errors
    /// Any store error but "not found".
    pub fn stat(&self, rel: &str) -> Result<Option<Digested>, ArchiveError> {
        let key = self.key(rel);
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let result = self.runtime.block_on(
            self.store
                .get_opts(&ObjectPath::from(key.as_str()), options),
        );
        match result {
            Ok(r) => Ok(Some(Digested {
                size: r.meta.size,
                sha256: r
                    .attributes
                    .get(&Attribute::Metadata(SHA256_KEY.into()))
                    .map(|v| v.as_ref().to_owned())
                    .unwrap_or_default(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error("stat", &key, &e)),
        }
    }

    /// Uploads `bytes` as object `rel` in one atomic PUT, with its checksum as object metadata.
    ///
    /// # Errors
    /// Store errors.
    pub fn put(&self, rel: &str, bytes: Vec<u8>, digest: &Digested) -> Result<(), ArchiveError> {
        let key = self.key(rel);
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::Metadata(SHA256_KEY.into()),
            AttributeValue::from(digest.sha256.clone()),
        );
        let options = PutOptions {
            mode: PutMode::Overwrite,
            attributes,
            ..PutOptions::default()
        };
        self.runtime
            .block_on(self.store.put_opts(
                &ObjectPath::from(key.as_str()),
                PutPayload::from(bytes),
                options,
            ))
            .map_err(|e| store_error("put", &key, &e))?;
        Ok(())
    }

    /// The bytes of object `rel`.
    ///
    /// # Errors
    /// Store errors (a missing object included).
    pub fn get(&self, rel: &str) -> Result<Vec<u8>, ArchiveError> {
        let key = self.key(rel);
        let path = ObjectPath::from(key.as_str());
        self.runtime
            .block_on(async { self.store.get(&path).await?.bytes().await })
            .map(|b| b.to_vec())
            .map_err(|e| store_error("get", &key, &e))
    }

    /// Every object under the prefix: `(path relative to the prefix, size)`, sorted.
    ///
    /// # Errors
    /// Store errors.
    pub fn list(&self) -> Result<Vec<(String, u64)>, ArchiveError> {
        use futures_util::TryStreamExt as _;
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        let metas: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.store.list(prefix.as_ref()).try_collect())
            .map_err(|e| store_error("list", &self.prefix, &e))?;
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut out: Vec<(String, u64)> = metas
            .into_iter()
            .filter_map(|m| {
                let key = m.location.to_string();
                key.strip_prefix(&strip).map(|r| (r.to_owned(), m.size))
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

/// Copies the archive at `url` into `cache` (default: `<tmp>/ringbolt-s3/<bucket>/<prefix>`) and
/// returns the local root: `ringbolt replay --archive s3://…` and the training export read the
/// copy with the ordinary reader. Cached files with the object's size and checksum are kept;
/// every downloaded file is checked against its size and, when the object carries one, its
/// SHA-256.
/// Shipping manifests are not copied.
///
/// # Errors
/// Store and I/O errors; a checksum mismatch.
pub fn mirror(url: &str, cache: Option<&Path>) -> Result<PathBuf, ArchiveError> {
    let bucket = Bucket::open(url)?;
    let (name, prefix) = parse_url(url)?;
    let root = cache.map_or_else(
        || {
            std::env::temp_dir()
                .join("ringbolt-s3")
                .join(name)
                .join(&prefix)
        },
        Path::to_owned,
    );
    let mut fetched = 0_u64;
    for (rel, size) in bucket.list()? {
        if rel.starts_with(crate::ship::MANIFEST_DIR) || rel.split('/').any(|c| c == "..") {
            continue;
        }
        let path = root.join(&rel);
        let stored = bucket.stat(&rel)?.map(|d| d.sha256).unwrap_or_default();
        let cached = std::fs::read(&path).ok().map(|b| Digested::of(&b));
        if cached.is_some_and(|c| c.size == size && (stored.is_empty() || c.sha256 == stored)) {
            continue;
        }
        let bytes = bucket.get(&rel)?;
        let digest = Digested::of(&bytes);
        if digest.size != size || (!stored.is_empty() && stored != digest.sha256) {
            return Err(ArchiveError::Store {
                message: format!("{}: size or checksum differs from the object's", rel),
            });
        }
        if let Some(dir) = path.parent() {
            layout::create_dir_durable(dir).map_err(|e| ArchiveError::io(dir, e))?;
        }
        layout::write_atomic(&path, &bytes).map_err(|e| ArchiveError::io(&path, e))?;
        fetched += 1;
    }
    tracing::info!(url = bucket.url(), root = %root.display(), fetched, "archive mirrored");
    Ok(root)
}

/// The local root of `archive`: the directory itself, or the [`mirror`] of an `s3://` URL.
///
/// # Errors
/// As [`mirror`].
pub fn local_root(archive: &Path) -> Result<PathBuf, ArchiveError> {
    match archive.to_str() {
        Some(url) if is_remote(url) => mirror(url, None),
        _ => Ok(archive.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_profiles_parse() {
        assert_eq!(
            parse_url("s3://b/a/b/").unwrap(),
            ("b".to_owned(), "a/b".to_owned())
        );
        assert_eq!(
            parse_url("s3://b").unwrap(),
            ("b".to_owned(), String::new())
        );
        assert!(parse_url("/tmp/x").is_err());
        assert!(parse_url("s3:///x").is_err());
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key=S\n[other]\n\
                    aws_access_key_id=B\naws_secret_access_key=T\naws_session_token=X\n";
        assert_eq!(
            profile_credentials(text, "other"),
            Some(("B".into(), "T".into(), Some("X".into())))
        );
        assert_eq!(
            profile_credentials(text, "default"),
            Some(("A".into(), "S".into(), None))
        );
        assert_eq!(profile_credentials(text, "missing"), None);
        assert_eq!(
            Digested::of(b"abc").sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
