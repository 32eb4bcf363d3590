//! The file half of a Storage SCP's per-object path: a staged file created
//! and its header written in one call, and a batch of staged files flushed
//! (fsync) and closed in another, so that an SCP thread gives up the
//! interpreter lock twice per object instead of once per system call.
//!
//! Policy (where files go, what is checked, the rename) stays with the caller.

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Attempts at a fresh name before giving up (each collision is a 2^-128 event, or a hostile folder).
const NAME_ATTEMPTS: usize = 16;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// 32 hex digits no other call of this process gives: a counter mixed with the
/// per-process random keys of std's `RandomState`, the time and the process id.
/// Uniqueness across processes is left to `O_EXCL` (the caller retries).
fn fresh_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut halves = [0u64; 2];
    for (k, half) in halves.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u64(nanos);
        h.write_u32(std::process::id());
        h.write_usize(k);
        *half = h.finish();
    }
    format!("{:016x}{:016x}", halves[0], halves[1])
}

/// Create `<dir>/<32 hex digits><suffix>` (never an existing file) and write `header` into it.
///
/// On a write error the new file is removed again.
pub fn stage_file(dir: &Path, suffix: &str, header: &[u8]) -> io::Result<(File, PathBuf)> {
    let mut last = None;
    for _ in 0..NAME_ATTEMPTS {
        let path = dir.join(format!("{}{}", fresh_name(), suffix));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                if let Err(e) = f.write_all(header) {
                    drop(f);
                    let _ = std::fs::remove_file(&path);
                    return Err(e);
                }
                return Ok((f, path));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no fresh name")))
}

/// fsync each file, then close it; one result per file, in order.
///
/// The first file is flushed here; when that took longer than `parallel_after`
/// (a disk where a flush waits for the device) the rest are flushed on up to
/// `threads` threads at once, otherwise (tmpfs, a cache with power-loss
/// protection) here, one after the other, without starting any thread.
pub fn sync_files(
    files: Vec<File>,
    parallel_after: Duration,
    threads: usize,
) -> Vec<io::Result<()>> {
    let mut out: Vec<io::Result<()>> = Vec::with_capacity(files.len());
    let mut rest = files.into_iter();
    let Some(first) = rest.next() else {
        return out;
    };
    let t0 = Instant::now();
    out.push(first.sync_all());
    drop(first);
    let rest: Vec<File> = rest.collect();
    let threads = threads.max(1).min(rest.len());
    if threads <= 1 || t0.elapsed() <= parallel_after {
        out.extend(rest.into_iter().map(|f| f.sync_all()));
        return out;
    }
    let chunk = rest.len().div_ceil(threads);
    let mut results: Vec<Vec<io::Result<()>>> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = rest
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(File::sync_all).collect::<Vec<_>>()))
            .collect();
        for (h, part) in handles.into_iter().zip(rest.chunks(chunk)) {
            // A thread that panicked (it cannot: sync_all returns errors) counts as failed flushes.
            results.push(h.join().unwrap_or_else(|_| {
                part.iter()
                    .map(|_| Err(io::Error::other("flush thread failed")))
                    .collect()
            }));
        }
    });
    drop(rest);
    out.extend(results.into_iter().flatten());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fastdicom-staging-{}-{}", tag, fresh_name()));
        std::fs::create_dir(&d).unwrap();
        d
    }

    #[test]
    fn names_are_fresh_and_hex() {
        let a = fresh_name();
        let b = fresh_name();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn stage_writes_header_and_never_reuses_a_file() {
        let d = tmpdir("stage");
        let (f, p) = stage_file(&d, ".part", b"DICM-header").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&p).unwrap(), b"DICM-header");
        assert!(p.to_str().unwrap().ends_with(".part"));
        let (f2, p2) = stage_file(&d, ".part", b"").unwrap();
        drop(f2);
        assert_ne!(p, p2);
        assert_eq!(std::fs::read(&p).unwrap(), b"DICM-header");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn stage_in_a_missing_folder_fails() {
        let d = tmpdir("missing");
        std::fs::remove_dir(&d).unwrap();
        let e = stage_file(&d, ".part", b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn sync_in_order_sequential_and_parallel() {
        let d = tmpdir("sync");
        for (after, threads) in [
            (Duration::from_secs(100), 4),
            (Duration::ZERO, 4),
            (Duration::ZERO, 1),
        ] {
            let files: Vec<File> = (0..7)
                .map(|_| stage_file(&d, ".part", b"ab").unwrap().0)
                .collect();
            let got = sync_files(files, after, threads);
            assert_eq!(got.len(), 7);
            assert!(got.iter().all(|r| r.is_ok()));
        }
        assert!(sync_files(Vec::new(), Duration::ZERO, 4).is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
