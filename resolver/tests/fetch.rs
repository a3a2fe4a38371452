//! Fetching blobs by hash against mirrors served on 127.0.0.1 by a small HTTP server started in
//! each test: cold, warm, offline, failover past a tampered blob, an unreachable mirror and a
//! 5xx mirror, missing blobs, a damaged cache entry, a process killed mid-download, prefetch,
//! and credentials kept out of every message.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime};

use db_format::blob::{BlobError, BlobHash, BlobKind, BlobSource};
use resolver::fetch::{FetchOptions, FetchStats, Mirror, Store};
use sha2::{Digest as _, Sha256};

/// How the test server answers.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Files of the tree; 404 for the rest.
    Serve,
    /// This status and an empty body for everything.
    Status(u16),
    /// Headers and half of the body of a file, then silence (signalled on the server's channel).
    Stall,
}

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
}

struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    max_parallel: Arc<AtomicUsize>,
    stalled: mpsc::Receiver<()>,
}

impl Server {
    fn start(root: &Path, behaviour: Behaviour, delay: Duration) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let max_parallel = Arc::new(AtomicUsize::new(0));
        let (stall_tx, stalled) = mpsc::channel();
        let root = root.to_owned();
        let state = (Arc::clone(&seen), Arc::clone(&max_parallel));
        std::thread::spawn(move || {
            let parallel = Arc::new(AtomicUsize::new(0));
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (root, seen, max, parallel, stall_tx) = (
                    root.clone(),
                    Arc::clone(&state.0),
                    Arc::clone(&state.1),
                    Arc::clone(&parallel),
                    stall_tx.clone(),
                );
                std::thread::spawn(move || {
                    let now = parallel.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(now, Ordering::SeqCst);
                    answer(stream, &root, behaviour, delay, &seen, &stall_tx);
                    parallel.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Server {
            url,
            seen,
            max_parallel,
            stalled,
        }
    }

    fn serve(root: &Path) -> Server {
        Server::start(root, Behaviour::Serve, Duration::ZERO)
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }

    fn mirror(&self) -> Mirror {
        Mirror::parse(&self.url).expect("a valid URL")
    }
}

fn answer(
    stream: TcpStream,
    root: &Path,
    behaviour: Behaviour,
    delay: Duration,
    seen: &Mutex<Vec<Seen>>,
    stalled: &mpsc::Sender<()>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    seen.lock().expect("not poisoned").push(Seen {
        path: path.clone(),
        authorization,
    });
    std::thread::sleep(delay);
    let mut stream = stream;
    let file = root.join(path.trim_start_matches('/'));
    let respond = |stream: &mut TcpStream, status: u16, body: &[u8], claimed: usize| {
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {claimed}\r\nConnection: close\r\n\r\n"
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
        let _ = stream.flush();
    };
    match (behaviour, std::fs::read(&file)) {
        (Behaviour::Status(status), _) => respond(&mut stream, status, b"", 0),
        (Behaviour::Serve, Ok(body)) => respond(&mut stream, 200, &body, body.len()),
        (Behaviour::Stall, Ok(body)) => {
            respond(&mut stream, 200, &body[..body.len() / 2], body.len());
            let _ = stalled.send(());
            std::thread::sleep(Duration::from_secs(60));
        }
        (_, Err(_)) => respond(&mut stream, 404, b"", 0),
    }
}

fn hash(bytes: &[u8]) -> BlobHash {
    BlobHash(Sha256::digest(bytes).into())
}

/// A published tree of `count` shards with distinct contents; returns their hashes and sizes.
fn publish(root: &Path, count: usize) -> Vec<(BlobHash, Vec<u8>)> {
    (0..count)
        .map(|n| {
            let bytes: Vec<u8> = format!("shard {n} ")
                .bytes()
                .cycle()
                .take(1000 + n * 37)
                .collect();
            let hash = hash(&bytes);
            put(root, BlobKind::Shard, &hash, &bytes);
            (hash, bytes)
        })
        .collect()
}

fn put(root: &Path, kind: BlobKind, hash: &BlobHash, bytes: &[u8]) {
    let path = root.join(kind.path(hash));
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dirs");
    std::fs::write(path, bytes).expect("write blob");
}

fn quick() -> FetchOptions {
    FetchOptions {
        attempts: 2,
        backoff: Duration::from_millis(10),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
    }
}

fn store(cache: &Path, mirrors: Vec<Mirror>) -> Store {
    Store::with_options(cache.to_owned(), mirrors, false, quick())
}

fn get(store: &Store, (hash, bytes): &(BlobHash, Vec<u8>)) -> Result<Vec<u8>, BlobError> {
    store.get(BlobKind::Shard, hash, Some(bytes.len() as u64))
}

fn total(blobs: &[(BlobHash, Vec<u8>)]) -> u64 {
    blobs.iter().map(|(_, bytes)| bytes.len() as u64).sum()
}

#[test]
fn cold_fetch_then_warm_without_requests_then_offline() {
    let tree = tempfile::tempdir().expect("tree");
    let cache = tempfile::tempdir().expect("cache");
    let blobs = publish(tree.path(), 3);
    let server = Server::serve(tree.path());

    let cold = store(cache.path(), vec![server.mirror()]);
    for blob in &blobs {
        assert_eq!(get(&cold, blob).expect("cold fetch"), blob.1);
    }
    assert_eq!(
        cold.stats(),
        FetchStats {
            requests: 3,
            bytes: total(&blobs),
            cache_hits: 0,
            fetched: 3,
        }
    );
    for (hash, bytes) in &blobs {
        let cached = std::fs::read(cache.path().join(BlobKind::Shard.path(hash))).expect("cached");
        assert_eq!(&cached, bytes, "cached at the published layout");
    }

    let warm = store(cache.path(), vec![server.mirror()]);
    for blob in &blobs {
        assert_eq!(get(&warm, blob).expect("warm"), blob.1);
    }
    assert_eq!(warm.stats().requests, 0);
    assert_eq!(warm.stats().cache_hits, 3);
    assert_eq!(server.requests().len(), 3, "the warm run asked nothing");

    let offline = Store::new(cache.path().to_owned(), vec![server.mirror()], true);
    for blob in &blobs {
        assert_eq!(get(&offline, blob).expect("offline"), blob.1);
    }
    let unknown = hash(b"never published");
    let err = offline
        .get(BlobKind::Shard, &unknown, None)
        .expect_err("offline and not cached");
    assert!(matches!(err, BlobError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains("offline"), "{err}");
    assert_eq!(server.requests().len(), 3, "offline asks no mirror");
}

#[test]
fn directories_and_file_urls_serve_as_mirrors() {
    let tree = tempfile::tempdir().expect("tree");
    let blobs = publish(tree.path(), 2);
    for mirror in [
        tree.path().display().to_string(),
        format!("file://{}", tree.path().display()),
    ] {
        let cache = tempfile::tempdir().expect("cache");
        let store = store(
            cache.path(),
            vec![Mirror::parse(&mirror).expect("a mirror")],
        );
        for blob in &blobs {
            assert_eq!(get(&store, blob).expect("from the directory"), blob.1);
        }
        assert_eq!(store.stats().fetched, 2, "{mirror}");
    }
}

#[test]
fn a_tampered_blob_fails_over_to_the_next_mirror_and_says_so() {
    let bad_tree = tempfile::tempdir().expect("tree");
    let good_tree = tempfile::tempdir().expect("tree");
    let cache = tempfile::tempdir().expect("cache");
    let blobs = publish(good_tree.path(), 1);
    let (hash, bytes) = &blobs[0];
    let mut forged = bytes.clone();
    forged[0] ^= 1;
    put(bad_tree.path(), BlobKind::Shard, hash, &forged);
    let bad = Server::serve(bad_tree.path());
    let good = Server::serve(good_tree.path());

    let store = store(cache.path(), vec![bad.mirror(), good.mirror()]);
    assert_eq!(&get(&store, &blobs[0]).expect("from the second"), bytes);
    let notes = store.notes().join("\n");
    assert!(notes.contains(&bad.url), "names the mirror: {notes}");
    assert!(notes.contains(&hash.to_hex()), "names the blob: {notes}");
    assert!(
        notes.contains(&format!("sha256:{}", self::hash(&forged))),
        "{notes}"
    );
    let cached = std::fs::read(store.cache_path(BlobKind::Shard, hash)).expect("cached");
    assert_eq!(&cached, bytes, "only the verified bytes are cached");

    let only_bad = tempfile::tempdir().expect("cache");
    let err = get(&self::store(only_bad.path(), vec![bad.mirror()]), &blobs[0])
        .expect_err("the only mirror is forged");
    match &err {
        BlobError::HashMismatch { from, .. } => assert!(from.contains(&bad.url), "{err}"),
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    assert!(
        !only_bad.path().join(BlobKind::Shard.path(hash)).exists(),
        "forged bytes never enter the cache"
    );
}

#[test]
fn a_body_larger_than_stated_is_refused() {
    let tree = tempfile::tempdir().expect("tree");
    let cache = tempfile::tempdir().expect("cache");
    let huge = vec![7u8; 64 * 1024];
    let hash = hash(&huge);
    put(tree.path(), BlobKind::Shard, &hash, &huge);
    let server = Server::serve(tree.path());
    let store = store(cache.path(), vec![server.mirror()]);
    let err = store
        .get(BlobKind::Shard, &hash, Some(100))
        .expect_err("the manifest says 100 bytes");
    assert!(err.to_string().contains("more than stated"), "{err}");
    assert!(
        store.stats().bytes < 100 + resolver::fetch::SIZE_SLACK + 1,
        "{:?}",
        store.stats()
    );
}

#[test]
fn a_blob_missing_everywhere_names_the_blob_and_every_mirror() {
    let first = tempfile::tempdir().expect("tree");
    let second = tempfile::tempdir().expect("tree");
    let cache = tempfile::tempdir().expect("cache");
    let (a, b) = (Server::serve(first.path()), Server::serve(second.path()));
    let unknown = hash(b"not published");
    let err = store(cache.path(), vec![a.mirror(), b.mirror()])
        .get(BlobKind::Shard, &unknown, Some(10))
        .expect_err("nobody has it");
    assert!(matches!(err, BlobError::Missing { .. }), "{err:?}");
    let text = err.to_string();
    for needle in [unknown.to_hex(), a.url.clone(), b.url.clone()] {
        assert!(text.contains(&needle), "{needle} missing from: {text}");
    }
    assert_eq!(a.requests().len(), 1, "a 404 is not retried");
}

#[test]
fn unreachable_and_failing_mirrors_are_skipped_for_a_good_one() {
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("address"))
    };
    let empty = tempfile::tempdir().expect("empty");
    let broken = Server::start(empty.path(), Behaviour::Status(503), Duration::ZERO);
    let tree = tempfile::tempdir().expect("tree");
    let cache = tempfile::tempdir().expect("cache");
    let blobs = publish(tree.path(), 1);
    let good = Server::serve(tree.path());

    let mirrors = vec![
        Mirror::parse(&dead).expect("url"),
        broken.mirror(),
        good.mirror(),
    ];
    let store = store(cache.path(), mirrors);
    assert_eq!(get(&store, &blobs[0]).expect("third mirror"), blobs[0].1);
    assert_eq!(broken.requests().len(), 2, "5xx is retried, boundedly");
    let notes = store.notes();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].contains(&dead) && notes[0].contains("unreachable"),
        "{notes:?}"
    );
    assert!(
        notes[1].contains(&broken.url) && notes[1].contains("503"),
        "{notes:?}"
    );

    let alone = tempfile::tempdir().expect("cache");
    let err = get(
        &self::store(alone.path(), vec![Mirror::parse(&dead).expect("url")]),
        &blobs[0],
    )
    .expect_err("nothing reachable");
    let text = err.to_string();
    assert!(
        text.contains(&dead) && text.contains(&blobs[0].0.to_hex()),
        "{text}"
    );
}

#[test]
fn a_damaged_cache_entry_is_removed_and_fetched_again() {
    let tree = tempfile::tempdir().expect("tree");
    let cache = tempfile::tempdir().expect("cache");
    let blobs = publish(tree.path(), 1);
    let server = Server::serve(tree.path());
    let first = store(cache.path(), vec![server.mirror()]);
    get(&first, &blobs[0]).expect("cold");
    let entry = first.cache_path(BlobKind::Shard, &blobs[0].0);
    std::fs::write(&entry, b"bit rot").expect("damage the entry");

    let offline = Store::new(cache.path().to_owned(), vec![], true);
    let err = get(&offline, &blobs[0]).expect_err("a damaged entry is never used");
    assert!(matches!(err, BlobError::Missing { .. }), "{err:?}");
    assert!(!entry.exists(), "the damaged entry was removed");

    std::fs::write(&entry, b"bit rot").expect("damage the entry again");
    let second = store(cache.path(), vec![server.mirror()]);
    assert_eq!(get(&second, &blobs[0]).expect("refetched"), blobs[0].1);
    assert_eq!(second.stats().requests, 1);
    assert!(
        second.notes().join("\n").contains("damaged"),
        "{:?}",
        second.notes()
    );
    assert_eq!(std::fs::read(&entry).expect("entry"), blobs[0].1);
}

/// The child half of `a_kill_during_download_leaves_a_usable_cache`: fetches one blob from a
/// mirror that stalls mid-body, and is killed there by the parent.
#[test]
#[ignore = "run by a_kill_during_download_leaves_a_usable_cache as a child process"]
fn child_fetch_until_killed() {
    let var = |name: &str| std::env::var(name).expect("set by the parent test");
    let store = Store::new(
        PathBuf::from(var("FETCH_CHILD_CACHE")),
        vec![Mirror::parse(&var("FETCH_CHILD_URL")).expect("url")],
        false,
    );
    let hash = BlobHash::from_hex(&var("FETCH_CHILD_HASH")).expect("hex");
    let _ = store.get(BlobKind::Shard, &hash, None);
}

#[test]
fn a_kill_during_download_leaves_a_usable_cache() {
    let tree = tempfile::tempdir().expect("tree");
    let cache = tempfile::tempdir().expect("cache");
    let blobs = publish(tree.path(), 1);
    let (hash, bytes) = &blobs[0];
    let stalling = Server::start(tree.path(), Behaviour::Stall, Duration::ZERO);
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "child_fetch_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("FETCH_CHILD_CACHE", cache.path())
        .env("FETCH_CHILD_URL", &stalling.url)
        .env("FETCH_CHILD_HASH", hash.to_hex())
        .spawn()
        .expect("start the child");
    stalling
        .stalled
        .recv_timeout(Duration::from_secs(60))
        .expect("the child reached the middle of the download");
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");

    let entry = cache.path().join(BlobKind::Shard.path(hash));
    assert!(!entry.exists(), "no partial entry");
    // A temporary file a writer killed long ago left in the entry's directory.
    let dir = entry.parent().expect("a parent");
    std::fs::create_dir_all(dir).expect("dir");
    let leftover = dir.join(format!("{}killed", db_format::atomic::TEMP_PREFIX));
    std::fs::write(&leftover, &bytes[..10]).expect("leftover");
    std::fs::File::options()
        .write(true)
        .open(&leftover)
        .expect("open")
        .set_modified(SystemTime::now() - Duration::from_secs(24 * 3600))
        .expect("age it");

    let good = Server::serve(tree.path());
    let store = store(cache.path(), vec![good.mirror()]);
    assert_eq!(
        &get(&store, &blobs[0]).expect("fetched after the kill"),
        bytes
    );
    assert_eq!(&std::fs::read(&entry).expect("entry"), bytes);
    assert!(!leftover.exists(), "the stale temporary file was cleaned");
    let offline = Store::new(cache.path().to_owned(), vec![], true);
    assert_eq!(&get(&offline, &blobs[0]).expect("usable offline"), bytes);
}

#[test]
fn prefetch_fetches_in_parallel_and_get_waits_for_it() {
    let tree = tempfile::tempdir().expect("tree");
    let cache = tempfile::tempdir().expect("cache");
    let blobs = publish(tree.path(), 20);
    let server = Server::start(tree.path(), Behaviour::Serve, Duration::from_millis(50));
    let store = store(cache.path(), vec![server.mirror()]);
    let wanted: Vec<_> = blobs
        .iter()
        .map(|(hash, bytes)| (BlobKind::Shard, *hash, Some(bytes.len() as u64)))
        .collect();
    store.prefetch(&wanted);
    store.prefetch(&wanted);
    assert_eq!(
        get(&store, &blobs[19]).expect("waits for the prefetch"),
        blobs[19].1
    );
    store.wait_for_prefetch();
    let parallel = server.max_parallel.load(Ordering::SeqCst);
    assert!((2..=8).contains(&parallel), "{parallel} requests at once");
    for blob in &blobs {
        assert_eq!(get(&store, blob).expect("cached"), blob.1);
    }
    let stats = store.stats();
    assert_eq!(
        (stats.requests, stats.fetched),
        (20, 20),
        "each blob fetched once"
    );
    assert_eq!(stats.cache_hits, 21, "the waiting get and the 20 after it");
    let mut paths: HashMap<String, usize> = HashMap::new();
    for seen in server.requests() {
        *paths.entry(seen.path).or_default() += 1;
    }
    assert!(paths.values().all(|count| *count == 1), "{paths:?}");
}

#[test]
fn credentials_are_sent_but_never_shown() {
    let tree = tempfile::tempdir().expect("tree");
    let cache = tempfile::tempdir().expect("cache");
    let blobs = publish(tree.path(), 1);
    let server = Server::serve(tree.path());
    let with_secret = server.url.replace("http://", "http://user:s3cret-token@");
    let mirror = Mirror::parse(&with_secret).expect("url");
    assert!(!format!("{mirror} {mirror:?}").contains("s3cret"));
    get(&store(cache.path(), vec![mirror]), &blobs[0]).expect("fetched");
    assert_eq!(
        server.requests()[0].authorization.as_deref(),
        Some("Basic dXNlcjpzM2NyZXQtdG9rZW4="),
        "sent as basic authentication"
    );

    let empty = tempfile::tempdir().expect("empty");
    let broken = Server::start(empty.path(), Behaviour::Status(500), Duration::ZERO);
    let forged = tempfile::tempdir().expect("tree");
    put(forged.path(), BlobKind::Shard, &blobs[0].0, b"forged");
    let forging = Server::serve(forged.path());
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!(
            "http://user:s3cret-token@{}",
            listener.local_addr().expect("address")
        )
    };
    let mirrors: Vec<Mirror> = [
        dead,
        broken.url.replace("http://", "http://user:s3cret-token@"),
        forging.url.replace("http://", "http://user:s3cret-token@"),
        empty.path().display().to_string(),
    ]
    .iter()
    .map(|url| Mirror::parse(url).expect("url"))
    .collect();
    let other_cache = tempfile::tempdir().expect("cache");
    let store = store(other_cache.path(), mirrors);
    let err = get(&store, &blobs[0]).expect_err("no good mirror");
    let text = format!("{err} {err:?} {}", store.notes().join(" "));
    assert!(text.contains("***@"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    let bad = Mirror::parse("gopher://user:s3cret-token@host/").expect_err("bad scheme");
    assert!(!bad.to_string().contains("s3cret"), "{bad}");
}

mod common;

/// A small universe (app → lib → extra-dep, and an unrelated project) published as a sharded
/// tree under `root`, as `publish-db` lays it out; returns the pin and the same snapshot as a pack.
fn publish_sample(root: &Path) -> (String, Vec<u8>) {
    let universe = common::universe(&[
        ("app", "1.0", &["lib>=1"]),
        ("lib", "1.0", &[]),
        ("lib", "2.0", &["extra-dep"]),
        ("extra-dep", "0.5", &[]),
        ("unrelated", "3.0", &[]),
    ]);
    let single = common::snapshot(&universe);
    let mut sink = db_format::MemorySink::default();
    let mut writer = db_format::ShardedWriter::new(&mut sink, single.meta().clone(), None);
    for project in single.projects() {
        writer
            .add_project(&project.expect("project reads"))
            .expect("project writes");
    }
    let (_, stats) = writer.finish().expect("snapshot written");
    for (hash, (kind, bytes)) in &sink.blobs {
        put(root, *kind, hash, bytes);
    }
    let snapshot =
        db_format::Snapshot::from_source(&stats.manifest, Box::new(sink)).expect("opens");
    let mut pack = Vec::new();
    snapshot.write_pack(&mut pack).expect("pack");
    (stats.manifest.to_hex(), pack)
}

/// `mach-nix ARGS` with its cache in `cache` and no mirror from the environment.
fn mach_nix(cache: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_mach-nix"))
        .args(args)
        .env("MACH_NIX_CACHE_DIR", cache)
        .env_remove(resolver::fetch::DB_URL_ENV)
        .env_remove("MACH_NIX_DB_DIR")
        .output()
        .expect("mach-nix runs")
}

/// The lines of a generated lock without its comment header (which repeats the command line).
fn body(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "mach-nix failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

// A user with only a pin and a mirror URL gets the lock the publisher gets from the pack; the
// second run is offline from the cache; `fetch --pack` writes a pack that resolves the same.
#[test]
fn gen_by_pin_from_a_mirror_then_offline_then_from_a_fetched_pack() {
    let tree = tempfile::tempdir().expect("tree");
    let work = tempfile::tempdir().expect("work");
    let (pin, pack) = publish_sample(tree.path());
    let reference_pack = work.path().join("reference.mnxpack");
    std::fs::write(&reference_pack, pack).expect("write pack");
    let requirements = work.path().join("requirements.txt");
    std::fs::write(&requirements, "app\n").expect("requirements");
    let empty_dir = work.path().join("no-snapshots");
    std::fs::create_dir(&empty_dir).expect("dir");
    let req = requirements.to_str().expect("utf-8 path");
    let db = format!("sha256:{pin}");
    let dir = empty_dir.to_str().expect("utf-8 path");
    let gen_args = [
        "gen",
        "-r",
        req,
        "--format",
        "requirements",
        "--db-dir",
        dir,
    ];

    let publisher_cache = work.path().join("publisher-cache");
    let expected = body(&mach_nix(
        &publisher_cache,
        &[
            &gen_args[..],
            &["--db", reference_pack.to_str().expect("utf-8")],
        ]
        .concat(),
    ));
    assert!(expected.contains("extra-dep==0.5"), "{expected}");

    let server = Server::serve(tree.path());
    let cache = work.path().join("cache");
    let cold = mach_nix(
        &cache,
        &[&gen_args[..], &["--db", &db, "--db-url", &server.url]].concat(),
    );
    assert_eq!(
        body(&cold),
        expected,
        "the mirror gives the publisher's lock"
    );
    let cold_requests = server.requests().len();
    assert!(cold_requests >= 2, "manifest and shards were fetched");

    let offline = mach_nix(
        &cache,
        &[
            &gen_args[..],
            &["--db", &db, "--offline", "--db-url", &server.url],
        ]
        .concat(),
    );
    assert_eq!(
        body(&offline),
        expected,
        "the cache alone gives the same lock"
    );
    let warm = mach_nix(
        &cache,
        &[&gen_args[..], &["--db", &db, "--db-url", &server.url]].concat(),
    );
    assert_eq!(body(&warm), expected);
    assert_eq!(
        server.requests().len(),
        cold_requests,
        "warm runs ask nothing"
    );

    let fresh_cache = work.path().join("fresh-cache");
    let pack_path = work.path().join("fetched.mnxpack");
    let fetched = mach_nix(
        &fresh_cache,
        &[
            "fetch",
            &db,
            "--db-dir",
            dir,
            "--db-url",
            &server.url,
            "--pack",
            pack_path.to_str().expect("utf-8"),
        ],
    );
    assert!(
        fetched.status.success(),
        "{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    assert!(String::from_utf8_lossy(&fetched.stdout).contains(&pin));
    let from_pack = mach_nix(
        &fresh_cache,
        &[&gen_args[..], &["--db", pack_path.to_str().expect("utf-8")]].concat(),
    );
    assert_eq!(
        body(&from_pack),
        expected,
        "the fetched pack resolves the same"
    );

    let unknown = format!("sha256:{}", "0".repeat(64));
    let missing = mach_nix(
        &work.path().join("other-cache"),
        &[&gen_args[..], &["--db", &unknown, "--db-url", &server.url]].concat(),
    );
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains(&"0".repeat(64)) && stderr.contains(&server.url),
        "{stderr}"
    );
}

// A damaged byte never reaches an output: every byte of a pinned pack flipped in turn, `gen`
// either refuses the snapshot (exit 2) or writes exactly the clean lock.
#[test]
fn no_flipped_byte_of_a_pinned_pack_changes_the_lock() {
    let tree = tempfile::tempdir().expect("tree");
    let work = tempfile::tempdir().expect("work");
    let (pin, clean) = publish_sample(tree.path());
    let manifest = BlobHash::from_hex(&pin).expect("pin");
    let dir = work.path().join("snapshots");
    let pack = dir.join(BlobKind::Pack.path(&manifest));
    std::fs::create_dir_all(pack.parent().expect("parent")).expect("dirs");
    let requirements = work.path().join("requirements.txt");
    std::fs::write(&requirements, "app\n").expect("requirements");
    let cache = work.path().join("cache");
    let db = format!("sha256:{pin}");
    let args = [
        "gen",
        "-r",
        requirements.to_str().expect("utf-8"),
        "--format",
        "requirements",
        "--db",
        &db,
        "--db-dir",
        dir.to_str().expect("utf-8"),
        "--offline",
    ];
    std::fs::write(&pack, &clean).expect("write pack");
    let expected = mach_nix(&cache, &args);
    assert!(
        expected.status.success(),
        "{}",
        String::from_utf8_lossy(&expected.stderr)
    );
    let (mut refused, mut same) = (0, 0);
    for offset in 0..clean.len() {
        let mut damaged = clean.clone();
        damaged[offset] ^= 0x10;
        std::fs::write(&pack, &damaged).expect("write damaged pack");
        let out = mach_nix(&cache, &args);
        if out.status.success() {
            assert_eq!(
                out.stdout, expected.stdout,
                "byte {offset} changed the lock"
            );
            same += 1;
        } else {
            assert_eq!(
                out.status.code(),
                Some(2),
                "byte {offset}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            refused += 1;
        }
    }
    assert!(
        refused > 0 && refused + same == clean.len(),
        "{refused} refused, {same} same"
    );
}
