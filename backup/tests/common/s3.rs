//! A real S3-compatible server for the tests: moto's server from PyPI, started on loopback by
//! the test binary itself (installed with pip if missing), and a small HTTP proxy that sits
//! between shale and moto to count requests and inject faults.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Access key the tests use; the shared moto server accepts any (see [`Moto::start_with_auth`]
/// for one that does not).
pub const ACCESS_KEY: &str = "AKIASHALETESTKEY0001";
/// Secret key the tests use; it must never appear in any output.
pub const SECRET_KEY: &str = "s3cr3t-Sh4le-n3ver-pr1nted";

/// A moto server on 127.0.0.1. Its stdin is a pipe from this process: when the test binary
/// exits (or this value drops), the pipe closes and the wrapper shell kills moto.
pub struct Moto {
    pub port: u16,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Closing the wrapper's stdin makes it kill moto; killing the wrapper instead would
        // leave moto running, orphaned.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn python_with_moto() {
    let probe = Command::new("python3")
        .args(["-c", "import moto.server, flask, werkzeug"])
        .output();
    match probe {
        Err(e) => panic!("python3 is needed for the S3 tests and could not be run: {e}"),
        Ok(o) if o.status.success() => {}
        Ok(_) => {
            // As external_readers.rs installs pyarrow; `--user` where the interpreter's own
            // site-packages are not writable.
            let pip = |extra: &[&str]| {
                Command::new("python3")
                    .args(["-m", "pip", "install", "--quiet"])
                    .args(extra)
                    .arg("moto[server]")
                    .status()
                    .expect("python3 -m pip could not be run")
                    .success()
            };
            assert!(
                pip(&[]) || pip(&["--user"]),
                "pip install 'moto[server]' failed"
            );
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP request/response over a fresh connection; returns (status, body).
pub fn http(port: u16, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

/// An IAM user's access key on a moto server that checks signatures ([`Moto::start_with_auth`]).
pub struct IamKey {
    pub access_key: String,
    pub secret_key: String,
}

/// Run by `python3 -c` against a moto server whose first 3 actions are unauthenticated: creates
/// IAM user `shale` with an access key and an `s3:*` policy (the 3 free actions), then bucket
/// `shale` signed with that key; prints the key id and secret.
const IAM_SETUP: &str = r#"
import sys, boto3
ep = sys.argv[1]
anon = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **anon)
iam.create_user(UserName="shale")
key = iam.create_access_key(UserName="shale")["AccessKey"]
iam.put_user_policy(UserName="shale", PolicyName="s3", PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}')
boto3.client("s3", endpoint_url=ep, region_name="us-east-1", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]).create_bucket(Bucket="shale")
print(key["AccessKeyId"])
print(key["SecretAccessKey"])
"#;

/// Run by `python3 -c` against a moto server whose first 5 actions are unauthenticated: creates
/// IAM user `shale-admin` allowed only `sts:AssumeRole`, and role `shale-instance` (an EC2
/// instance profile's role) with an `s3:*` policy that the user may assume (the 5 free
/// actions); the user assumes the role, as EC2 does for an instance, and bucket `shale` is
/// created with the role's temporary credentials; prints their key id, secret and session
/// token. (An instance profile's credentials always carry a session token, which moto accepts
/// only for STS credentials, not for an IAM user's own key.)
const ROLE_SETUP: &str = r#"
import sys, boto3
ep = sys.argv[1]
def client(service, key, secret, token=None):
    return boto3.client(service, endpoint_url=ep, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token)
iam = client("iam", "setup", "setup")
user = iam.create_user(UserName="shale-admin")["User"]["Arn"]
key = iam.create_access_key(UserName="shale-admin")["AccessKey"]
iam.put_user_policy(UserName="shale-admin", PolicyName="assume", PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}')
trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"%s"},"Action":"sts:AssumeRole"}]}' % user
arn = iam.create_role(RoleName="shale-instance", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
iam.put_role_policy(RoleName="shale-instance", PolicyName="s3", PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}')
sts = client("sts", key["AccessKeyId"], key["SecretAccessKey"])
c = sts.assume_role(RoleArn=arn, RoleSessionName="i-0123456789abcdef0", DurationSeconds=3600)["Credentials"]
client("s3", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]).create_bucket(Bucket="shale")
print(c["AccessKeyId"])
print(c["SecretAccessKey"])
print(c["SessionToken"])
"#;

