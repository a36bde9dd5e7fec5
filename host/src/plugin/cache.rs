//! On-disk cache of compiled components.
//!
//! Why: compiling a Rust component takes milliseconds but a Python or JS one
//! takes seconds; loading the serialized code takes about a millisecond.
//! Safety: `Component::deserialize` trusts its input (it is native code), so
//! only bytes this process's compiler produced are ever deserialized. Each
//! entry `sha256(wasm)-engine_digest.cwasm` has a sidecar `.cwasm.mac`: an
//! HMAC-SHA256 over the entry's name and bytes under a 32-byte random key
//! that only the daemon's user can read (`cache.key`, 0600). An entry whose
//! MAC is missing or wrong (planted, swapped from another name, truncated) is
//! refused, logged, deleted and recompiled from the wasm bytes; precompiled
//! bytes handed to [`super::PluginHost`] from outside are refused outright.

use super::error::LoadError;
use crate::config::state_dir::{PrivateFile, StateDir, read_private, write_private};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::Engine;
use wasmtime::component::Component;

/// HMAC-SHA256, the MAC of cache entries.
type CacheMac = Hmac<Sha256>;

/// Length of the cache key in bytes.
const KEY_LEN: usize = 32;

/// A cache directory and the key that authenticates its entries.
struct CacheDir {
    path: PathBuf,
    key: [u8; KEY_LEN],
}

/// Bytes that this process's compiler produced: either just returned by
/// `precompile_component`, or read from the cache with a valid MAC. The only
/// input [`deserialize_own`] accepts.
struct OwnCompiled<'a>(&'a [u8]);

/// Loads compiled bytes into `engine`.
#[expect(unsafe_code, reason = "wasmtime cannot check serialized native code; the caller proves where it came from")]
fn deserialize_own(engine: &Engine, code: OwnCompiled<'_>) -> Result<Component, LoadError> {
    // SAFETY: `Component::deserialize` is sound for bytes produced by
    // `Engine::precompile_component` of a compatible engine. An `OwnCompiled`
    // is only made from this engine's own `precompile_component` output, or
    // from a cache file whose HMAC (keyed with a secret only this user can
    // read, over the file's name, which includes the engine digest) verified,
    // which proves this daemon wrote exactly these bytes for this engine.
    unsafe { Component::deserialize(engine, code.0) }.map_err(|e| LoadError::Compile(format!("{e:#}")))
}

pub(crate) struct CompileCache {
    dir: Option<CacheDir>,
    engine_digest: String,
    compiles: AtomicU64,
    hits: AtomicU64,
}

/// Cache counters. Why public: a test (and `/metrics`) can prove a second
/// load skipped compilation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct CacheStats {
    /// Components compiled by Cranelift since the host started.
    pub compiles: u64,
    /// Components loaded from the on-disk cache instead of compiled.
    pub hits: u64,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Refuse what is clearly not a component before compiling, with a message
/// that says what the file is.
fn check_header(wasm: &[u8]) -> Result<(), LoadError> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(LoadError::Invalid("the file is not a WebAssembly binary (no `\\0asm` header)".into()));
    }
    match wasm[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(LoadError::Invalid(
            "the file is a core WebAssembly module, not a component (wrap it with `wasm-tools component new` or build for wasm32-wasip2)".into(),
        )),
        _ => Err(LoadError::Invalid("unknown WebAssembly binary version".into())),
    }
}

