//! S3 repositories against the loopback moto server: StarRocks' properties, secrets never
//! shown, errors at CREATE REPOSITORY (wrong keys against a second moto server that checks
//! signatures and IAM policies), ErrMsg, conditional create, multipart uploads and their
//! abort, incremental backups uploading nothing unchanged, and network faults injected by a
//! proxy between shale and moto (retried with backoff a bounded number of times, then the job
//! is CANCELLED naming the object).

mod common;

use std::time::Duration;

use common::imds::{Behaviour, Imds, RoleCredentials};
use common::s3::{self, ACCESS_KEY, Action, SECRET_KEY};
use common::*;
use shale_backup::{BackupError, Backups, BackupsOptions, JobState, StoreOptions};

/// Options with quick retries so the fault tests do not wait for real backoff.
fn quick_retries(max_retries: usize) -> BackupsOptions {
    BackupsOptions {
        store: StoreOptions {
            max_retries,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            request_timeout: Duration::from_secs(20),
            ..StoreOptions::default()
        },
        ..BackupsOptions::default()
    }
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(SECRET_KEY), "secret key in {text:?}");
}

#[test]
fn s3_and_s3a_locations_with_starrocks_properties() {
    let data = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    let repo = TestRepo::new(Kind::S3);
    let s3a = repo.location.replacen("s3://", "s3a://", 1);
    let info = b
        .create_repository("r", &s3a, false, repo.properties.clone())
        .unwrap();
    assert_eq!(info.location, s3a);
    assert_eq!(info.err_msg, None);
    backup_ok(&b, "shop", "snap", "r", vec![]);
    let files = repo_files(&b, "r");
    assert!(
        files.contains(&"shale_repository.json".to_string()),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("snapshots/snap/__info_"))
    );
    assert!(files.iter().any(|f| f.starts_with("data/")));

    // The same objects are visible under the s3:// spelling.
    let b2 = open(&engine);
    b2.create_repository("again", &repo.location, true, repo.properties.clone())
        .unwrap();
    assert_eq!(b2.list_snapshots("again").unwrap()[0].status, "OK");

    // Unknown properties are refused with StarRocks' kind of message.
    let mut props = repo.properties.clone();
    props.insert("aws.s3.use_web_identity".into(), "x".into());
    let err = b
        .create_repository("bad", &s3::fresh_location(), false, props)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Unknown repository properties: [aws.s3.use_web_identity]"
    );
    let mut props = repo.properties.clone();
    props.insert("aws.s3.enable_path_style_access".into(), "maybe".into());
    let err = b
        .create_repository("bad", &s3::fresh_location(), false, props)
        .unwrap_err();
    assert!(err.to_string().contains("true or false"), "{err}");
    let err = b
        .create_repository("bad", "s3:///prefix", false, repo.properties.clone())
        .unwrap_err();
    assert!(err.to_string().contains("no bucket"), "{err}");
}

#[test]
fn a_missing_bucket_fails_at_create_repository() {
    let data = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = Backups::open_with(engine.clone(), quick_retries(1)).unwrap();
    let props = s3::s3_properties(&s3::moto().endpoint());
    let err = b
        .create_repository("r", "s3://no-such-bucket/x", false, props.clone())
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("Failed to create repository: "), "{text}");
    assert!(text.contains("no-such-bucket"), "{text}");
    assert_no_secret(&text);
    assert_no_secret(&format!("{err:?}"));
    assert!(b.repositories().is_empty());
    // Read-only on an empty prefix: not a repository.
    let err = b
        .create_repository("r", &s3::fresh_location(), true, props)
        .unwrap_err();
    assert!(
        err.to_string().contains("is not a shale repository"),
        "{err}"
    );
}