/// moto's server, with one fix to its signature check: werkzeug hands moto the query string
/// with `%2F` decoded to `/`, so the canonical request it signs differs from the client's for
/// every request with a `/` in a query value (ListObjectsV2's `prefix` and `delimiter`; boto3's
/// own requests fail the same way). The query values are re-encoded as SigV4 wants before the
/// signature is computed; everything else is moto as released.
const MOTO_WITH_SIGV4_QUERY_FIX: &str = r#"
import sys
from urllib.parse import quote
import moto.iam.access_control as ac
init = ac.IAMRequestBase.__init__
def reencoded(self, *args, **kwargs):
    path, sep, query = kwargs["path"].partition("?")
    if sep:
        pairs = (p.partition("=") for p in query.split("&"))
        kwargs["path"] = path + "?" + "&".join(k + e + quote(v, safe="-_.~%") for k, e, v in pairs)
    init(self, *args, **kwargs)
ac.IAMRequestBase.__init__ = reencoded
from moto.server import main
main(sys.argv[1:])
"#;

impl Moto {
    pub fn start() -> Moto {
        Moto::spawn("", "-m moto.server")
    }

    /// A moto server that checks every request's SigV4 signature against its IAM users and
    /// their policies (`INITIAL_NO_AUTH_ACTION_COUNT=3`: only the first 3 actions are free),
    /// with bucket `shale` and the one access key allowed to use it.
    pub fn start_with_auth() -> (Moto, IamKey) {
        let moto = Moto::spawn(
            "INITIAL_NO_AUTH_ACTION_COUNT=3",
            "-c \"$SHALE_MOTO_SCRIPT\"",
        );
        let out = Command::new("python3")
            .args(["-c", IAM_SETUP, &moto.endpoint()])
            .output()
            .expect("python3 could not be run");
        assert!(
            out.status.success(),
            "IAM setup on moto failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = String::from_utf8(out.stdout).expect("key is UTF-8");
        let mut lines = out.lines();
        let (Some(access_key), Some(secret_key)) = (lines.next(), lines.next()) else {
            panic!("IAM setup printed no key");
        };
        let key = IamKey {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
        };
        (moto, key)
    }

    /// A moto server that checks signatures and policies (as [`Moto::start_with_auth`]), with
    /// role `shale-instance` allowed `s3:*`, bucket `shale`, and temporary credentials of that
    /// role, as an EC2 instance's metadata service hands them out.
    pub fn start_with_role() -> (Moto, super::imds::RoleCredentials) {
        let moto = Moto::spawn(
            "INITIAL_NO_AUTH_ACTION_COUNT=5",
            "-c \"$SHALE_MOTO_SCRIPT\"",
        );
        let out = Command::new("python3")
            .args(["-c", ROLE_SETUP, &moto.endpoint()])
            .output()
            .expect("python3 could not be run");
        assert!(
            out.status.success(),
            "IAM role setup on moto failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = String::from_utf8(out.stdout).expect("credentials are UTF-8");
        let lines: Vec<&str> = out.lines().collect();
        let [access_key, secret_key, token] = lines[..] else {
            panic!("IAM role setup printed {out:?}");
        };
        let credentials = super::imds::RoleCredentials {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            token: token.to_string(),
        };
        (moto, credentials)
    }

    /// `python3 <program> -H 127.0.0.1 -p <port>` with `env` (`NAME=value ...`, may be empty)
    /// in its environment.
    fn spawn(env: &str, program: &str) -> Moto {
        python_with_moto();
        let port = free_port();
        let script = format!(
            "{env} python3 {program} -H 127.0.0.1 -p {port} >/dev/null 2>&1 & pid=$!; \
             cat >/dev/null; kill $pid"
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .env("SHALE_MOTO_SCRIPT", MOTO_WITH_SIGV4_QUERY_FIX)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh could not be run");
        let moto = Moto { port, child };
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            // moto's own API answers without counting as an action or needing a signature.
            if let Ok((200, _)) = http(port, "GET", "/moto-api/") {
                break;
            }
            assert!(Instant::now() < until, "moto did not answer on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Creates a bucket (moto does not check credentials).
    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) = http(self.port, "PUT", &format!("/{bucket}")).unwrap();
        assert_eq!(status, 200, "create bucket {bucket}: {body}");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The moto server shared by the tests of one test binary, with bucket `shale`.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let m = Moto::start();
        m.create_bucket("shale");
        m
    })
}

static PREFIX_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh prefix in the shared bucket.
pub fn fresh_location() -> String {
    format!(
        "s3://shale/t{}-{}",
        std::process::id(),
        PREFIX_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// StarRocks' properties for an S3 repository at `endpoint`.
pub fn s3_properties(endpoint: &str) -> BTreeMap<String, String> {
    [
        ("aws.s3.access_key", ACCESS_KEY.to_string()),
        ("aws.s3.secret_key", SECRET_KEY.to_string()),
        ("aws.s3.endpoint", endpoint.to_string()),
        ("aws.s3.region", "us-east-1".to_string()),
        ("aws.s3.enable_path_style_access", "true".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// What the proxy does with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Forward,
    /// Answer with this status and an S3 error body, without asking moto.
    Respond(u16, &'static str),
    /// Close the connection without answering.
    Drop,
    /// Say nothing for this long, then close the connection (a server that hangs).
    Stall(Duration),
    /// Forward to moto, which does the work, then close the connection without answering:
    /// the answer is lost on the way back.
    LoseAnswer,
    /// Forward to moto, then pass on the answer's head and only the first half of its body
    /// (nothing at all if the body is shorter than 2 bytes): the connection breaks mid-answer.
    Truncate,
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: String,
    pub action: Action,
}

type Rule = Arc<dyn Fn(&Seen) -> Action + Send + Sync>;

/// An HTTP/1.1 proxy on loopback in front of moto: every request gets its own upstream
/// connection; each answer closes the client connection.
pub struct Proxy {
    pub port: u16,
    rule: Arc<Mutex<Rule>>,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let rule: Arc<Mutex<Rule>> = Arc::new(Mutex::new(Arc::new(|_: &Seen| Action::Forward)));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (r, l) = (rule.clone(), log.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (r, l) = (r.clone(), l.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream, &r, &l);
                });
            }
        });
        Proxy { port, rule, log }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_rule(&self, rule: impl Fn(&Seen) -> Action + Send + Sync + 'static) {
        *self.rule.lock().unwrap() = Arc::new(rule);
    }

    pub fn clear_rule(&self) {
        self.set_rule(|_| Action::Forward);
    }

    pub fn log(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
}

fn serve(
    client: TcpStream,
    upstream: u16,
    rule: &Mutex<Rule>,
    log: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let mut seen = Seen {
        method,
        path,
        headers: head.clone(),
        action: Action::Forward,
    };
    let current = rule.lock().unwrap().clone();
    seen.action = current(&seen);
    log.lock().unwrap().push(seen.clone());
    let mut client = client;
    match seen.action {
        Action::Stall(d) => {
            std::thread::sleep(d);
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        Action::Drop => {
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        Action::Respond(status, code) => {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
                 <Message>injected by the test proxy</Message></Error>"
            );
            write!(
                client,
                "HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            client.flush()
        }
        Action::Forward | Action::LoseAnswer | Action::Truncate => {
            let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
            // One request per upstream connection.
            let head: String = head
                .split_inclusive("\r\n")
                .filter(|l| {
                    !l.to_ascii_lowercase().starts_with("connection:")
                        && !l.to_ascii_lowercase().starts_with("keep-alive:")
                })
                .collect();
            let head = head.trim_end_matches("\r\n").to_string() + "\r\nConnection: close\r\n\r\n";
            up.write_all(head.as_bytes())?;
            up.write_all(&body)?;
            up.flush()?;
            let mut up_reader = BufReader::new(up);
            let mut resp_head = String::new();
            loop {
                let mut line = String::new();
                if up_reader.read_line(&mut line)? == 0 {
                    break;
                }
                let end = line == "\r\n";
                let lower = line.to_ascii_lowercase();
                if !lower.starts_with("connection:") && !end {
                    resp_head.push_str(&line);
                }
                if end {
                    break;
                }
            }
            resp_head.push_str("Connection: close\r\n\r\n");
            match seen.action {
                Action::LoseAnswer => {
                    // Wait for moto's whole answer (the work is done), then hang up.
                    std::io::copy(&mut up_reader, &mut std::io::sink())?;
                }
                Action::Truncate => {
                    let mut answer = Vec::new();
                    up_reader.read_to_end(&mut answer)?;
                    if answer.len() >= 2 {
                        client.write_all(resp_head.as_bytes())?;
                        client.write_all(&answer[..answer.len() / 2])?;
                        client.flush()?;
                    }
                }
                _ => {
                    client.write_all(resp_head.as_bytes())?;
                    std::io::copy(&mut up_reader, &mut client)?;
                    client.flush()?;
                }
            }
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
    }
}

/// The ways [`fail_nth`] fails a request, used in turn: two server errors, the connection
/// dropped before moto sees the request, the answer lost after moto did the work, and an
/// answer cut off mid-body.
pub const FAULTS: [Action; 5] = [
    Action::Respond(503, "SlowDown"),
    Action::Respond(500, "InternalError"),
    Action::Drop,
    Action::LoseAnswer,
    Action::Truncate,
];

/// A proxy rule that forwards every request except the `n`-th (from 0) it is asked about, which
/// gets `fault`; that request is recorded in `failed`.
pub fn fail_nth(
    n: usize,
    fault: Action,
    failed: Arc<Mutex<Option<Seen>>>,
) -> impl Fn(&Seen) -> Action + Send + Sync + 'static {
    let count = AtomicU64::new(0);
    move |r| {
        if count.fetch_add(1, Ordering::SeqCst) == n as u64 {
            let mut hit = r.clone();
            hit.action = fault.clone();
            *failed.lock().unwrap() = Some(hit);
            fault.clone()
        } else {
            Action::Forward
        }
    }
}

/// `%XX` escapes decoded (object keys and query values as the proxy sees them).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = || std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok();
        match (bytes[i], hex().and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Seen {
    /// The object (`s3://bucket/key`) or, for a listing, the prefix (`s3://bucket/prefix`)
    /// this path-style request is about, without a trailing `/`.
    pub fn object(&self) -> String {
        let (path, query) = self
            .path
            .split_once('?')
            .unwrap_or((self.path.as_str(), ""));
        let path = percent_decode(path.trim_start_matches('/'));
        let (bucket, key) = path.split_once('/').unwrap_or((path.as_str(), ""));
        let key = if key.is_empty() {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("prefix="))
                .map(percent_decode)
                .unwrap_or_default()
        } else {
            key.to_string()
        };
        format!("s3://{bucket}/{}", key.trim_end_matches('/'))
    }

    /// `METHOD path` with the repository prefix `prefix` (e.g. `t123-4`) replaced by `<repo>`, to
    /// compare requests of two runs against different repositories.
    pub fn shape(&self, prefix: &str) -> String {
        let encoded = prefix.replace('/', "%2F");
        let path = self
            .path
            .replace(prefix, "<repo>")
            .replace(&encoded, "<repo>");
        format!("{} {path}", self.method)
    }
}

/// A proxy in front of the shared moto server, one per test that needs it.
pub fn proxy() -> Proxy {
    Proxy::start(moto().port)
}
