//! Files the service keeps beside its store: the master key of a SQLite store, the first
//! administrator's token, the demo's sign-in tokens. Used by the application and by the
//! binary alike.

use std::path::{Path, PathBuf};

/// Writes a file only its owner can read (mode 0600 on Unix).
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())
}

/// Where the first admin token goes: beside the SQLite file, or `./data` for PostgreSQL.
pub fn data_dir(database_url: &str) -> PathBuf {
    database_url
        .strip_prefix("sqlite:")
        .map(|p| p.trim_start_matches("//"))
        .and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("data"))
}