#[test]
fn wrong_credentials_fail_at_create_and_secrets_are_never_shown() {
    let data = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = Backups::open_with(engine.clone(), quick_retries(1)).unwrap();
    let proxy = s3::proxy();
    // moto accepts any key; the proxy answers like S3 does for a key it does not know.
    proxy.set_rule(|r| {
        if r.headers.contains("Credential=AKIAWRONG") {
            Action::Respond(403, "InvalidAccessKeyId")
        } else {
            Action::Forward
        }
    });
    let repo = TestRepo::s3_via(&proxy.endpoint());
    let mut props = repo.properties.clone();
    props.insert("aws.s3.access_key".into(), "AKIAWRONG".into());
    let err = b
        .create_repository("r", &repo.location, false, props)
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("Failed to create repository: "), "{text}");
    assert!(text.contains("InvalidAccessKeyId"), "{text}");
    assert!(text.contains("403"), "{text}");
    assert_no_secret(&text);
    assert_no_secret(&format!("{err:?}"));
    assert!(b.repositories().is_empty());

    // With the right key: created; SHOW REPOSITORIES shows no secret anywhere.
    repo.create(&b, "r");
    let shown = format!("{:?}", b.repositories());
    assert_no_secret(&shown);
    assert!(!shown.contains(ACCESS_KEY), "{shown}");

    // ErrMsg: the last connectivity error while the store fails, none once it answers again.
    proxy.set_rule(|_| Action::Respond(503, "SlowDown"));
    let err = b.list_snapshots("r").unwrap_err();
    assert_no_secret(&err.to_string());
    let err_msg = b.repositories()[0].err_msg.clone().expect("an ErrMsg");
    assert!(err_msg.contains("503"), "{err_msg}");
    assert_no_secret(&err_msg);
    proxy.clear_rule();
    b.list_snapshots("r").unwrap();
    assert_eq!(b.repositories()[0].err_msg, None);

    // A failed job's status names the object and leaves the secret out.
    proxy.set_rule(|r| {
        if r.method == "PUT" && r.path.contains("/data/") {
            Action::Respond(500, "InternalError")
        } else {
            Action::Forward
        }
    });
    let id = b
        .backup("shop", "s", "r", vec![], Default::default())
        .unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
    let status = b.job(id).unwrap().status;
    assert_no_secret(&status);
    assert!(status.contains("/data/"), "{status}");
}

/// Against a moto server that checks SigV4 signatures and IAM policies (its own instance, so
/// the other tests keep the quick server that accepts any key).
#[test]
fn a_server_checking_signatures_accepts_the_right_key_end_to_end_and_refuses_wrong_ones() {
    if let Ok(endpoint) = std::env::var("SHALE_SDK_DEFAULT_CHILD") {
        sdk_default_child(&endpoint);
        return;
    }
    let (moto, key) = s3::Moto::start_with_auth();
    let data = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = Backups::open_with(engine.clone(), quick_retries(1)).unwrap();
    let mut right = s3::s3_properties(&moto.endpoint());
    right.insert("aws.s3.access_key".into(), key.access_key.clone());
    right.insert("aws.s3.secret_key".into(), key.secret_key.clone());
    let location = s3::fresh_location();

    // A wrong secret for a real key: the signature does not match, at CREATE REPOSITORY.
    let wrong_secret = "wr0ng-Sh4le-s3cret-n3ver-pr1nted";
    let mut props = right.clone();
    props.insert("aws.s3.secret_key".into(), wrong_secret.into());
    let err = b
        .create_repository("r", &location, false, props)
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("Failed to create repository: "), "{text}");
    assert!(text.contains("SignatureDoesNotMatch"), "unclear: {text}");
    assert!(text.contains("403"), "unclear: {text}");
    for text in [text, format!("{err:?}")] {
        assert!(!text.contains(wrong_secret), "secret key in {text:?}");
        assert!(!text.contains(&key.secret_key), "secret key in {text:?}");
    }
    // A key the server does not know.
    let mut props = right.clone();
    props.insert("aws.s3.access_key".into(), "AKIANOSUCHKEY0000000".into());
    let err = b
        .create_repository("r", &location, false, props)
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("Failed to create repository: "), "{text}");
    assert!(text.contains("InvalidAccessKeyId"), "unclear: {text}");
    assert!(!text.contains(&key.secret_key), "secret key in {text:?}");
    assert!(b.repositories().is_empty());
    assert!(
        !format!("{:?}", b.repositories()).contains(&key.secret_key),
        "nothing of a refused repository is kept"
    );

    // The right key: every request of a backup, a listing, a restore and a deep VERIFY is
    // signed correctly.
    b.create_repository("r", &location, false, right).unwrap();
    assert_eq!(b.repositories()[0].err_msg, None);
    let source = engine.snapshot();
    backup_ok(&b, "shop", "snap", "r", vec![]);
    assert_eq!(b.list_snapshots("r").unwrap()[0].status, "OK");
    restore_ok(&b, "copy", "snap", "r", vec![]);
    let now = engine.snapshot();
    for t in ["sales", "items"] {
        let want = rows(&engine, &source, "shop", t);
        assert!(!want.is_empty());
        assert_eq!(rows(&engine, &now, "copy", t), want, "table {t}");
    }
    let report = b.verify("r", "snap", None, true).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let shown = format!("{:?}", b.repositories());
    assert!(!shown.contains(&key.secret_key), "{shown}");

    // aws.s3.use_aws_sdk_default_behavior: no key in the properties, the AWS_* environment's
    // instead (a child process of this test, so that no other test sees the variables).
    let run_child = |secret: &str| {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_server_checking_signatures_accepts_the_right_key_end_to_end_and_refuses_wrong_ones",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SHALE_SDK_DEFAULT_CHILD", moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", &key.access_key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        // The harness prints the test's name on the same line.
        stdout
            .split_once("sdk-default: ")
            .and_then(|(_, rest)| rest.lines().next())
            .unwrap_or_else(|| panic!("no outcome from the child: {stdout}"))
            .to_string()
    };
    assert_eq!(run_child(&key.secret_key), "ok");
    let outcome = run_child(wrong_secret);
    assert!(
        outcome.starts_with("Failed to create repository: "),
        "{outcome}"
    );
    assert!(outcome.contains("SignatureDoesNotMatch"), "{outcome}");
    assert!(!outcome.contains(wrong_secret), "secret key in {outcome:?}");
}

