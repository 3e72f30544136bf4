//! A fake EC2 instance metadata service on loopback, for `aws.s3.use_instance_profile`: the
//! IMDSv2 session token (`PUT /latest/api/token`), or, in IMDSv1 mode, a 403 to that PUT and
//! answers without a token; the instance profile's role name at
//! `/latest/meta-data/iam/security-credentials/` and its temporary credentials (with an
//! `Expiration`) at `.../<role>`, as EC2 serves them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Temporary credentials as the instance profile's role gets them (from STS).
#[derive(Clone, Debug)]
pub struct RoleCredentials {
    pub access_key: String,
    pub secret_key: String,
    pub token: String,
}

/// What the service answers; change it while it runs with [`Imds::set`].
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// `false`: IMDSv1 only (the token PUT is refused with 403, requests need no token).
    pub v2: bool,
    /// The instance profile's role; empty: none (404).
    pub role: String,
    pub credentials: RoleCredentials,
    /// Seconds from now to the credentials' `Expiration`.
    pub expires_in_secs: i64,
}

/// One request the service answered.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The `X-aws-ec2-metadata-token` it carried.
    pub token: Option<String>,
    pub status: u16,
}

struct State {
    behaviour: Behaviour,
    log: Vec<Request>,
    tokens_issued: u64,
}

pub struct Imds {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl Imds {
    pub fn start(behaviour: Behaviour) -> Imds {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            behaviour,
            log: Vec::new(),
            tokens_issued: 0,
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &state);
                });
            }
        });
        Imds { port, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviour = behaviour;
    }

    pub fn log(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }
}

const TOKEN_PATH: &str = "/latest/api/token";
const CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials/";

fn serve(client: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_string());
    }
    let mut first = head.first().map(String::as_str).unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let header = |name: &str| {
        head.iter().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    std::io::copy(&mut (&mut reader).take(length as u64), &mut std::io::sink())?;
    let token = header("x-aws-ec2-metadata-token");
    let (status, body) = {
        let mut s = state.lock().unwrap();
        let b = s.behaviour.clone();
        let issued = s.tokens_issued;
        let valid_token = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| t.strip_prefix("imds-session-"))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n < issued)
        };
        let answer = if method == "PUT" && path == TOKEN_PATH {
            if !b.v2 {
                (403, String::new())
            } else if header("x-aws-ec2-metadata-token-ttl-seconds").is_none() {
                (400, String::new())
            } else {
                let n = s.tokens_issued;
                s.tokens_issued += 1;
                (200, format!("imds-session-{n}"))
            }
        } else if method != "GET" {
            (405, String::new())
        } else if b.v2 && !valid_token(&token) {
            // IMDSv2 answers nothing without a session token.
            (401, String::new())
        } else if path == CREDENTIALS_PATH && b.role.is_empty() {
            // An instance without an instance profile.
            (404, String::new())
        } else if path == CREDENTIALS_PATH {
            (200, b.role.clone())
        } else if path.strip_prefix(CREDENTIALS_PATH) == Some(b.role.as_str()) {
            let now = chrono::Utc::now();
            let expiration = now + chrono::Duration::seconds(b.expires_in_secs);
            let format = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ");
            let body = format!(
                r#"{{"Code":"Success","LastUpdated":"{}","Type":"AWS-HMAC","AccessKeyId":"{}","SecretAccessKey":"{}","Token":"{}","Expiration":"{}"}}"#,
                format(now),
                b.credentials.access_key,
                b.credentials.secret_key,
                b.credentials.token,
                format(expiration),
            );
            (200, body)
        } else {
            (404, String::new())
        };
        s.log.push(Request {
            method,
            path,
            token,
            status: answer.0,
        });
        answer
    };
    let mut client = client;
    write!(
        client,
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    client.flush()?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
