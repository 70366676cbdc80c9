//! Writing the files the command produces (`run --output`, `plot -o`, `sample -o`). Every one
//! goes through [`write`], so they all follow the same rules:
//!
//! - A regular file, new or existing, is replaced atomically: the bytes go to a temporary file
//!   beside it that is renamed over it once complete, so a failed or interrupted run never
//!   leaves a half-written output. A replaced file keeps its mode and owner; a new one gets
//!   0666 less the umask, like any other tool's output.
//! - A symlink is followed: its target is written and the link stays a link.
//! - A character device or a FIFO (`/dev/null`, `/dev/stdout`, a named pipe) is written in
//!   place, never replaced by a regular file (a FIFO waits for its reader, as a shell's
//!   redirection does).
//! - A directory, a block device or a socket is refused.
//! - The temporary file is removed when writing fails and when SIGINT, SIGTERM or SIGHUP end the
//!   process (SIGKILL cannot be caught: it can leave one behind, named `.NAME.PID.N.tmp`).
//!
//! The callers build their output in memory first, so the temporary file exists only for the
//! time of one write.

use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Refuses, before any work is done, a destination that [`write`] would refuse.
pub fn check(path: &Path) -> Result<(), String> {
    destination(path)
        .map(drop)
        .map_err(|error| cannot_write(path, &error))
}

/// Writes `bytes` to `path` by the rules of this module.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let written = match destination(path) {
        Ok(Destination::Stream(target)) => OpenOptions::new()
            .write(true)
            .open(target)
            .and_then(|mut stream| stream.write_all(bytes)),
        Ok(Destination::File { target, existing }) => replace(&target, existing.as_ref(), bytes),
        Err(error) => Err(error),
    };
    written.map_err(|error| cannot_write(path, &error))
}

fn cannot_write(path: &Path, error: &io::Error) -> String {
    format!("cannot write {}: {error}", path.display())
}

enum Destination {
    /// A regular file to replace; `existing` is the one there now, if any.
    File {
        target: PathBuf,
        existing: Option<Metadata>,
    },
    /// A character device or a FIFO, written in place.
    Stream(PathBuf),
}

fn destination(path: &Path) -> io::Result<Destination> {
    let refuse = |message: String| Err(io::Error::new(io::ErrorKind::InvalidInput, message));
    match fs::metadata(path) {
        // The rename that replaces the file must target the file a symlink leads to.
        Ok(metadata) if metadata.is_file() => Ok(Destination::File {
            target: fs::canonicalize(path)?,
            existing: Some(metadata),
        }),
        // Opened by the path given: `/dev/stdout` leads to a pipe no path names.
        Ok(metadata) if is_stream(&metadata) => Ok(Destination::Stream(path.to_path_buf())),
        Ok(metadata) => refuse(format!(
            "it is {}; give the path of a file to write",
            regnet_spec::files::describe_kind(&metadata)
        )),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let target = follow_links(path)?;
            let directory = directory_of(&target);
            match fs::metadata(directory) {
                Ok(metadata) if metadata.is_dir() => Ok(Destination::File {
                    target,
                    existing: None,
                }),
                Ok(_) => refuse(format!("{} is not a directory", directory.display())),
                Err(error) if error.kind() == io::ErrorKind::NotFound => refuse(format!(
                    "the directory {} does not exist",
                    directory.display()
                )),
                Err(error) => Err(error),
            }
        }
        Err(error) => Err(error),
    }
}

/// The path a missing file's `path` leads to once the symlinks of its last component are
/// followed: a dangling link's target is created, the link stays. (Links among the directories
/// above are followed by the rename itself.)
fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut path = path.to_path_buf();
    // The kernel's own limit (ELOOP): a cycle of links ends here.
    for _ in 0..40 {
        match fs::read_link(&path) {
            // A relative target is relative to the link's directory; `join` keeps an absolute one.
            Ok(target) => path = directory_of(&path).join(target),
            // Not a link (InvalidInput), or nothing there yet: this is the file.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::NotFound
                ) =>
            {
                return Ok(path);
            }
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// The directory holding `path`: its parent, or the current directory for a bare file name.
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(unix)]
fn is_stream(metadata: &Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    metadata.file_type().is_char_device() || metadata.file_type().is_fifo()
}

#[cfg(not(unix))]
fn is_stream(_: &Metadata) -> bool {
    false
}

fn replace(target: &Path, existing: Option<&Metadata>, bytes: &[u8]) -> io::Result<()> {
    let mut temporary = Temporary::create(target)?;
    temporary.file.write_all(bytes)?;
    if let Some(existing) = existing {
        keep_owner_and_mode(&temporary.file, existing)?;
    }
    temporary.rename_to(target)
}