/// Child of the test above: CREATE REPOSITORY with the SDK's default credentials and a backup;
/// prints `sdk-default: ok` or `sdk-default: <error>`.
fn sdk_default_child(endpoint: &str) {
    let data = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = Backups::open_with(engine.clone(), quick_retries(1)).unwrap();
    let props = props(&[
        ("aws.s3.use_aws_sdk_default_behavior", "true"),
        ("aws.s3.endpoint", endpoint),
        ("aws.s3.region", "us-east-1"),
        ("aws.s3.enable_path_style_access", "true"),
    ]);
    match b.create_repository("r", &s3::fresh_location(), false, props) {
        Ok(_) => {
            backup_ok(&b, "shop", "snap", "r", vec![]);
            assert_eq!(b.list_snapshots("r").unwrap()[0].status, "OK");
            println!("sdk-default: ok");
        }
        Err(e) => println!("sdk-default: {}", e.to_string().replace('\n', " ")),
    }
}

/// `aws.s3.use_instance_profile = true` against a fake instance metadata service
/// ([`common::imds`]) that hands out temporary credentials of a role on a moto server checking
/// signatures and policies: IMDSv2 with its session token, IMDSv1 where the token request is
/// refused, credentials fetched again as they near expiry, and wrong credentials refused at
/// CREATE REPOSITORY without showing them. The endpoint reaches a child process of this test
/// through `AWS_EC2_METADATA_SERVICE_ENDPOINT`, so that no other test sees the variable.
#[test]
fn instance_profile_credentials_come_from_the_metadata_service() {
    if let Ok(endpoint) = std::env::var("SHALE_INSTANCE_PROFILE_CHILD") {
        instance_profile_child(&endpoint);
        return;
    }
    let (moto, role) = s3::Moto::start_with_role();
    let behaviour = |v2: bool, credentials: &RoleCredentials, expires_in_secs: i64| Behaviour {
        v2,
        role: "shale-instance".into(),
        credentials: credentials.clone(),
        expires_in_secs,
    };
    // Less than object_store's 5 minutes of minimum remaining validity: fetched again for
    // the next request (at most every 100 ms).
    let imds = Imds::start(behaviour(true, &role, 240));
    let run_child = || {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "instance_profile_credentials_come_from_the_metadata_service",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SHALE_INSTANCE_PROFILE_CHILD", moto.endpoint())
            .env(shale_backup::s3::METADATA_ENDPOINT_ENV, imds.endpoint())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout
            .split_once("instance-profile: ")
            .and_then(|(_, rest)| rest.lines().next())
            .unwrap_or_else(|| panic!("no outcome from the child: {stdout}"))
            .to_string()
    };
    let credential_gets = |log: &[common::imds::Request]| {
        log.iter()
            .filter(|r| r.path.ends_with("/security-credentials/shale-instance"))
            .count()
    };

    // IMDSv2: a session token first, then the role and its credentials with that token.
    assert_eq!(run_child(), "ok");
    let log = imds.log();
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str(), log[0].status),
        ("PUT", "/latest/api/token", 200),
        "{log:?}"
    );
    assert!(
        log.iter()
            .filter(|r| r.method == "GET")
            .all(|r| r.token.is_some() && r.status == 200),
        "{log:?}"
    );
    assert!(
        credential_gets(&log) >= 2,
        "credentials near expiry were not fetched again: {log:?}"
    );

    // IMDSv1 only: the token request is refused, the credentials are read without one.
    imds.set(behaviour(false, &role, 6 * 3600));
    imds.clear_log();
    assert_eq!(run_child(), "ok");
    let log = imds.log();
    assert!(
        log.iter().any(|r| r.method == "PUT" && r.status == 403),
        "{log:?}"
    );
    assert!(credential_gets(&log) >= 1, "{log:?}");
    assert!(
        log.iter()
            .filter(|r| r.method == "GET")
            .all(|r| r.token.is_none() && r.status == 200),
        "{log:?}"
    );

    // A wrong secret from the metadata service: refused at CREATE REPOSITORY, no secret shown.
    let wrong = RoleCredentials {
        secret_key: "wr0ng-Sh4le-r0le-s3cret-n3ver-pr1nted".into(),
        ..role.clone()
    };
    imds.set(behaviour(true, &wrong, 6 * 3600));
    let outcome = run_child();
    assert!(
        outcome.starts_with("Failed to create repository: "),
        "{outcome}"
    );
    assert!(outcome.contains("SignatureDoesNotMatch"), "{outcome}");
    assert!(outcome.contains("403"), "{outcome}");
    for secret in [&wrong.secret_key, &role.secret_key, &role.token] {
        assert!(
            !outcome.contains(secret.as_str()),
            "a secret in {outcome:?}"
        );
    }

    // An instance without an instance profile: refused at CREATE REPOSITORY.
    imds.set(Behaviour {
        role: String::new(),
        ..behaviour(true, &role, 6 * 3600)
    });
    let outcome = run_child();
    assert!(
        outcome.starts_with("Failed to create repository: "),
        "{outcome}"
    );
    assert!(outcome.contains("404"), "{outcome}");
}

