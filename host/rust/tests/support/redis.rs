//! A throwaway `redis-server` on a free 127.0.0.1 port, persistence off, killed when dropped
//! (also when a test fails): plain, or TLS only with an ACL user and certificates made here
//! with `openssl`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub struct RedisServer {
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

/// The TLS server's files and its ACL user.
pub struct Tls {
    pub ca_file: PathBuf,
    pub user: &'static str,
    pub password: &'static str,
}

impl RedisServer {
    pub fn start() -> Result<RedisServer> {
        let port = free_port()?;
        let args = ["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"].map(str::to_string).to_vec();
        let mut server = RedisServer { port, args, child: None };
        server.restart()?;
        Ok(server)
    }

    /// TLS only (no plain port), the default user off, one ACL user; the inner `Err` (why)
    /// when this redis-server was built without TLS.
    pub fn start_tls(dir: &Path) -> Result<Result<(RedisServer, Tls), String>> {
        let tls = certificates(dir)?;
        let port = free_port()?;
        // ACL users come from a config file: on the command line a user's rules are one token.
        // The rules are the least a store needs (the README's ACL line, shared by every host's tests).
        let rules = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fleet/redis-acl.txt"))?;
        let conf = dir.join("redis.conf");
        std::fs::write(&conf, format!("user default off\nuser {} on >{} {}\n", tls.user, tls.password, rules.trim()))?;
        let args = [
            &conf.display().to_string(),
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--tls-cert-file",
            &dir.join("server.pem").display().to_string(),
            "--tls-key-file",
            &dir.join("server.key").display().to_string(),
            "--tls-ca-cert-file",
            &tls.ca_file.display().to_string(),
            "--tls-auth-clients",
            "no",
        ]
        .map(str::to_string)
        .to_vec();
        let mut server = RedisServer { port, args, child: None };
        match server.restart() {
            Ok(()) => Ok(Ok((server, tls))),
            // A build without TLS refuses the tls-* directives and exits at once.
            Err(e) if e.to_string().contains("exited") && e.to_string().to_lowercase().contains("tls") => {
                Ok(Err(format!("redis-server lacks TLS support: {e}")))
            }
            Err(e) => Err(e),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn restart(&mut self) -> Result<()> {
        let log = std::env::temp_dir().join(format!("failover-redis-{}.log", self.port));
        let out = std::fs::File::create(&log)?;
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()
            .context("cannot start redis-server: install it (scripts/setup.sh does, from Debian's redis-server)")?;
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if self.child.take_if(|c| c.try_wait().ok().flatten().is_some()).is_some() {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                bail!("redis-server exited at start: {}", said.trim());
            }
            if start.elapsed() > Duration::from_secs(5) {
                bail!("redis-server did not listen on 127.0.0.1:{} within 5 s", self.port);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A plain connection for the test's own look at the keys.
    pub fn connection(&self) -> Result<redis::Connection> {
        Ok(redis::Client::open(self.url())?.get_connection()?)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with `openssl`.
fn certificates(dir: &Path) -> Result<Tls> {
    std::fs::create_dir_all(dir)?;
    let openssl = |args: &[&str]| -> Result<()> {
        let out = Command::new("openssl").args(args).current_dir(dir).output().context("cannot run openssl")?;
        if !out.status.success() {
            bail!("openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=fleet test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ])?;
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"])?;
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ])?;
    Ok(Tls { ca_file: dir.join("ca.pem"), user: "fleet", password: "s3cret-fleet" })
}
