//! Reading an input file that may be anything: only a regular file, only up to a size bound,
//! only UTF-8 (a leading byte order mark dropped, as pip does).

use std::io::Read as _;
use std::path::Path;

use crate::{Error, Origin};

/// The largest input file read (16 MiB): a requirements file or pyproject of 20,000 lines is
/// about 1 MiB, so this bound only stops accidents (`/dev/zero`, a log file, an archive).
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

const BOM: &str = "\u{feff}";

/// The text of the input file `path`. A FIFO, device, socket or directory is refused before
/// it is opened (opening a FIFO would wait for a writer), and so is a file larger than
/// [`MAX_FILE_SIZE`]; a file that grows while it is read is cut off at the bound and refused.
pub fn read_text(path: &Path) -> Result<String, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let too_large = |size| Error::TooLarge {
        path: path.to_owned(),
        size,
        limit: MAX_FILE_SIZE,
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_file() {
        return Err(Error::NotRegular {
            path: path.to_owned(),
            kind: kind_of(&metadata.file_type()),
        });
    }
    if metadata.len() > MAX_FILE_SIZE {
        return Err(too_large(metadata.len()));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > MAX_FILE_SIZE {
        return Err(too_large(read));
    }
    let text = String::from_utf8(bytes).map_err(|err| {
        let at = err.utf8_error().valid_up_to();
        let before = &err.as_bytes()[..at];
        let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
        let column = at
            - before
                .iter()
                .rposition(|&byte| byte == b'\n')
                .map_or(0, |nl| nl + 1)
            + 1;
        Error::Invalid {
            origin: Origin {
                file: path.to_owned(),
                line,
            },
            message: format!(
                "byte 0x{:02x} at column {column} is not UTF-8 (save the file as UTF-8)",
                err.as_bytes()[at]
            ),
        }
    })?;
    Ok(match text.strip_prefix(BOM) {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

/// What a non-regular file is, for the message refusing it.
fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("req.txt");
        std::fs::write(&path, "\u{feff}six\n").expect("write");
        assert_eq!(read_text(&path).expect("readable"), "six\n");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_located() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("req.txt");
        std::fs::write(&path, b"six\nat\xffrs\n").expect("write");
        let err = read_text(&path).expect_err("latin-1");
        assert!(
            err.to_string().ends_with(
                "req.txt:2: byte 0xff at column 3 is not UTF-8 (save the file as UTF-8)"
            ),
            "{err}"
        );
    }

    // Regression: `-r /dev/zero` read until memory ran out, a FIFO hung, a directory gave an
    // OS error without saying what was wrong.
    #[cfg(unix)]
    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let started = std::time::Instant::now();
        let err = read_text(Path::new("/dev/zero")).expect_err("a device");
        assert!(
            err.to_string()
                .contains("/dev/zero: a character device, not a regular file"),
            "{err}"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let err = read_text(dir.path()).expect_err("a directory");
        assert!(
            err.to_string().contains("a directory, not a regular file"),
            "{err}"
        );
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("run mkfifo");
        assert!(status.success());
        let err = read_text(&fifo).expect_err("a FIFO");
        assert!(err.to_string().contains("a FIFO (named pipe)"), "{err}");
        // A sparse 1 GB file costs no disk and is refused by its size, unread.
        let big = dir.path().join("big.txt");
        std::fs::File::create(&big)
            .and_then(|file| file.set_len(1 << 30))
            .expect("sparse file");
        let err = read_text(&big).expect_err("too large");
        assert!(
            err.to_string()
                .contains("1073741824 bytes, more than the 16777216 bytes"),
            "{err}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
