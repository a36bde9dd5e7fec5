//! On-disk cache of compiled components.
//!
//! Why: compiling a Rust component takes milliseconds but a Python or JS one
//! takes seconds; loading the serialized code takes about a millisecond.
//! Safety: `Component::deserialize_file` trusts its input, so only files
//! this module wrote are ever deserialized: the directory is daemon-owned
//! (created 0700), names are `sha256(wasm)-engine_digest.cwasm`, files are
//! written to a temp name and renamed into place, and precompiled bytes
//! handed to [`super::PluginHost`] from outside are refused.

use super::error::LoadError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::Engine;
use wasmtime::component::Component;

pub(crate) struct CompileCache {
    dir: Option<PathBuf>,
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
        if let Some(d) = &dir {
            std::fs::create_dir_all(d).map_err(|e| LoadError::Io {
                path: d.display().to_string(),
                message: format!("cannot create the plugin cache directory: {e}"),
            })?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700));
            }
        }
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
    #[expect(
        unsafe_code,
        reason = "wasmtime deserializes compiled code only through unsafe; each site says why its bytes are our own"
    )]
    pub(crate) fn load(&self, engine: &Engine, wasm: &[u8], sha: &str) -> Result<Component, LoadError> {
        if Engine::detect_precompiled(wasm).is_some() {
            return Err(LoadError::Precompiled);
        }
        check_header(wasm)?;
        let Some(dir) = &self.dir else {
            self.compiles.fetch_add(1, Ordering::Relaxed);
            return Component::new(engine, wasm).map_err(|e| LoadError::Compile(format!("{e:#}")));
        };
        let path = self.path_for(dir, sha);
        if path.is_file() {
            // SAFETY: the file is in our own cache directory, named by the
            // sha256 of the source and the engine digest, and written only
            // by `store` below (temp file + rename) from our own compiler.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(c);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = format!("{e:#}"), "discarding unreadable compiled plugin cache entry");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        // Validate as a component first so a core module or garbage gets a
        // clear error rather than a compile failure deep in Cranelift.
        let compiled = engine
            .precompile_component(wasm)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        self.compiles.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.store(&path, &compiled) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the compiled plugin cache entry; continuing without it");
            // SAFETY: bytes just produced by this engine's own compiler.
            return unsafe { Component::deserialize(engine, &compiled) }
                .map_err(|e| LoadError::Compile(format!("{e:#}")));
        }
        // SAFETY: as above; the file was just written by us.
        unsafe { Component::deserialize_file(engine, &path) }.map_err(|e| LoadError::Compile(format!("{e:#}")))
    }

    fn store(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let dir = path.parent().expect("cache path has a parent");
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let tmp = dir.join(format!(
            ".tmp-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            path.file_name().and_then(|n| n.to_str()).unwrap_or("x")
        ));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}