impl CompileCache {
    pub(crate) fn new(dir: Option<PathBuf>, engine_digest: String) -> Result<Self, LoadError> {
        let dir = match dir {
            None => None,
            Some(d) => {
                let io = |message: String| LoadError::Io { path: d.display().to_string(), message };
                {
                    use std::os::unix::fs::DirBuilderExt;
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(&d)
                        .map_err(|e| io(format!("cannot create the plugin cache directory: {e}")))?;
                }
                {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700));
                }
                let key = load_key(&StateDir::cache_key_for(&d)).map_err(|(path, e)| LoadError::Io {
                    path: path.display().to_string(),
                    message: format!("cannot read or create the plugin cache key: {e}"),
                })?;
                Some(CacheDir { path: d, key })
            }
        };
        Ok(CompileCache { dir, engine_digest, compiles: AtomicU64::new(0), hits: AtomicU64::new(0) })
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats { compiles: self.compiles.load(Ordering::Relaxed), hits: self.hits.load(Ordering::Relaxed) }
    }

    fn path_for(&self, dir: &Path, sha: &str) -> PathBuf {
        dir.join(format!("{sha}-{}.cwasm", &self.engine_digest[..32]))
    }

    /// Compile `wasm` (a component in binary or text form), or load it from
    /// the cache. `sha` is its sha256.
    pub(crate) fn load(&self, engine: &Engine, wasm: &[u8], sha: &str) -> Result<Component, LoadError> {
        if Engine::detect_precompiled(wasm).is_some() {
            return Err(LoadError::Precompiled);
        }
        check_header(wasm)?;
        let Some(dir) = &self.dir else {
            self.compiles.fetch_add(1, Ordering::Relaxed);
            return Component::new(engine, wasm).map_err(|e| LoadError::Compile(format!("{e:#}")));
        };
        let path = self.path_for(&dir.path, sha);
        let mac_path = mac_path(&path);
        if path.exists() || mac_path.exists() {
            match dir.read_verified(&path) {
                Ok(bytes) => match deserialize_own(engine, OwnCompiled(&bytes)) {
                    Ok(c) => {
                        self.hits.fetch_add(1, Ordering::Relaxed);
                        return Ok(c);
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "discarding unreadable compiled plugin cache entry");
                    }
                },
                Err(why) => tracing::warn!(
                    path = %path.display(),
                    "refusing compiled plugin cache entry: {why}; deleting it and recompiling from the wasm"
                ),
            }
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(&mac_path);
        }
        // Validate as a component first so a core module or garbage gets a
        // clear error rather than a compile failure deep in Cranelift.
        let compiled = engine.precompile_component(wasm).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        self.compiles.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = dir.store(&path, &compiled) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the compiled plugin cache entry; continuing without it");
        }
        deserialize_own(engine, OwnCompiled(&compiled))
    }
}

/// The MAC sidecar of cache entry `path`.
fn mac_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".mac");
    PathBuf::from(name)
}

