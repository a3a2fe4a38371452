//! Writers of a [`crate::resolution::Resolution`]: each format in its own module. Every writer
//! reads only the resolution, never the snapshot, so a new format plugs in as one more module
//! and one more `--format` value in the CLI.

pub mod nix;
pub mod pylock;
pub mod requirements;

/// `YYYY-MM-DDTHH:MM:SSZ` of unix `seconds` (UTC), as TOML and RFC 3339 write it.
pub fn utc_datetime(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn datetimes_are_utc() {
        assert_eq!(super::utc_datetime(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc_datetime(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::utc_datetime(951_782_400), "2000-02-29T00:00:00Z");
    }
}