/// Child of the test above: CREATE REPOSITORY with `aws.s3.use_instance_profile`, a backup, a
/// restore and a deep VERIFY; prints `instance-profile: ok` or `instance-profile: <error>`
/// (Display and Debug).
fn instance_profile_child(endpoint: &str) {
    let data = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = Backups::open_with(engine.clone(), quick_retries(1)).unwrap();
    let props = props(&[
        ("aws.s3.use_instance_profile", "true"),
        ("aws.s3.endpoint", endpoint),
        ("aws.s3.region", "us-east-1"),
        ("aws.s3.enable_path_style_access", "true"),
    ]);
    match b.create_repository("r", &s3::fresh_location(), false, props) {
        Ok(_) => {
            let source = engine.snapshot();
            backup_ok(&b, "shop", "snap", "r", vec![]);
            assert_eq!(b.list_snapshots("r").unwrap()[0].status, "OK");
            restore_ok(&b, "copy", "snap", "r", vec![]);
            let now = engine.snapshot();
            for t in ["sales", "items"] {
                assert_eq!(
                    rows(&engine, &now, "copy", t),
                    rows(&engine, &source, "shop", t)
                );
            }
            let report = b.verify("r", "snap", None, true).unwrap();
            assert!(report.is_ok(), "{:?}", report.problems);
            println!("instance-profile: ok");
        }
        Err(e) => println!(
            "instance-profile: {} | {:?}",
            e.to_string().replace('\n', " "),
            e
        ),
    }
}

