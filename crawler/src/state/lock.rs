//! The advisory lock a state (or a snapshot directory) is held by.

use std::io::{Seek, Write};
use std::path::Path;

use crate::{Error, Result};

/// An exclusive advisory lock on `DIR/NAME`, released when dropped (or when the process dies).
/// The file holds the holder's pid and command line, for the message the next comer gets.
#[derive(Debug)]
pub struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    /// Take the lock on `dir/name` without waiting; `what` says what is locked (for messages).
    pub fn acquire(dir: &Path, name: &str, what: &str) -> Result<DirLock> {
        let path = dir.join(name);
        let io = |err: std::io::Error| {
            Error::Io(std::io::Error::new(
                err.kind(),
                format!("{}: {err}", path.display()),
            ))
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(Error::Locked {
                    what: format!("{what} {}", dir.display()),
                    holder: if holder.is_empty() {
                        "another process".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(err)) => return Err(io(err)),
        }
        let command: Vec<String> = std::env::args().collect();
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        // The lock file is readable by others: no credentials from the command line.
        let command = crate::pypi::client::redact_text(&command.join(" "));
        writeln!(file, "pid {} ({command})", std::process::id()).map_err(io)?;
        Ok(DirLock { _file: file })
    }
}
