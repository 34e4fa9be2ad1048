//! Blobs in an S3-compatible object store (Garage, MinIO, Ceph RGW, AWS S3…): the blob half of
//! the scale-out path, where several hub nodes share one bucket.
//!
//! What goes into the bucket is exactly what [`crate::FsBlobStore`] would write: blobs already
//! sealed to their owner's OpenPGP key. The bucket never sees plaintext.
//!
//! Objects are named `<prefix>/ab/abcdef…` (the blob id in hex, fanned out on its first byte
//! like the directory store). `put` returns once the store has answered the PUT with success,
//! which is S3's promise of durability; transient failures (connection errors, 5xx, 429) are
//! retried with exponential back-off before an error is returned.
//!
//! The [`BlobStore`] trait is synchronous and is called from tokio's blocking threads as well
//! as from plain threads. The client is asynchronous, so the store owns a small runtime of its
//! own and hands it each request over a channel: this never nests one runtime in another,
//! whatever thread calls.

use std::future::Future;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};

use crate::blob::{BlobId, BlobStore};
use crate::{Result, StoreError};

/// Where the bucket is and how to sign in to it.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Options {
    /// Base URL of the S3 API, e.g. `https://s3.example.org` or `http://127.0.0.1:3900`.
    pub endpoint: String,
    pub bucket: String,
    /// The region the store expects in signatures (Garage: its `s3_region`, often `garage`).
    pub region: String,
    /// Prepended to every object name, without slashes at either end (may be empty).
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Options {
    // The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"…")
            .finish()
    }
}

/// Retries of one request: enough to ride out a node restart, bounded so a caller (an SMTP
/// session waiting to say `250`) gets an answer within a minute.
const MAX_RETRIES: usize = 6;
const RETRY_TIMEOUT: Duration = Duration::from_secs(60);
/// A 20 MiB message over a slow link must not be cut off; a dead peer must not hang a session.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The runtime's threads only wait on sockets; two keep concurrent requests flowing.
const WORKER_THREADS: usize = 2;

pub struct S3BlobStore {
    client: std::sync::Arc<AmazonS3>,
    prefix: String,
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    describe: String,
}

impl S3BlobStore {
    /// Sets up the client and checks that the bucket answers with these credentials, so a
    /// wrong endpoint, bucket or key is reported when the hub starts, not at the first mail.
    pub fn open(options: &S3Options) -> Result<Self> {
        let store = Self::connect(options)?;
        store.check_bucket()?;
        Ok(store)
    }

