//! Writing files so that a reader sees the old bytes or the new ones, never a mix: a temporary
//! file in the same directory, fsync, rename over the target, fsync of the directory. The one
//! home of this rule for every binary of the workspace (snapshots, published trees, caches,
//! generated locks and Nix files).

use std::io::Write;
use std::path::{Path, PathBuf};

/// Temporary files start with this prefix, so a directory's leftovers of a killed writer can be
/// recognised (and removed under the directory's lock).
pub const TEMP_PREFIX: &str = ".mnx-tmp-";

/// An I/O failure while replacing `path`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct AtomicWriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Replace `path` with what `fill` writes. The file is readable by everyone (0644) once in
/// place; on any error the old file (if any) is untouched and the temporary file is removed.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), AtomicWriteError> {
    let wrap = |source| AtomicWriteError {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(wrap)?;
    fill(temp.as_file_mut()).map_err(wrap)?;
    temp.as_file_mut().flush().map_err(wrap)?;
    make_readable(temp.as_file()).map_err(wrap)?;
    temp.as_file().sync_all().map_err(wrap)?;
    temp.persist(path).map_err(|err| wrap(err.error))?;
    sync_dir(dir).map_err(wrap)
}

/// Replace `path` with `bytes` (see [`write_with`]).
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), AtomicWriteError> {
    write_with(path, |file| file.write_all(bytes))
}

/// fsync a directory, so a rename inside it survives a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Make a file readable by everyone (0644): temporary files start private, published and
/// generated files are for everyone to read.
pub fn make_readable(file: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.txt");
        write(&path, b"old").expect("first write");
        let err = write_with(&path, |file| {
            file.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        })
        .expect_err("fails");
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.txt")]);
        write(&path, b"new").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
    }
}