#[test]
fn credential_properties_are_checked_before_any_request() {
    let data = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    let endpoint = s3::moto().endpoint();
    let keys = s3::s3_properties(&endpoint);
    let no_keys = props(&[
        ("aws.s3.endpoint", &endpoint),
        ("aws.s3.enable_path_style_access", "true"),
    ]);
    let with = |base: &std::collections::BTreeMap<String, String>, extra: &[(&str, &str)]| {
        let mut p = base.clone();
        p.extend(props(extra));
        p
    };
    let cases = [
        (
            no_keys.clone(),
            "aws.s3.access_key and aws.s3.secret_key are required",
        ),
        (
            with(&no_keys, &[("aws.s3.use_instance_profile", "maybe")]),
            "aws.s3.use_instance_profile must be true or false",
        ),
        (
            with(
                &no_keys,
                &[
                    ("aws.s3.use_instance_profile", "true"),
                    ("aws.s3.use_aws_sdk_default_behavior", "true"),
                ],
            ),
            "set only one of",
        ),
        (
            with(&keys, &[("aws.s3.use_instance_profile", "true")]),
            "cannot be combined with aws.s3.use_instance_profile = true",
        ),
        (
            with(&keys, &[("aws.s3.use_aws_sdk_default_behavior", "TRUE")]),
            "cannot be combined with aws.s3.use_aws_sdk_default_behavior = true",
        ),
        (
            with(&no_keys, &[("aws.s3.use_instance_profile", "false")]),
            "are required",
        ),
    ];
    for (props, says) in cases {
        let err = b
            .create_repository("r", &s3::fresh_location(), false, props.clone())
            .unwrap_err();
        assert!(
            matches!(err, BackupError::InvalidLocation { .. }),
            "{props:?}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(says), "{props:?}: {text}");
        assert_no_secret(&text);
    }
    assert!(b.repositories().is_empty());
}

#[test]
fn the_info_object_is_created_only_once() {
    let data = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    let repo = TestRepo::new(Kind::S3);
    repo.create(&b, "r");
    let store = b.repository_store("r").unwrap();
    store.put_once("snapshots/x/__info_1.json", b"one").unwrap();
    let err = store
        .put_once("snapshots/x/__info_1.json", b"two")
        .unwrap_err();
    assert!(matches!(err, BackupError::ObjectExists { .. }), "{err:?}");
    assert_eq!(store.read("snapshots/x/__info_1.json").unwrap(), b"one");

    // Two engines back up the same snapshot name to one location at the same time; both pass
    // the existence check, meet at SAVE_META, and only one can claim and commit the name.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let with_barrier = || {
        let barrier = barrier.clone();
        BackupsOptions {
            state_hook: Some(std::sync::Arc::new(move |_, s| {
                if s == JobState::SaveMeta {
                    barrier.wait();
                }
            })),
            ..BackupsOptions::default()
        }
    };
    let data2 = tempfile::tempdir().unwrap();
    let engine2 = engine_with_data(data2.path());
    let b1 = Backups::open_with(engine.clone(), with_barrier()).unwrap();
    let b2 = Backups::open_with(engine2.clone(), with_barrier()).unwrap();
    repo.create(&b2, "r2");
    let id1 = b1
        .backup("shop", "same", "r", vec![], Default::default())
        .unwrap();
    let id2 = b2
        .backup("shop", "same", "r2", vec![], Default::default())
        .unwrap();
    let s1 = b1.wait(id1, WAIT);
    let s2 = b2.wait(id2, WAIT);
    let mut states = [s1, s2];
    states.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(
        states,
        [Some(JobState::Cancelled), Some(JobState::Finished)],
        "{:?} {:?}",
        b1.job(id1),
        b2.job(id2)
    );
    let loser = if s1 == Some(JobState::Cancelled) {
        b1.job(id1).unwrap()
    } else {
        b2.job(id2).unwrap()
    };
    assert!(
        loser
            .status
            .contains("Snapshot with name 'same' already exist"),
        "{}",
        loser.status
    );
    let listed: Vec<_> = b1
        .list_snapshots("r")
        .unwrap()
        .into_iter()
        .filter(|s| s.snapshot == "same")
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "OK");
    assert_eq!(listed[0].timestamps.len(), 1, "one commit: {listed:?}");
    assert!(b1.verify("r", "same", None, true).unwrap().is_ok());
}

