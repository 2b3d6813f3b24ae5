//! Answers kept on disk by request: one file per request, named by a hash of its method, URL and
//! body, holding a header line (what was asked, when, and the status) and the body as it came.
//! Files appear by a rename, so a reader never sees half of one and several processes can share
//! the folder.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// One stored answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) head: Head,
    pub(crate) body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Head {
    pub(crate) method: String,
    pub(crate) url: String,
    pub(crate) status: u16,
    pub(crate) fetched_ms: i64,
    #[serde(default)]
    pub(crate) content_type: Option<String>,
    /// The response headers a client may need later (paging links, revisions), lower-cased.
    #[serde(default)]
    pub(crate) headers: std::collections::BTreeMap<String, String>,
}

/// The name a request is stored under.
pub(crate) fn key(method: &str, url: &str, body: Option<&[u8]>) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(url.as_bytes());
    h.update(b"\n");
    if let Some(body) = body {
        h.update(body);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone)]
pub(crate) struct Cache {
    root: PathBuf,
}

static WRITES: AtomicU64 = AtomicU64::new(0);

impl Cache {
    pub(crate) fn new(root: PathBuf) -> Cache {
        Cache { root }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(&key[..2]).join(key)
    }

    /// The stored answer, if there is a readable one. A damaged file reads as none (and is
    /// replaced by the next answer), so a cache cut short by a crash never blocks a crawl.
    pub(crate) fn get(&self, key: &str) -> Option<Entry> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let split = bytes.iter().position(|b| *b == b'\n')?;
        match serde_json::from_slice::<Head>(&bytes[..split]) {
            Ok(head) => Some(Entry { head, body: bytes[split + 1..].to_vec() }),
            Err(e) => {
                tracing::warn!(file = %self.path(key).display(), "a damaged cache entry is ignored: {e}");
                None
            }
        }
    }

    /// Where a downloaded file is kept.
    pub(crate) fn file_path(&self, key: &str) -> PathBuf {
        self.root.join("files").join(&key[..2]).join(key)
    }

    pub(crate) fn put(&self, key: &str, entry: &Entry) -> std::io::Result<()> {
        let path = self.path(key);
        let dir = path.parent().expect("a cache entry lives in a folder");
        std::fs::create_dir_all(dir)?;
        let n = WRITES.fetch_add(1, Ordering::Relaxed);
        let partial = dir.join(format!(".{key}.{}.{n}.partial", std::process::id()));
        let written = write_entry(&partial, entry).and_then(|()| std::fs::rename(&partial, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        written
    }
}

fn write_entry(path: &Path, entry: &Entry) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    let head = serde_json::to_vec(&entry.head).expect("a cache header serializes");
    file.write_all(&head)?;
    file.write_all(b"\n")?;
    file.write_all(&entry.body)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damage_reads_as_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        let k = key("GET", "http://x/a?b=1", None);
        assert_eq!(k.len(), 64);
        assert_ne!(k, key("GET", "http://x/a?b=2", None));
        assert_ne!(key("POST", "http://x/a", Some(b"1")), key("POST", "http://x/a", Some(b"2")));
        assert!(cache.get(&k).is_none());
        let entry = Entry {
            head: Head {
                method: "GET".into(),
                url: "http://x/a?b=1".into(),
                status: 200,
                fetched_ms: 5,
                content_type: Some("application/json".into()),
                headers: [("link".to_string(), "<http://x/a?cursor=1>; rel=\"next\"".to_string())].into(),
            },
            body: b"{\"a\":\n1}".to_vec(),
        };
        cache.put(&k, &entry).unwrap();
        assert_eq!(cache.get(&k), Some(entry));
        std::fs::write(cache.path(&k), b"not a header\nbody").unwrap();
        assert!(cache.get(&k).is_none());
        let leftovers = std::fs::read_dir(cache.path(&k).parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no partial file is left behind");
    }
}
