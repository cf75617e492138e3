//! File I/O behind a small trait, so tests can inject faults and crashes.
//!
//! [`RealFs`] is the operating system. The simulated file system used by the
//! tests (`sim`) keeps, per file, the bytes the "disk" holds and the bytes the
//! "page cache" shows: a crash throws away everything not fsynced, including
//! directory entries created or renamed since the directory's last fsync.
//!
//! Invariant: every method maps one-to-one to a system call (or a loop of one
//! for short transfers in `write_all_at`), so a fault injected at the Nth call
//! is a fault the kernel could really report there.

use std::io;
use std::path::Path;
use std::sync::Arc;

/// An open file: positioned reads and writes, size, truncate, fsync.
pub(crate) trait FsFile: Send + Sync {
    /// `pread`: may return fewer bytes than asked, 0 at end of file.
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    /// `pwrite`: may write fewer bytes than given.
    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize>;
    /// Current size in bytes.
    fn len(&self) -> io::Result<u64>;
    /// `ftruncate`.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// `fdatasync`.
    fn sync(&self) -> io::Result<()>;

    /// Writes all of `buf` at `pos`, retrying short writes.
    fn write_all_at(&self, mut buf: &[u8], mut pos: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_at(buf, pos) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "write returned 0 bytes",
                    ))
                }
                Ok(n) => {
                    buf = &buf[n..];
                    pos += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads until `buf` is full or end of file; returns the bytes read.
    fn read_full_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.read_at(&mut buf[done..], pos + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Reads the whole file.
    fn read_all(&self) -> io::Result<Vec<u8>> {
        let len = self.len()?;
        let mut buf = vec![0; len as usize];
        let n = self.read_full_at(&mut buf, 0)?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// Directory-level operations.
pub(crate) trait Fs: Send + Sync {
    /// Opens `path` read-write, creating it if `create`.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FsFile>>;
    /// Opens `path` read-only (for `check`).
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn FsFile>>;
    /// Names (not paths) of the entries of `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Atomic `rename`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// `unlink`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// `mkdir -p`.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// fsync of the directory, making creations, renames and removals durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The operating system's file system.
pub(crate) struct RealFs;

struct RealFile(std::fs::File);

impl FsFile for RealFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.0, buf, pos)
    }
    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::write_at(&self.0, buf, pos)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Fs for RealFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FsFile>> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .open(path)?;
        Ok(Arc::new(RealFile(f)))
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        Ok(Arc::new(RealFile(std::fs::File::open(path)?)))
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            if let Some(name) = e?.file_name().to_str() {
                out.push(name.to_owned());
            }
        }
        Ok(out)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
pub(crate) mod sim {
    //! A simulated file system with a page cache, fault injection and crashes.

    use super::{Fs, FsFile};
    use std::collections::{BTreeMap, HashMap};
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    use std::time::Duration;

    #[derive(Default)]
    struct FileData {
        /// What reads see (the page cache).
        cache: Vec<u8>,
        /// What survives a crash.
        disk: Vec<u8>,
    }

    /// Faults armed for upcoming calls, counted from when they were armed.
    #[derive(Default, Clone, Copy, Debug)]
    pub struct Faults {
        /// Fail the Nth `write_at` from now (1 = the next one), after writing half of it.
        pub fail_write: Option<u64>,
        /// Make the Nth `write_at` from now short (writes half, returns Ok).
        pub short_write: Option<u64>,
        /// Fail the Nth file fsync from now.
        pub fail_fsync: Option<u64>,
    }

    #[derive(Default)]
    struct State {
        files: HashMap<u64, FileData>,
        /// Directory entries as the page cache sees them.
        names: BTreeMap<PathBuf, u64>,
        /// Directory entries that survive a crash.
        durable_names: BTreeMap<PathBuf, u64>,
        next_id: u64,
        /// Bumped by a crash: handles from before it fail every call.
        generation: u64,
        faults: Faults,
        writes: u64,
        fsyncs: u64,
    }

    /// Test controls that block the caller, kept apart from `State` so a
    /// blocked write does not hold the file system's lock.
    #[derive(Default)]
    struct Gate {
        hold_writes: Mutex<bool>,
        released: Condvar,
        fsync_delay: Mutex<Duration>,
    }

    /// The simulated file system. Cheap to clone; clones share state. A
    /// handle from [`SimFs::process`] belongs to one "process": after a crash
    /// it fails every call, so a dying log's flusher cannot touch the disk
    /// the next one recovers from.
    #[derive(Clone, Default)]
    pub struct SimFs(Arc<Mutex<State>>, Arc<Gate>, Option<u64>);

    struct SimFile {
        fs: SimFs,
        id: u64,
        generation: u64,
    }

    fn crashed() -> io::Error {
        io::Error::other("simulated machine crashed")
    }

    impl SimFs {
        fn lock(&self) -> MutexGuard<'_, State> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
        /// A handle for one process, dead after the next crash.
        pub fn process(&self) -> SimFs {
            let generation = self.lock().generation;
            SimFs(self.0.clone(), self.1.clone(), Some(generation))
        }
        /// Locks the state for a directory operation of this handle.
        fn op(&self) -> io::Result<MutexGuard<'_, State>> {
            let s = self.lock();
            match self.2 {
                Some(g) if g != s.generation => Err(crashed()),
                _ => Ok(s),
            }
        }
        /// Arms faults (replacing any armed before).
        pub fn arm(&self, faults: Faults) {
            self.lock().faults = faults;
        }
        /// Disarms every fault.
        pub fn disarm(&self) {
            self.lock().faults = Faults::default();
        }
        /// While held, every `write_at` blocks (the data stays in the log's buffer).
        pub fn hold_writes(&self, hold: bool) {
            *self
                .1
                .hold_writes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = hold;
            self.1.released.notify_all();
        }
        /// Makes every fsync take this long (as a disk would).
        pub fn set_fsync_delay(&self, d: Duration) {
            *self
                .1
                .fsync_delay
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = d;
        }
        /// File fsyncs so far.
        pub fn fsyncs(&self) -> u64 {
            self.lock().fsyncs
        }
        /// Drops everything not fsynced; open handles stop working.
        pub fn crash(&self) {
            let mut s = self.lock();
            s.generation += 1;
            s.names = s.durable_names.clone();
            let live: Vec<u64> = s.names.values().copied().collect();
            s.files.retain(|id, _| live.contains(id));
            for f in s.files.values_mut() {
                f.cache = f.disk.clone();
            }
            s.faults = Faults::default();
        }
        /// Flips one bit of a file as both cache and disk see it.
        pub fn flip(&self, path: &Path, pos: usize) {
            let mut s = self.lock();
            let id = s.names[path];
            let f = s.files.get_mut(&id).expect("file exists");
            f.cache[pos] ^= 0x04;
            f.disk[pos] ^= 0x04;
        }
        /// Names of files in the page cache's view.
        pub fn names(&self) -> Vec<PathBuf> {
            self.lock().names.keys().cloned().collect()
        }
    }

    fn tick(counter: &mut Option<u64>) -> bool {
        match counter {
            Some(1) => {
                *counter = None;
                true
            }
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }

    impl SimFile {
        fn with<T>(&self, f: impl FnOnce(&mut State, u64) -> io::Result<T>) -> io::Result<T> {
            let mut s = self.fs.lock();
            if s.generation != self.generation {
                return Err(crashed());
            }
            f(&mut s, self.id)
        }
    }

    impl FsFile for SimFile {
        fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
            self.with(|s, id| {
                let data = &s.files[&id].cache;
                let pos = (pos as usize).min(data.len());
                let n = buf.len().min(data.len() - pos);
                buf[..n].copy_from_slice(&data[pos..pos + n]);
                Ok(n)
            })
        }
        fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize> {
            let gate = &self.fs.1;
            let mut held = gate
                .hold_writes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while *held {
                held = gate
                    .released
                    .wait(held)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            drop(held);
            self.with(|s, id| {
                s.writes += 1;
                let fail = tick(&mut s.faults.fail_write);
                let short = tick(&mut s.faults.short_write);
                let n = if (fail || short) && buf.len() > 1 {
                    buf.len() / 2
                } else {
                    buf.len()
                };
                let data = &mut s.files.get_mut(&id).expect("open file exists").cache;
                let pos = pos as usize;
                if data.len() < pos + n {
                    data.resize(pos + n, 0);
                }
                data[pos..pos + n].copy_from_slice(&buf[..n]);
                if fail {
                    return Err(io::Error::other("simulated write failure (EIO)"));
                }
                Ok(n)
            })
        }
        fn len(&self) -> io::Result<u64> {
            self.with(|s, id| Ok(s.files[&id].cache.len() as u64))
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.with(|s, id| {
                s.files
                    .get_mut(&id)
                    .expect("open file exists")
                    .cache
                    .resize(len as usize, 0);
                Ok(())
            })
        }
        fn sync(&self) -> io::Result<()> {
            let delay = *self
                .fs
                .1
                .fsync_delay
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            self.with(|s, id| {
                s.fsyncs += 1;
                if tick(&mut s.faults.fail_fsync) {
                    // Like Linux after a failed writeback: the dirty data may be
                    // gone from the disk while the cache still shows it.
                    return Err(io::Error::other("simulated fsync failure (EIO)"));
                }
                let f = s.files.get_mut(&id).expect("open file exists");
                f.disk = f.cache.clone();
                Ok(())
            })
        }
    }

    impl Fs for SimFs {
        fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FsFile>> {
            let mut s = self.op()?;
            let id = match s.names.get(path) {
                Some(id) => *id,
                None if create => {
                    s.next_id += 1;
                    let id = s.next_id;
                    s.files.insert(id, FileData::default());
                    s.names.insert(path.to_owned(), id);
                    id
                }
                None => return Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
            };
            let generation = s.generation;
            drop(s);
            Ok(Arc::new(SimFile {
                fs: self.clone(),
                id,
                generation,
            }))
        }
        fn open_read(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
            self.open(path, false)
        }
        fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
            let s = self.op()?;
            Ok(s.names
                .keys()
                .filter(|p| p.parent() == Some(dir))
                .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
                .collect())
        }
        fn exists(&self, path: &Path) -> io::Result<bool> {
            Ok(self.op()?.names.contains_key(path))
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            let mut s = self.op()?;
            let id = s
                .names
                .remove(from)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
            s.names.insert(to.to_owned(), id);
            Ok(())
        }
        fn remove(&self, path: &Path) -> io::Result<()> {
            let mut s = self.op()?;
            s.names
                .remove(path)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
            Ok(())
        }
        fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
            Ok(())
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            let mut s = self.op()?;
            let s = &mut *s;
            s.durable_names.retain(|p, _| p.parent() != Some(dir));
            for (p, id) in &s.names {
                if p.parent() == Some(dir) {
                    s.durable_names.insert(p.clone(), *id);
                }
            }
            Ok(())
        }
    }
}