#[test]
fn large_objects_go_up_in_bounded_parts_and_an_abort_leaves_nothing() {
    let data = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    let proxy = s3::proxy();
    let repo = TestRepo::s3_via(&proxy.endpoint());
    repo.create(&b, "r");
    let store = b.repository_store("r").unwrap();
    let part = StoreOptions::default().part_size;
    let content: Vec<u8> = (0..(2 * part + 12345)).map(|i| (i % 251) as u8).collect();

    proxy.clear_log();
    let writes = store.begin_writes().unwrap();
    let mut w = writes.create("big/object").unwrap();
    for chunk in content.chunks(1 << 20) {
        w.write_all(chunk, &|| Ok(())).unwrap();
    }
    w.finish(&|| Ok(())).unwrap();
    writes.sync().unwrap();
    let log = proxy.log();
    let parts = log
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("partNumber="))
        .count();
    assert_eq!(parts, 3, "three parts of at most {part} bytes");
    assert!(
        log.iter()
            .any(|r| r.method == "POST" && r.path.contains("uploads"))
    );
    assert_eq!(
        store.head("big/object").unwrap(),
        Some(content.len() as u64)
    );
    let mut back = Vec::new();
    std::io::Read::read_to_end(&mut store.open_read("big/object", 0).unwrap(), &mut back).unwrap();
    assert!(back == content, "the object reads back as written");
    let tail = store.read_range("big/object", 100..200).unwrap();
    assert_eq!(&tail[..], &content[100..200]);

    // A cancelled upload (abort mid-way) leaves neither the object nor an open upload.
    proxy.clear_log();
    let mut w = writes.create("big/aborted").unwrap();
    for chunk in content[..part + 10].chunks(1 << 20) {
        w.write_all(chunk, &|| Ok(())).unwrap();
    }
    w.abort();
    assert_eq!(store.head("big/aborted").unwrap(), None);
    assert!(
        proxy
            .log()
            .iter()
            .any(|r| r.method == "DELETE" && r.path.contains("uploadId=")),
        "the multipart upload was aborted"
    );
    let (status, listing) = s3::http(s3::moto().port, "GET", "/shale?uploads").unwrap();
    assert_eq!(status, 200);
    assert!(!listing.contains("big/aborted"), "{listing}");
}

#[test]
fn an_incremental_backup_uploads_no_unchanged_data_object() {
    let data = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    let proxy = s3::proxy();
    let repo = TestRepo::s3_via(&proxy.endpoint());
    repo.create(&b, "r");
    backup_ok(&b, "shop", "first", "r", vec![]);
    let data_puts = |log: &[s3::Seen]| {
        log.iter()
            .filter(|r| r.method == "PUT" && r.path.contains("/data/"))
            .count()
    };
    assert!(data_puts(&proxy.log()) > 0);
    let before = data_objects(&b, "r");

    proxy.clear_log();
    backup_ok(&b, "shop", "second", "r", vec![]);
    assert_eq!(data_puts(&proxy.log()), 0, "nothing unchanged is uploaded");

    load_sales(&engine, "shop", 500, 3);
    proxy.clear_log();
    backup_ok(&b, "shop", "third", "r", vec![]);
    assert_eq!(data_puts(&proxy.log()), 1, "only the new segment");
    assert_eq!(data_objects(&b, "r").len(), before.len() + 1);
}

#[test]
fn throttling_and_5xx_are_retried_then_the_job_is_cancelled_naming_the_object() {
    let data = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = Backups::open_with(engine.clone(), quick_retries(3)).unwrap();
    let proxy = s3::proxy();
    let repo = TestRepo::s3_via(&proxy.endpoint());
    repo.create(&b, "r");
    let source = engine.snapshot();

    // Two failures of each data PUT (503, then a dropped connection): retried, the job
    // finishes.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let counts = seen.clone();
    proxy.set_rule(move |r| {
        if r.method != "PUT" || !r.path.contains("/data/") {
            return Action::Forward;
        }
        let mut c = counts.lock().unwrap();
        let n = c.entry(r.path.clone()).or_insert(0);
        *n += 1;
        match *n {
            1 => Action::Respond(503, "SlowDown"),
            2 => Action::Drop,
            _ => Action::Forward,
        }
    });
    backup_ok(&b, "shop", "retried", "r", vec![]);
    assert!(seen.lock().unwrap().values().all(|n| *n == 3), "{seen:?}");
    proxy.clear_rule();
    restore_ok(&b, "copy", "retried", "r", vec![]);
    assert_eq!(
        rows(&engine, &engine.snapshot(), "copy", "sales"),
        rows(&engine, &source, "shop", "sales")
    );

    // A GET that always fails: bounded attempts, then CANCELLED naming the object.
    proxy.clear_log();
    proxy.set_rule(|r| {
        if r.method == "GET" && r.path.contains("/data/") {
            Action::Respond(503, "SlowDown")
        } else {
            Action::Forward
        }
    });
    let id = b
        .restore("copy2", "retried", "r", vec![], Default::default())
        .unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
    let status = b.job(id).unwrap().status;
    assert!(status.contains("/data/"), "{status}");
    assert!(status.contains("503"), "{status}");
    let gets = proxy
        .log()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/data/"))
        .map(|r| r.path.clone())
        .collect::<Vec<_>>();
    let first = &gets[0];
    let attempts = gets.iter().filter(|p| *p == first).count();
    assert_eq!(attempts, 4, "one try and three retries of {first}");
    assert!(engine.snapshot().database("copy2").is_none());

    // A PUT whose connection always drops: the backup is cancelled and nothing is listed.
    proxy.set_rule(|r| {
        if r.method == "PUT" && r.path.contains("/data/") {
            Action::Drop
        } else {
            Action::Forward
        }
    });
    load_sales(&engine, "shop", 900, 2);
    let id = b
        .backup("shop", "dropped", "r", vec![], Default::default())
        .unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
    let status = b.job(id).unwrap().status;
    assert!(status.contains("/data/"), "{status}");
    proxy.clear_rule();
    let listed: Vec<String> = b
        .list_snapshots("r")
        .unwrap()
        .into_iter()
        .map(|s| s.snapshot)
        .collect();
    assert_eq!(listed, ["retried"]);
}

