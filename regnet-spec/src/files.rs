//! Opening the files a user names (specs, input batches, images, checkpoints) without trusting
//! them: regular files only, and never more than a stated number of bytes.
//!
//! Every reader in the workspace goes through here, so a FIFO, a device or a directory given
//! where a file is expected is an error naming what it is, instead of a hang (a FIFO blocks on
//! open and on read) or an unbounded read (`/dev/zero`).

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

/// Opens `path` for reading if it is a regular file (symlinks followed), with the opened
/// file's metadata (its length, and its modification time for readers that check the file did
/// not change under them).
///
/// The type is checked on the opened file, not before opening, so the answer cannot change
/// between the check and the read; on Unix the open itself does not block on a FIFO.
pub fn open_regular(path: &Path) -> io::Result<(File, Metadata)> {
    let file = open_without_blocking(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {}, not a regular file", describe_kind(&metadata)),
        ));
    }
    Ok((file, metadata))
}

/// Reads the whole of the regular file at `path`, refusing one longer than `limit` bytes.
/// `what` names the file's role in the error ("a spec", "an image").
pub fn read_regular(path: &Path, limit: u64, what: &str) -> io::Result<Vec<u8>> {
    let (file, metadata) = open_regular(path)?;
    let length = metadata.len();
    let too_large = |length: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {length} bytes; {what} is at most {limit} bytes"),
        )
    };
    if length > limit {
        return Err(too_large(length.to_string()));
    }
    let mut bytes = Vec::with_capacity(length as usize);
    // A file that grows while it is read is still cut at the limit.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(format!("more than {limit}")));
    }
    Ok(bytes)
}

#[cfg(unix)]
fn open_without_blocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK only changes the behaviour of FIFOs and devices, which are refused right after.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_without_blocking(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// What a file that is not a regular file is, as "a directory", "a FIFO (named pipe)", ...
pub fn describe_kind(metadata: &Metadata) -> &'static str {
    let kind = metadata.file_type();
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let directory = std::env::temp_dir();
        let error = read_regular(&directory, 10, "a spec").unwrap_err();
        assert_eq!(error.to_string(), "it is a directory, not a regular file");
        #[cfg(unix)]
        {
            let error = read_regular(Path::new("/dev/zero"), 10, "a spec").unwrap_err();
            assert_eq!(
                error.to_string(),
                "it is a character device, not a regular file"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let fifo = std::env::temp_dir().join(format!("regnet-files-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|status| status.success()) {
            eprintln!("SKIPPED: mkfifo is not available");
            return;
        }
        let error = read_regular(&fifo, 10, "a spec").unwrap_err();
        std::fs::remove_file(&fifo).unwrap();
        assert_eq!(
            error.to_string(),
            "it is a FIFO (named pipe), not a regular file"
        );
    }

    #[test]
    fn refuses_a_file_over_the_limit_and_reads_one_at_it() {
        let path = std::env::temp_dir().join(format!("regnet-files-cap-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let over = read_regular(&path, 9, "a spec").unwrap_err().to_string();
        let at = read_regular(&path, 10, "a spec").unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(over, "it is 10 bytes; a spec is at most 9 bytes");
        assert_eq!(at, b"0123456789");
    }
}
