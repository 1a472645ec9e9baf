//! HTTP/2 client against nginx (Debian's package, http2 + TLS) started by the test itself.
//! Skips with a printed reason when no nginx binary is installed (outside CI); in CI
//! (`CI=true`) a missing nginx fails the test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{matrix, payload, pki};
use http::Method;
use ringbolt_net::h2c::{H2Client, H2Options, PreparedRequest};
use ringbolt_net::tls::{Roots, client_config};
use ringbolt_net::{Driver, Endpoint};

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

struct Nginx(Child);
impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn http2_against_nginx() {
    let Some(bin) = nginx_binary() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "nginx is not installed (apt-get install nginx-light)"
        );
        eprintln!("SKIPPED: nginx not installed (apt-get install nginx-light)");
        return;
    };
    let pki = pki();
    let dir = std::env::temp_dir().join(format!("ringbolt-net-nginx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), &pki.leaf_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &pki.leaf_key_pem).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         client_max_body_size 16m;\n\
         server {{\n    listen 127.0.0.1:{port} ssl http2;\n    ssl_certificate {d}/cert.pem;\n\
         ssl_certificate_key {d}/key.pem;\n    location / {{ default_type application/json; return 200 '{{\"ok\":true}}'; }}\n  }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(&bin)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .spawn()
        .unwrap();
    let _guard = Nginx(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start: {:?}",
            std::fs::read_to_string(dir.join("error.log"))
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for (name, cfg) in matrix() {
        let mut d = Driver::new(&cfg).unwrap();
        let ep = Endpoint {
            host: "localhost".into(),
            port,
            tls: Some(client_config(Roots::None, Some(pki.ca_pem.as_bytes()), &[b"h2"]).unwrap()),
        };
        let mut h = H2Client::connect(&mut d, &ep, &H2Options::default()).unwrap();
        let req = PreparedRequest::new(
            Method::POST,
            &format!("https://localhost:{port}/order"),
            &[("content-type", "application/json")],
        )
        .unwrap();
        // Ten pipelined POSTs on concurrent streams, one with a body over the 64 KiB window.
        for tag in 0..10u64 {
            let body = if tag == 9 {
                Bytes::from(payload(tag, 1 << 20))
            } else {
                Bytes::from_static(br#"{"order":1}"#)
            };
            h.send(&mut d, &req, body, tag).unwrap();
        }
        let mut tags = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while tags.len() < 10 {
            d.poll(Duration::from_millis(2)).unwrap();
            h.poll(&mut d).unwrap();
            while let Some(c) = h.next_completion() {
                let r = c.result.unwrap();
                assert_eq!(r.status, 200, "{name}");
                assert_eq!(r.body, br#"{"ok":true}"#, "{name}");
                tags.push(c.tag);
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {} of 10 responses",
                tags.len()
            );
        }
        tags.sort_unstable();
        assert_eq!(tags, (0..10).collect::<Vec<_>>(), "{name}");
        h.shutdown(&mut d);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
