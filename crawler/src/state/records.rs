//! The merge rule: which of two records of one file wins, and `merge-state`.

use super::*;

/// A file's dependency record, how it was obtained, and by which extractor version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub record: DependencyRecord,
    /// [`crate::extract::Method::as_str`].
    pub method: String,
    /// [`crate::extract::EXTRACTOR_VERSION`] when it was read: an "unknown" from an older
    /// extractor is read again, a known record is kept.
    pub extractor: u32,
}

impl Extracted {
    /// How much a record says: real dependency data (2), an `unknown` whose reason came from
    /// trying (1), or `sdist-needs-build`, which only says that nobody tried a build yet (0).
    fn tier(&self) -> u8 {
        if self.record.source != MetadataSource::Unknown {
            2
        } else if self.method == Method::SdistNeedsBuild.as_str() {
            0
        } else {
            1
        }
    }

    /// The merge rule, wherever two records of one file (same name, same sha256) meet — in
    /// `merge-state`, a recrawl or a resumed run: the higher [`Extracted::tier`] wins, then
    /// the newer extractor version, then (a deterministic tie-break) the greater method name
    /// and record digest. It is a total order, so the result never depends on which record
    /// came first.
    pub fn rank(&self, other: &Extracted) -> Ordering {
        (
            self.tier(),
            self.extractor,
            &self.method,
            record_key(&self.record),
        )
            .cmp(&(
                other.tier(),
                other.extractor,
                &other.method,
                record_key(&other.record),
            ))
    }
}

/// The better of two optional records of one file (see [`Extracted::rank`]); any record beats
/// none.
pub fn better_record(a: Option<Extracted>, b: Option<Extracted>) -> Option<Extracted> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.rank(&a) == Ordering::Greater {
            b
        } else {
            a
        }),
        (a, b) => a.or(b),
    }
}

/// A stored record that a merge replaced with a better one (see [`Extracted::rank`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    pub project: String,
    pub filename: String,
    /// The methods of the old and the new record.
    pub from: String,
    pub to: String,
}

/// What [`State::merge_from`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Projects whose page (files, serial, ETag) was taken from a source.
    pub pages: u64,
    /// Records replaced by a better one.
    pub replaced: Vec<Replaced>,
}

impl State {
    /// Merge other states (shards, or a crawl with other options) into this one, atomically:
    /// every source is checked first, then everything is written in one transaction, so a
    /// source that does not fit leaves this state as it was. Per project the page (its files,
    /// serial and ETag) with the newer serial wins (equal serials: the greater page digest, so
    /// the order of sources does not matter); per file the better record of all states wins
    /// ([`Extracted::rank`]).
    pub fn merge_from(&mut self, sources: &[State]) -> Result<MergeReport> {
        let own_as_of = self.meta("as_of")?;
        let mut agreed = own_as_of.clone();
        for source in sources {
            let theirs = source.meta("as_of")?;
            match (&agreed, &theirs) {
                (Some(mine), Some(theirs)) if mine != theirs => {
                    return Err(Error::Usage(format!(
                        "cannot merge {}: it was crawled with --as-of {theirs}, while {} holds \
                         --as-of {mine}; nothing was merged",
                        source.path.display(),
                        if own_as_of.as_ref() == Some(mine) {
                            self.path.display().to_string()
                        } else {
                            "an earlier --from".to_string()
                        }
                    )));
                }
                (None, Some(_)) => agreed = theirs,
                _ => {}
            }
            source.verify()?;
        }
        let mut watermark = self.serial()?;
        for source in sources {
            watermark = watermark.max(source.serial()?);
        }
        let path = self.path.clone();
        let wrap = |source| Error::State {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        let mut report = MergeReport::default();
        for source in sources {
            for name in source
                .serials()?
                .into_keys()
                .collect::<std::collections::BTreeSet<_>>()
            {
                let Some(row) = source.project(&name)? else {
                    continue;
                };
                let theirs = ProjectCommit {
                    name: name.clone(),
                    last_serial: row.last_serial,
                    etag: row.etag,
                    files: source.files(&name)?,
                    enqueue: Vec::new(),
                };
                let mine = match read_project(&tx, &path, &name)? {
                    Some(row) => Some(ProjectCommit {
                        name: name.clone(),
                        last_serial: row.last_serial,
                        etag: row.etag,
                        files: read_files(&tx, &path, &name)?,
                        enqueue: Vec::new(),
                    }),
                    None => None,
                };
                let (mut chosen, other, from_source) = match mine {
                    None => (theirs, None, true),
                    Some(mine) if newer_page(&theirs, &mine) => (theirs, Some(mine), true),
                    Some(mine) => (mine, Some(theirs), false),
                };
                if let Some(other) = &other {
                    for file in &mut chosen.files {
                        if let Some(same) = other
                            .files
                            .iter()
                            .find(|o| o.filename == file.filename && o.sha256 == file.sha256)
                        {
                            file.dependencies =
                                better_record(file.dependencies.take(), same.dependencies.clone());
                        }
                    }
                }
                if from_source {
                    report.pages += 1;
                }
                report.replaced.extend(write_project(&tx, &path, &chosen)?);
            }
        }
        match agreed {
            Some(as_of) if own_as_of.is_none() => set_meta(&tx, "as_of", &as_of),
            _ => Ok(()),
        }
        .map_err(wrap)?;
        set_meta(&tx, "watermark", &watermark.to_string()).map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(report)
    }
}

/// Whether page `a` wins over page `b` of one project: the newer serial, or at equal serials
/// the greater digest of the page (a deterministic choice that does not depend on order).
pub(super) fn newer_page(a: &ProjectCommit, b: &ProjectCommit) -> bool {
    let digest = |page: &ProjectCommit| {
        let files: Vec<_> = page
            .files
            .iter()
            .map(|file| {
                (
                    &file.filename,
                    &file.version,
                    kind_to_int(file.kind),
                    file.size,
                    file.sha256,
                    file.upload_time,
                    &file.yanked,
                    &file.requires_python,
                    &file.url,
                )
            })
            .collect();
        Sha256::digest(format!("{:?}{files:?}", page.etag).as_bytes())
    };
    (a.last_serial, digest(a)) > (b.last_serial, digest(b))
}