#[cfg(unix)]
fn keep_owner_and_mode(file: &File, existing: &Metadata) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let new = file.metadata()?;
    if (new.uid(), new.gid()) != (existing.uid(), existing.gid()) {
        // Only root may give a file to another user; anyone else replaces it as its new owner,
        // as editors do. Before the mode: a change of owner clears the set-id bits.
        let _ = std::os::unix::fs::fchown(file, Some(existing.uid()), Some(existing.gid()));
    }
    file.set_permissions(existing.permissions())
}

#[cfg(not(unix))]
fn keep_owner_and_mode(file: &File, existing: &Metadata) -> io::Result<()> {
    file.set_permissions(existing.permissions())
}

/// A temporary file beside the output; removed when dropped unless renamed over it.
struct Temporary {
    path: PathBuf,
    file: File,
}

impl Temporary {
    fn create(target: &Path) -> io::Result<Self> {
        termination::watch()?;
        let name = target.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "it names no file to write")
        })?;
        // A name left by a killed run, or taken by a concurrent one, moves on to the next.
        for attempt in 0..100 {
            let mut hidden = OsString::from(".");
            hidden.push(name);
            hidden.push(format!(".{}.{attempt}.tmp", std::process::id()));
            let path = directory_of(target).join(hidden);
            // Registered before it exists, so no signal falls between creation and registration.
            let mut pending = pending();
            pending.push(path.clone());
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok(Temporary { path, file }),
                Err(error) => {
                    pending.pop();
                    if error.kind() != io::ErrorKind::AlreadyExists {
                        return Err(error);
                    }
                }
            }
        }
        Err(io::Error::other(
            "100 temporary file names beside it are taken; remove the .*.tmp files there",
        ))
    }

    fn rename_to(self, target: &Path) -> io::Result<()> {
        // Under the lock, a signal's cleanup runs wholly before the rename or wholly after.
        let mut pending = pending();
        // The signal may have come while the file was written, before the cleanup thread took
        // the lock: the output must not appear then.
        if termination::requested() {
            drop(pending);
            drop(self);
            termination::wait();
        }
        fs::rename(&self.path, target)?;
        pending.retain(|path| *path != self.path);
        Ok(())
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        let mut pending = pending();
        if let Some(index) = pending.iter().position(|path| *path == self.path) {
            pending.remove(index);
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The temporary files that exist now, for the signal handler to remove.
fn pending() -> MutexGuard<'static, Vec<PathBuf>> {
    static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    // A panic while the list was held leaves it consistent: every change is one call.
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// From the first output on, SIGINT, SIGTERM and SIGHUP remove the temporary files before they
/// end the process as they otherwise would.
#[cfg(unix)]
mod termination {
    use std::io;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, LazyLock, OnceLock};

    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

    const SIGNALS: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

    /// Set by the signal handler itself, at once; the cleanup thread may run later.
    static REQUESTED: LazyLock<Arc<AtomicBool>> = LazyLock::new(Arc::default);

    pub fn watch() -> io::Result<()> {
        static WATCHING: OnceLock<Result<(), String>> = OnceLock::new();
        WATCHING
            .get_or_init(|| start().map_err(|error| error.to_string()))
            .clone()
            .map_err(|error| io::Error::other(format!("cannot watch for interrupts: {error}")))
    }

    fn start() -> io::Result<()> {
        for signal in SIGNALS {
            signal_hook::flag::register(signal, Arc::clone(&REQUESTED))?;
        }
        let mut signals = signal_hook::iterator::Signals::new(SIGNALS)?;
        std::thread::Builder::new()
            .name("output-cleanup".to_owned())
            .spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    // Held until the process ends: no temporary file is made or renamed after.
                    let pending = super::pending();
                    for path in pending.iter() {
                        let _ = std::fs::remove_file(path);
                    }
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                    // Only if the default action could not be raised.
                    std::process::exit(128 + signal);
                }
            })?;
        Ok(())
    }

    pub fn requested() -> bool {
        REQUESTED.load(Ordering::SeqCst)
    }

    /// Waits for the cleanup thread, woken by the same signal, to end the process.
    pub fn wait() -> ! {
        loop {
            std::thread::park();
        }
    }
}

#[cfg(not(unix))]
mod termination {
    pub fn watch() -> std::io::Result<()> {
        Ok(())
    }

    pub fn requested() -> bool {
        false
    }

    pub fn wait() -> ! {
        unreachable!("no termination is requested without signals")
    }
}