/// A temporary name in `path`'s directory, unique to this writer.
fn tmp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("x");
    path.with_file_name(format!(".tmp-{}-{}-{name}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// Reads the cache key at `path`, or creates one. A key file that others
/// could read or replace is not trusted: a new key is written, which makes
/// every existing entry fail its MAC and be recompiled.
fn load_key(path: &Path) -> Result<[u8; KEY_LEN], (PathBuf, std::io::Error)> {
    let err = |e| (path.to_path_buf(), e);
    match read_private(path).map_err(err)? {
        PrivateFile::Private(bytes) => {
            if let Ok(key) = <[u8; KEY_LEN]>::try_from(bytes.as_slice()) {
                return Ok(key);
            }
            tracing::warn!(path = %path.display(), "the plugin cache key has the wrong length; writing a new one");
        }
        PrivateFile::Exposed { mode, owner } => tracing::warn!(
            path = %path.display(),
            "the plugin cache key has mode {mode:04o} and owner uid {owner}, so others may know it: writing a new one (cached plugins are recompiled)"
        ),
        PrivateFile::Missing => {}
    }
    let key: [u8; KEY_LEN] = {
        use rand::Rng;
        rand::rng().random()
    };
    write_private(&tmp_path(path), path, &key).map_err(err)?;
    Ok(key)
}

impl CacheDir {
    /// The MAC of entry `path` holding `bytes`: over the file name (which
    /// names the source hash and the engine) and the bytes, so an entry
    /// moved under another name does not verify either.
    fn mac(&self, path: &Path, bytes: &[u8]) -> CacheMac {
        let name = path.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default();
        let mut mac =
            CacheMac::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(&(name.len() as u64).to_be_bytes());
        mac.update(name);
        mac.update(bytes);
        mac
    }

    /// The entry's bytes if its sidecar MAC verifies; otherwise why not.
    fn read_verified(&self, path: &Path) -> Result<Vec<u8>, String> {
        let tag = match std::fs::read_to_string(mac_path(path)) {
            Ok(t) => hex::decode(t.trim()).map_err(|_| "its MAC file is not hex".to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("it has no MAC file".into());
            }
            Err(e) => return Err(format!("cannot read its MAC file: {e}")),
        };
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
        self.mac(path, &bytes)
            .verify_slice(&tag)
            .map_err(|_| "its MAC does not match (not written by this daemon)".to_string())?;
        Ok(bytes)
    }

    /// Writes the entry and then its MAC, each 0600 through a temporary file.
    fn store(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let tag = hex::encode(self.mac(path, bytes).finalize().into_bytes());
        write_private(&tmp_path(path), path, bytes)?;
        let mac = mac_path(path);
        write_private(&tmp_path(&mac), &mac, tag.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::builtin::builtin_component;

    fn engine() -> Engine {
        let opts = crate::plugin::EngineOptions { pooling: false, ..Default::default() };
        crate::plugin::engine::build_engine(&opts).unwrap().0
    }

    fn entries(dir: &Path, ext: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn entries_are_private_and_planted_or_swapped_ones_are_recompiled() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let engine = engine();
        let digest = crate::plugin::engine::compatibility_digest(&engine);
        let cache = CompileCache::new(Some(tmp.path().to_path_buf()), digest.clone()).unwrap();
        let (a, b) = (builtin_component("drill-sim").unwrap(), builtin_component("appease-script").unwrap());
        let (sa, sb) = (sha256_hex(a), sha256_hex(b));
        cache.load(&engine, a, &sa).unwrap();
        cache.load(&engine, b, &sb).unwrap();
        assert_eq!(cache.stats(), CacheStats { compiles: 2, hits: 0 });
        for p in std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().path()) {
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600, "{}", p.display());
        }
        assert_eq!(entries(tmp.path(), "mac").len(), 2);
        let path_a = cache.path_for(tmp.path(), &sa);
        let path_b = cache.path_for(tmp.path(), &sb);

        // A fresh cache on the same directory (same key) hits.
        let again = CompileCache::new(Some(tmp.path().to_path_buf()), digest.clone()).unwrap();
        again.load(&engine, a, &sa).unwrap();
        assert_eq!(again.stats(), CacheStats { compiles: 0, hits: 1 });

        // Garbage under a valid name, with the old MAC: refused and recompiled.
        std::fs::write(&path_a, b"garbage, not compiled code").unwrap();
        // Another entry's bytes and MAC under a's name: refused too.
        std::fs::copy(&path_b, &path_a).unwrap();
        std::fs::copy(mac_path(&path_b), mac_path(&path_a)).unwrap();
        let c = CompileCache::new(Some(tmp.path().to_path_buf()), digest.clone()).unwrap();
        c.load(&engine, a, &sa).unwrap();
        assert_eq!(c.stats(), CacheStats { compiles: 1, hits: 0 });
        // The recompiled entry verifies again.
        let d = CompileCache::new(Some(tmp.path().to_path_buf()), digest.clone()).unwrap();
        d.load(&engine, a, &sa).unwrap();
        assert_eq!(d.stats(), CacheStats { compiles: 0, hits: 1 });

        // No MAC file at all: refused.
        std::fs::remove_file(mac_path(&path_b)).unwrap();
        let e = CompileCache::new(Some(tmp.path().to_path_buf()), digest.clone()).unwrap();
        e.load(&engine, b, &sb).unwrap();
        assert_eq!(e.stats(), CacheStats { compiles: 1, hits: 0 });

        // A new key (the old one was exposed) invalidates every entry.
        let key = tmp.path().join("cache.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let f = CompileCache::new(Some(tmp.path().to_path_buf()), digest).unwrap();
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        f.load(&engine, a, &sa).unwrap();
        assert_eq!(f.stats(), CacheStats { compiles: 1, hits: 0 });
    }
}