    /// Like [`S3BlobStore::open`] without the round trip to the bucket.
    pub fn connect(options: &S3Options) -> Result<Self> {
        let describe = format!("bucket {:?} at {}", options.bucket, options.endpoint);
        let setup = |reason: String| StoreError::ObjectStorage {
            what: format!("setting up {describe}"),
            reason,
        };
        let endpoint = options.endpoint.trim_end_matches('/');
        let allow_http = match endpoint.split_once("://") {
            Some(("https", _)) => false,
            Some(("http", _)) => true,
            _ => {
                return Err(setup(format!(
                    "the endpoint {endpoint:?} must start with https:// (or http:// for a store \
                     on a trusted network)"
                )))
            }
        };
        for (name, value) in [
            ("bucket", &options.bucket),
            ("region", &options.region),
            ("access key id", &options.access_key_id),
            ("secret access key", &options.secret_access_key),
        ] {
            if value.trim().is_empty() {
                return Err(setup(format!("the {name} is empty")));
            }
        }
        // reqwest builds its TLS configuration from the process-wide rustls provider: ring,
        // the one the rest of the hub uses. An error only means one is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_bucket_name(&options.bucket)
            .with_region(&options.region)
            .with_access_key_id(&options.access_key_id)
            .with_secret_access_key(&options.secret_access_key)
            // Path-style requests (`endpoint/bucket/key`): what self-hosted stores serve
            // without wildcard DNS.
            .with_virtual_hosted_style_request(false)
            // The client options carry `allow_http` too: set it there, not before them.
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(allow_http)
                    .with_timeout(REQUEST_TIMEOUT)
                    .with_connect_timeout(CONNECT_TIMEOUT),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: MAX_RETRIES,
                retry_timeout: RETRY_TIMEOUT,
            })
            .build()
            .map_err(|e| setup(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("mshub-s3")
            .enable_all()
            .build()
            .map_err(|e| setup(format!("cannot start the client's threads: {e}")))?;
        Ok(Self {
            client: std::sync::Arc::new(client),
            prefix: options.prefix.trim_matches('/').to_string(),
            runtime: Some(runtime),
            describe,
        })
    }

    /// The object name of a blob: `<prefix>/ab/abcdef…`.
    pub fn object_name(&self, id: BlobId) -> String {
        let name = id.to_string();
        if self.prefix.is_empty() {
            format!("{}/{name}", &name[..2])
        } else {
            format!("{}/{}/{name}", self.prefix, &name[..2])
        }
    }

    fn path(&self, id: BlobId) -> ObjectPath {
        ObjectPath::from(self.object_name(id))
    }

    fn failure(&self, what: String, e: impl std::fmt::Display) -> StoreError {
        StoreError::ObjectStorage {
            what: format!("{what} in {}", self.describe),
            reason: e.to_string(),
        }
    }

    /// The client's errors say "HTTP error" at the top and why (refused, TLS, DNS…) in their
    /// sources: a person needs the whole chain.
    fn client_failure(&self, what: String, e: object_store::Error) -> StoreError {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !reason.contains(&cause_text) {
                reason.push_str(": ");
                reason.push_str(&cause_text);
            }
            source = cause.source();
        }
        self.failure(what, reason)
    }

    /// Runs `request` on the store's own runtime and waits for it on this thread.
    fn run<T: Send + 'static>(
        &self,
        what: impl Fn() -> String,
        request: impl Future<Output = T> + Send + 'static,
    ) -> Result<T> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| self.failure(what(), "the client is shutting down"))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(request.await);
        });
        rx.recv()
            .map_err(|_| self.failure(what(), "the client's runtime stopped"))
    }

    /// Lists the top of the prefix: fails if the endpoint, the bucket or the credentials are
    /// wrong. (A HEAD would not do: without a body, a missing bucket looks like a missing
    /// object.)
    pub fn check_bucket(&self) -> Result<()> {
        let client = self.client.clone();
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        let what = || "listing the blobs".to_string();
        self.run(what, async move {
            client.list_with_delimiter(prefix.as_ref()).await.map(drop)
        })?
        .map_err(|e| self.client_failure(what(), e))
    }

    /// The names of the objects under the prefix (tests and operators' checks).
    pub fn list_object_names(&self) -> Result<Vec<String>> {
        let client = self.client.clone();
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        let what = || "listing the blobs".to_string();
        self.run(what, async move {
            use futures_util::TryStreamExt as _;
            client
                .list(prefix.as_ref())
                .map_ok(|meta| meta.location.to_string())
                .try_collect::<Vec<_>>()
                .await
        })?
        .map_err(|e| self.client_failure(what(), e))
    }
}

impl BlobStore for S3BlobStore {
    fn put(&self, id: BlobId, bytes: &[u8]) -> Result<()> {
        let client = self.client.clone();
        let path = self.path(id);
        let payload = object_store::PutPayload::from(bytes.to_vec());
        let what = || format!("storing blob {id}");
        self.run(what, async move { client.put(&path, payload).await })?
            .map_err(|e| self.client_failure(what(), e))?;
        tracing::debug!(blob = %id, size = bytes.len(), "blob stored in the object store");
        Ok(())
    }

    fn get(&self, id: BlobId) -> Result<Vec<u8>> {
        let client = self.client.clone();
        let path = self.path(id);
        let what = || format!("reading blob {id}");
        let got = self.run(what, async move {
            match client.get(&path).await {
                Ok(result) => result.bytes().await,
                Err(e) => Err(e),
            }
        })?;
        match got {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(object_store::Error::NotFound { .. }) => Err(StoreError::NoSuchBlob(id)),
            Err(e) => Err(self.client_failure(what(), e)),
        }
    }

    fn delete(&self, id: BlobId) -> Result<()> {
        let client = self.client.clone();
        let path = self.path(id);
        let what = || format!("deleting blob {id}");
        // S3 answers 204 for a missing object too; a store that says 404 instead means the
        // same: the blob is gone.
        match self.run(what, async move { client.delete(&path).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.client_failure(what(), e)),
        }
    }
}

