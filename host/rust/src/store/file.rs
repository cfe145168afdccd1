//! The file store, the default: a base snapshot (`<path>`) and a log of deltas, one JSON line
//! each (`<path>.log`), under an advisory lock (`<path>.lock`): appends and loads hold it
//! shared, a fold exclusive. An append is one `write` to a file opened `O_APPEND`, so lines of
//! concurrent writers never interleave, and a reader ignores a tail without its `\n`. A fold
//! writes the new base and an empty log to temporary files and renames them into place, so a
//! reader sees the old state or the new one, and the log's new inode tells readers to load again.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{join, now_ms, Cursor, FoldOutcome, Loaded, Log, News, SetAside, StoreError};
use crate::Instance;

#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    lock_timeout: Duration,
    fold_bytes: u64,
}

/// How long an append or load waits for a fold to finish, unless configured.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_millis(250);
/// A log this large is folded whatever its line count.
const FOLD_BYTES: u64 = 256 * 1024;

/// Which way the lock is held.
#[derive(Clone, Copy, PartialEq)]
enum Lock {
    Shared,
    Exclusive,
}

impl FileStore {
    pub fn new(path: impl Into<PathBuf>) -> FileStore {
        FileStore { path: path.into(), lock_timeout: DEFAULT_LOCK_TIMEOUT, fold_bytes: FOLD_BYTES }
    }

    /// `$XDG_STATE_HOME/failover-policy/<policy_name>.json`, else under `~/.local/state`;
    /// none when neither variable is set.
    pub fn default_for(policy_name: &str) -> Option<FileStore> {
        let nonempty = |var| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
        let base = nonempty("XDG_STATE_HOME").or_else(|| nonempty("HOME").map(|h| h.join(".local/state")))?;
        Some(FileStore::new(base.join("failover-policy").join(format!("{policy_name}.json"))))
    }

