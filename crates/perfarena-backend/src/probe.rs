//! Readiness probes: an HTTP GET that answers 2xx, or a TCP port that accepts a connection.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One HTTP probe: true when `url` answers with a 2xx status within `timeout`.
pub fn http_ready(url: &str, timeout: Duration) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    match agent.get(url).call() {
        Ok(response) => response.status().is_success(),
        Err(_) => false,
    }
}

/// One TCP probe: true when `127.0.0.1:port` accepts a connection within `timeout`.
pub fn tcp_ready(port: u16, timeout: Duration) -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    TcpStream::connect_timeout(&addr, timeout).is_ok()
}

/// A port that was free a moment ago on 127.0.0.1 (the OS picks it).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn http_and_tcp_probes_against_a_real_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut stream, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        let url = format!("http://127.0.0.1:{port}/health");
        assert!(http_ready(&url, Duration::from_secs(5)));
        assert!(!http_ready(&url, Duration::from_secs(5)));
        server.join().unwrap();
        assert!(!tcp_ready(port, Duration::from_millis(200)));
        let port = free_port().unwrap();
        assert!(!http_ready(
            &format!("http://127.0.0.1:{port}/health"),
            Duration::from_millis(500)
        ));
    }
}