#[test]
fn a_backup_cancelled_mid_upload_aborts_its_multipart_upload() {
    let data = tempfile::tempdir().unwrap();
    let engine = shale_engine::Engine::open(data.path()).unwrap();
    create_tables(&engine, "shop");
    // One segment larger than a part: hex strings do not compress much.
    let size = load_large_items(&engine, "shop");
    let part = 5 << 20;
    assert!(size > part as u64 + (1 << 20), "segment of {size} bytes");

    let b = Backups::open_with(
        engine.clone(),
        BackupsOptions {
            chunk_bytes: 256 << 10,
            store: StoreOptions {
                part_size: part,
                ..StoreOptions::default()
            },
            ..BackupsOptions::default()
        },
    )
    .unwrap();
    let proxy = s3::proxy();
    let repo = TestRepo::s3_via(&proxy.endpoint());
    repo.create(&b, "r");
    // The first part upload is held back until the test has cancelled the job.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (tx, go_rx) = (std::sync::Mutex::new(tx), std::sync::Mutex::new(go_rx));
    proxy.set_rule(move |r| {
        if r.method == "PUT"
            && (r.path.contains("partNumber=1&") || r.path.ends_with("partNumber=1"))
        {
            let _ = tx.lock().unwrap().send(());
            let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(20));
        }
        Action::Forward
    });
    let id = b
        .backup("shop", "big", "r", vec![], Default::default())
        .unwrap();
    rx.recv_timeout(Duration::from_secs(60))
        .expect("a multipart upload started");
    b.cancel_backup("shop").unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
    let _ = go_tx.send(());
    assert_eq!(
        b.job(id).unwrap().status,
        "[COMMON_ERROR, msg: user cancelled]"
    );
    let log = proxy.log();
    assert!(
        log.iter()
            .any(|r| r.method == "DELETE" && r.path.contains("uploadId=")),
        "the multipart upload was aborted: {:?}",
        log.iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    let prefix = repo.location.trim_start_matches("s3://shale/");
    let (status, listing) = s3::http(
        s3::moto().port,
        "GET",
        &format!("/shale?uploads&prefix={prefix}/"),
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(!listing.contains("<UploadId>"), "{listing}");
    assert!(data_objects(&b, "r").is_empty());
    assert!(b.list_snapshots("r").unwrap().is_empty());
}

#[test]
fn a_request_that_times_out_is_retried() {
    let data = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let mut options = quick_retries(5);
    options.store.request_timeout = Duration::from_secs(2);
    let b = Backups::open_with(engine.clone(), options).unwrap();
    let proxy = s3::proxy();
    let repo = TestRepo::s3_via(&proxy.endpoint());
    repo.create(&b, "r");
    // The first PUT of each data object hangs past the request timeout.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let counts = seen.clone();
    proxy.set_rule(move |r| {
        if r.method != "PUT" || !r.path.contains("/data/") {
            return Action::Forward;
        }
        let mut c = counts.lock().unwrap();
        let n = c.entry(r.path.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            Action::Stall(Duration::from_secs(6))
        } else {
            Action::Forward
        }
    });
    backup_ok(&b, "shop", "slow", "r", vec![]);
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty());
    // Each was tried again after its timeout (a slow machine may need more than one retry).
    assert!(seen.values().all(|n| *n >= 2), "{seen:?}");
    drop(seen);
    proxy.clear_rule();
    assert!(b.verify("r", "slow", None, true).unwrap().is_ok());
}