    /// The longest an append or load waits for a fold holding the lock (a call never waits on
    /// the store longer).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> FileStore {
        self.lock_timeout = timeout;
        self
    }

    /// The base snapshot's path; the log is `<path>.log`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn log_path(&self) -> PathBuf {
        self.sibling(".log")
    }

    fn io(&self, path: &Path) -> impl Fn(std::io::Error) -> StoreError {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path: path.clone(), source }
    }

    /// The lock, held `how` until the returned file is dropped; `None` when `how` is exclusive,
    /// `wait` false and another process holds it.
    fn lock(&self, how: Lock, wait: bool) -> Result<Option<File>, StoreError> {
        let lock_path = self.sibling(".lock");
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(self.io(dir))?;
        }
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(self.io(&lock_path))?;
        let start = Instant::now();
        loop {
            let tried = match how {
                Lock::Shared => file.try_lock_shared(),
                Lock::Exclusive => file.try_lock(),
            };
            match tried {
                Ok(()) => return Ok(Some(file)),
                Err(std::fs::TryLockError::WouldBlock) if !wait => return Ok(None),
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < self.lock_timeout => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let waited_ms = start.elapsed().as_millis() as u64;
                    return Err(StoreError::LockTimeout { path: self.path.clone(), waited_ms });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(self.io(&lock_path)(e)),
            }
        }
    }

    fn read_base(&self) -> Result<Option<String>, StoreError> {
        match fs::read(&self.path) {
            // Invalid UTF-8 reaches the component as text it refuses, and is set aside.
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(&self.path)(e)),
        }
    }

    /// The log's complete lines from `offset` on, and where the last one ends; a missing log
    /// reads as empty (inode 0).
    fn read_log(&self, from: Option<(u64, u64)>) -> Result<(Vec<String>, Cursor, u64), StoreError> {
        let log = self.log_path();
        let mut file = match File::open(&log) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok((Vec::new(), Cursor::File { inode: 0, offset: 0 }, 0)),
            Err(e) => return Err(self.io(&log)(e)),
        };
        // The descriptor's own inode and size: a rename after this open does not mix logs.
        let meta = file.metadata().map_err(self.io(&log))?;
        let offset = match from {
            Some((inode, offset)) if inode == meta.ino() && offset <= meta.len() => offset,
            _ => 0,
        };
        file.seek(SeekFrom::Start(offset)).map_err(self.io(&log))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(self.io(&log))?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let lines = bytes[..complete]
            .split(|&b| b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect();
        Ok((lines, Cursor::File { inode: meta.ino(), offset: offset + complete as u64 }, meta.len()))
    }

    /// `state` written to `path` durably: a temporary file, fsynced, renamed into place.
    fn write_replacing(&self, path: &Path, state: &[u8]) -> Result<(), StoreError> {
        let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(format!(".tmp-{}", std::process::id()));
        let tmp = path.with_file_name(name);
        let mut file = File::create(&tmp).map_err(self.io(&tmp))?;
        file.write_all(state).and_then(|()| file.sync_all()).map_err(self.io(&tmp))?;
        fs::rename(&tmp, path).map_err(self.io(path))?;
        // The rename is durable once the directory is; not every platform can open one.
        if let Some(dir) = path.parent().and_then(|d| File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// The base renamed to `<path>.corrupt-<ms>`. Another process may have done it first.
    fn set_aside_base(&self, why: String) -> Result<Option<SetAside>, StoreError> {
        let aside = self.sibling(&format!(".corrupt-{}", now_ms()));
        match fs::rename(&self.path, &aside) {
            Ok(()) => Ok(Some(SetAside { path: self.path.clone(), aside, why })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(&self.path)(e)),
        }
    }

    /// `<state file name><suffix>` in the state file's directory.
    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

impl Log for FileStore {
    fn load(&self, inst: &mut Instance) -> Result<Loaded, StoreError> {
        let _lock = self.lock(Lock::Shared, true)?;
        let base = self.read_base()?;
        let (entries, cursor, _) = self.read_log(None)?;
        let joined = join(inst, &self.describe(), base.as_deref(), &entries, now_ms(), 0)?;
        let set_aside = match joined.base_unreadable {
            Some(why) => self.set_aside_base(why)?,
            None => None,
        };
        Ok(Loaded { state: joined.state, cursor, entries: entries.len(), set_aside })
    }

    /// Files do not expire: `_ttl_ms` is for stores that do (Redis).
    fn append(&self, delta: &str, _ttl_ms: Option<u64>) -> Result<(), StoreError> {
        // A raw newline is never inside a JSON string, so this changes only whitespace.
        let mut line = delta.replace(['\n', '\r'], " ");
        line.push('\n');
        let _lock = self.lock(Lock::Shared, true)?;
        let log = self.log_path();
        let mut file = OpenOptions::new().create(true).append(true).open(&log).map_err(self.io(&log))?;
        file.write_all(line.as_bytes()).map_err(self.io(&log))
    }

    fn read_new(&self, after: &Cursor) -> Result<News, StoreError> {
        let Cursor::File { inode, offset } = *after else { return Ok(News::Moved) };
        let (entries, cursor, size) = self.read_log(Some((inode, offset)))?;
        match cursor {
            // Another inode, or a log shorter than what we read: folded under us.
            Cursor::File { inode: now, .. } if now != inode || size < offset => Ok(News::Moved),
            cursor => Ok(News::Entries { entries, cursor }),
        }
    }

    fn fold(&self, inst: &mut Instance, forget_after_ms: u64) -> Result<FoldOutcome, StoreError> {
        let Some(_lock) = self.lock(Lock::Exclusive, false)? else { return Ok(FoldOutcome::Skipped) };
        let base = self.read_base()?;
        let (entries, _, _) = self.read_log(None)?;
        let joined = join(inst, &self.describe(), base.as_deref(), &entries, now_ms(), forget_after_ms)?;
        if joined.newer_entries {
            return Ok(FoldOutcome::Skipped);
        }
        let mut set_aside = match joined.base_unreadable {
            Some(why) => self.set_aside_base(why)?,
            None => None,
        };
        if !joined.unreadable.is_empty() {
            let log = self.log_path();
            let mut name = log.file_name().map(|n| n.to_os_string()).unwrap_or_default();
            name.push(format!(".corrupt-{}", now_ms()));
            let aside = log.with_file_name(name);
            let mut lines = joined.unreadable.join("\n");
            lines.push('\n');
            fs::write(&aside, lines).map_err(self.io(&aside))?;
            let why = format!("{} log line(s) the policy could not read", joined.unreadable.len());
            set_aside.get_or_insert(SetAside { path: log, aside, why });
        }
        match &joined.state {
            Some(state) => self.write_replacing(&self.path, state.as_bytes())?,
            None => match fs::remove_file(&self.path) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(self.io(&self.path)(e)),
                _ => {}
            },
        }
        self.write_replacing(&self.log_path(), b"")?;
        Ok(FoldOutcome::Folded { forgotten: joined.forgotten, set_aside })
    }
}

impl FileStore {
    /// Whether the log is past the size at which a fold is due whatever its line count.
    pub(crate) fn log_is_large(&self) -> bool {
        fs::metadata(self.log_path()).is_ok_and(|m| m.len() > self.fold_bytes)
    }
}