impl Drop for S3BlobStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics when the last handle goes away inside
        // another runtime (the hub's): let its threads wind down on their own instead.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(endpoint: &str) -> S3Options {
        S3Options {
            endpoint: endpoint.into(),
            bucket: "mshub".into(),
            region: "garage".into(),
            prefix: "/blobs/".into(),
            access_key_id: "GK0123".into(),
            secret_access_key: "very secret".into(),
        }
    }

    #[test]
    fn object_names_fan_out_on_the_first_byte_under_the_prefix() {
        let store = S3BlobStore::connect(&options("http://127.0.0.1:1")).unwrap();
        let id = BlobId::try_from("abcdef0123456789abcdef0123456789").unwrap();
        assert_eq!(
            store.object_name(id),
            "blobs/ab/abcdef0123456789abcdef0123456789"
        );
        let mut bare = options("http://127.0.0.1:1");
        bare.prefix = String::new();
        let store = S3BlobStore::connect(&bare).unwrap();
        assert_eq!(store.object_name(id), "ab/abcdef0123456789abcdef0123456789");
    }

    #[test]
    fn an_endpoint_without_scheme_or_a_missing_credential_is_refused_with_the_reason() {
        let err = S3BlobStore::connect(&options("s3.example.org"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("must start with https://"), "{err}");
        let mut no_secret = options("https://s3.example.org");
        no_secret.secret_access_key = " ".into();
        let err = S3BlobStore::connect(&no_secret).err().unwrap().to_string();
        assert!(err.contains("secret access key is empty"), "{err}");
    }

    #[test]
    fn the_secret_is_not_in_the_debug_form() {
        let shown = format!("{:?}", options("https://s3.example.org"));
        assert!(shown.contains("GK0123"), "{shown}");
        assert!(!shown.contains("very secret"), "{shown}");
    }

    #[test]
    fn an_unreachable_store_is_a_clear_error_not_a_panic_even_inside_a_runtime() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let store = S3BlobStore::connect(&options("http://127.0.0.1:1")).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let err = rt.block_on(async {
            // Called from an async task's thread, as a careless caller might.
            let err = store.get(BlobId::random()).unwrap_err().to_string();
            drop(store);
            err
        });
        assert!(err.contains("reading blob"), "{err}");
        // The cause, from deep in the client's error chain, and proof that it retried.
        assert!(err.contains("Connection refused"), "{err}");
        assert!(err.contains("retries"), "{err}");
        assert!(err.contains("127.0.0.1:1"), "{err}");
    }

    /// A one-thread HTTP server that answers each request with the next of `statuses` (then
    /// 200), one request per connection, and counts what it got.
    struct Scripted {
        port: u16,
        requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    fn scripted(statuses: &'static [u16]) -> Scripted {
        use std::io::{BufRead as _, Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = std::io::BufReader::new(stream);
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let status = statuses.get(n).copied().unwrap_or(200);
                let reply = format!(
                    "HTTP/1.1 {status} Scripted\r\nETag: \"e{n}\"\r\nContent-Length: 0\r\n\
                     Connection: close\r\n\r\n"
                );
                let _ = reader.get_mut().write_all(reply.as_bytes());
            }
        });
        Scripted { port, requests }
    }

    #[test]
    fn a_put_is_retried_through_transient_server_errors() {
        let server = scripted(&[503, 500]);
        let store =
            S3BlobStore::connect(&options(&format!("http://127.0.0.1:{}", server.port))).unwrap();
        store.put(BlobId::random(), b"sealed").unwrap();
        assert_eq!(server.requests.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[test]
    fn a_refusal_is_not_retried_and_says_why() {
        let server = scripted(&[403, 403, 403]);
        let store =
            S3BlobStore::connect(&options(&format!("http://127.0.0.1:{}", server.port))).unwrap();
        let err = store
            .put(BlobId::random(), b"sealed")
            .unwrap_err()
            .to_string();
        assert!(err.contains("storing blob"), "{err}");
        assert!(err.contains("403"), "{err}");
        assert_eq!(server.requests.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
